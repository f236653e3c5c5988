"""One idea's pipeline as a task of its own: what a Ray task runs on its node, and what
``scientist resume`` runs here for a run whose ideas ran apart.

The idea graph (experiments → write-up → review → improve) checkpoints in the idea's own
``checkpoints.sqlite``, so a retried task continues from its last completed step. Its calls
go to the idea's ``ledger.jsonl``; the run's graph adds them to the run's ledger when the
task ends (``stages.merge_idea_ledger``). While it runs, the run's budget counts what the
run had spent when the task was sent plus this idea's own calls (ideas running at the same
time on other nodes are counted once they end); the idea's own budget holds exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.runstore import RunPaths
from core.settings import Settings
from gateway.errors import AutoscholarError
from gateway.ledger import Ledger, read_entries
from gateway.types import LedgerEntry
from graphs.paper import build_idea_graph
from scientist.experiments.runner import prepare_environment
from scientist.ideas.models import Idea
from scientist.pipeline.deps import PipelineDeps
from scientist.pipeline.models import IdeaOutcome, PipelineEvent
from scientist.runs.wiring import TASK_EVENTS, RunRequest, real_deps, sqlite_saver

IDEA_THREAD = {"configurable": {"thread_id": "idea"}}
DepsFactory = Callable[..., PipelineDeps]


class IdeaJob(BaseModel):
    """What an idea task needs: its run folder (here or on the node), the template folder,
    the run's settings, the idea, and the run's calls so far (for the run's budget)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    run_dir: str
    template: str
    settings: Settings
    idea: Idea
    spent: list[LedgerEntry] = []


IdeaFn = Callable[[IdeaJob], IdeaOutcome]


class IdeaPausedError(AutoscholarError):
    """An idea task reached a co-pilot pause; tasks apart cannot ask anyone."""


def run_idea_job(
    job: IdeaJob,
    *,
    on_event: Callable[[PipelineEvent], None] | None = None,
    deps_factory: DepsFactory | None = None,
) -> IdeaOutcome:
    """Run (or continue, from the idea's checkpoints) one idea's pipeline in ``job.run_dir``;
    events go to ``on_event``, else to the task's event sink (``TASK_EVENTS``)."""
    run = RunPaths(Path(job.run_dir))
    events = on_event or TASK_EVENTS.get()
    request = RunRequest(template=job.template, preset=job.settings.preset, on_event=events)
    deps = (deps_factory or real_deps)(job.settings, run, request)
    deps.gateway = deps.gateway.with_ledger(_task_ledger(job, run))
    deps.copilot = None
    prepare_environment(deps.runner)
    folder = run.idea(job.idea.Name).root
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite_saver(folder / "checkpoints.sqlite") as saver:
        graph = build_idea_graph(checkpointer=saver)
        config: Any = IDEA_THREAD
        started = bool(graph.get_state(config).values)
        payload = None if started else {"idea": job.idea, "feedback": {}}
        graph.invoke(payload, config=config, context=deps)
        snapshot = graph.get_state(config)
        if any(task.interrupts for task in snapshot.tasks):
            raise IdeaPausedError(
                f"idea {job.idea.Name} paused for a co-pilot answer; run it without --copilot"
            )
        outcome: IdeaOutcome = snapshot.values["outcomes"][job.idea.Name]
    return outcome


def _task_ledger(job: IdeaJob, run: RunPaths) -> Ledger:
    """The run-level ledger inside the task: the run's calls when it was sent and this
    idea's own calls of earlier attempts (each once); it writes no file (the run's ledger
    gets the idea's calls from ``<idea>/ledger.jsonl`` when the task ends)."""
    ledger = Ledger(None)
    own = run.idea(job.idea.Name).root / "ledger.jsonl"
    seen: set[str] = set()
    for entry in [*job.spent, *(read_entries(own) if own.is_file() else [])]:
        key = entry.model_dump_json()
        if key not in seen:
            seen.add(key)
            ledger.record(entry)
    return ledger


def job_for(idea: Idea, deps: PipelineDeps, *, run_dir: str | None = None) -> IdeaJob:
    """The job of ``idea`` in the run ``deps`` drives."""
    return IdeaJob(
        run_dir=run_dir or str(deps.run.root),
        template=str(deps.template.path),
        settings=deps.settings,
        idea=idea,
        spent=deps.run_ledger.entries,
    )


@dataclass
class LocalIdeaRunner:
    """Ideas apart, in this process: how ``scientist resume`` continues a run whose ideas
    ran as Ray tasks (each from its own checkpoints), with no cluster needed."""

    parallel: int = 1
    deps_factory: DepsFactory | None = None

    def __call__(self, idea: Idea, deps: PipelineDeps) -> IdeaOutcome:
        """Run the idea's task here."""
        job = job_for(idea, deps)
        return run_idea_job(job, on_event=deps.on_event, deps_factory=self.deps_factory)
