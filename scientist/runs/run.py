"""Start or resume a paper run: build the deps, drive the graph, answer co-pilot pauses."""

from __future__ import annotations

import importlib.metadata
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command
from pydantic import BaseModel

import reviewer.checks.models
import reviewer.review.form
import scientist.ideas.records
import scientist.writeup.models
import scientist.writeup.results
from core.literature import build_literature
from core.runstore import RunPaths, RunStoreError, new_run, open_run
from core.settings import Settings, load_settings, parse_assignments
from gateway import Gateway
from gateway.cache import ResponseCache
from gateway.errors import AutoscholarError
from gateway.ledger import Ledger
from graphs.paper import STAGE_GRAPHS, build_paper_graph
from reviewer.review.reviewing import ReviewDeps
from scientist.experiments.editor import AiderCLI
from scientist.experiments.models import (
    ExperimentRecord,
    FigureNote,
    GroupResult,
    RoundRecord,
    RunOutcome,
)
from scientist.experiments.runner import SandboxRunner, prepare_environment
from scientist.ideas.models import Idea
from scientist.ideas.template import load_template
from scientist.pipeline import stages
from scientist.pipeline.deps import Copilot, IdeaRunner, PipelineDeps
from scientist.pipeline.models import (
    CopilotRequest,
    IdeaOutcome,
    PipelineEvent,
    RunManifest,
    StageUsage,
)
from scientist.writeup.html import compiler_for

THREAD: RunnableConfig = {"configurable": {"thread_id": "paper"}}

# Where the progress events of the run a task is running go (an executor that shows them
# elsewhere, the Ray executor's task wrapper, sets it around the task); None: nowhere.
TASK_EVENTS: ContextVar[Callable[[PipelineEvent], None] | None] = ContextVar(
    "task_events", default=None
)
# Who runs each idea's pipeline when a run starts in this context: None runs them inside the
# run's graph; the Ray executor sets one that sends each idea to the cluster as a task.
IDEA_RUNNER: ContextVar[IdeaRunner | None] = ContextVar("idea_runner", default=None)


def _models_in(*modules: ModuleType) -> tuple[type, ...]:
    """Every pydantic model defined in ``modules``."""
    return tuple(
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == module.__name__
    )


# Our types that live in checkpoints; anything else is refused when a checkpoint is read
# (restored as a plain dict). The write-up and review graphs run inside an idea's pipeline
# and checkpoint in its thread, so a run killed in either resumes from their states too.
CHECKPOINT_TYPES: tuple[type, ...] = (
    Idea,
    StageUsage,
    IdeaOutcome,
    ExperimentRecord,
    RunOutcome,
    GroupResult,
    RoundRecord,
    FigureNote,
    *_models_in(
        scientist.ideas.records,
        scientist.writeup.models,
        scientist.writeup.results,
        reviewer.review.form,
        reviewer.checks.models,
    ),
)
VERSIONED = ("autoscholar", "langgraph", "litellm", "pydantic", "llama_cpp_python")


@dataclass
class RunRequest:
    """What to run: template, preset and overrides (replayed on resume), and the extras."""

    template: str
    preset: str = "default"
    overrides: list[str] = field(default_factory=list)
    copilot: Copilot | None = None
    on_event: Callable[[PipelineEvent], None] | None = None


def settings_for(preset: str, overrides: list[str]) -> Settings:
    """Settings from a preset and ``--set`` pairs (the environment applies too)."""
    return load_settings(preset, parse_assignments(overrides))


def real_deps(settings: Settings, run: RunPaths, request: RunRequest) -> PipelineDeps:
    """Deps with the real gateway, literature cascade, Aider, sandbox runner and latexmk; the
    review deps (calibration file, few-shot examples) load now, so a bad path fails first."""
    gateway = run_gateway(settings, run)
    template = load_template(request.template)
    literature = build_literature(settings)  # one cascade: its rate limits hold for both
    return PipelineDeps(
        settings=settings,
        gateway=gateway,
        graphs=STAGE_GRAPHS,
        review=ReviewDeps.from_settings(settings, gateway, literature=literature),
        template=template,
        run=run,
        literature=literature,
        editor=AiderCLI(settings),
        runner=SandboxRunner.for_template(settings, template.path),
        compiler=compiler_for(settings.writing.pdf_engine, settings.writing.isolation),
        copilot=request.copilot,
        on_event=request.on_event,
    )


def run_gateway(settings: Settings, run: RunPaths) -> Gateway:
    """The run's gateway: cache per settings, ledger.jsonl reloaded so budgets span resumes."""
    cache = ResponseCache(settings.cache_file()) if settings.llm.cache_enabled else None
    return Gateway(settings, ledger=Ledger(run.ledger, resume=True), cache=cache)


@contextmanager
def checkpointer(run: RunPaths) -> Iterator[SqliteSaver]:
    """A SqliteSaver on ``checkpoints.sqlite`` in the run folder."""
    with sqlite_saver(run.checkpoints) as saver:
        yield saver


@contextmanager
def sqlite_saver(path: Path) -> Iterator[SqliteSaver]:
    """A SqliteSaver on ``path`` that reads back only our checkpointed types."""
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        yield SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINT_TYPES))
    finally:
        conn.close()


def start_manifest(
    run: RunPaths, request: RunRequest, settings: Settings, *, ideas_apart: bool = False
) -> None:
    """run.json at the start: what was asked, with which versions, and where ideas run."""
    manifest = RunManifest(
        template=request.template,
        started_at=datetime.now(UTC).isoformat(),
        preset=request.preset,
        overrides=request.overrides,
        versions=_versions(),
        settings=json.loads(settings.model_dump_json()),
        idea_tasks="apart" if ideas_apart else "inline",
    )
    run.run_json.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")


def _versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def drive(deps: PipelineDeps, saver: SqliteSaver, *, resume: bool) -> dict[str, Any]:
    """Invoke the graph until it ends, answering each co-pilot pause."""
    apart = deps.idea_runner is not None
    graph = build_paper_graph(saver, ideas_apart=apart)
    parallel = deps.settings.pipeline.max_concurrent_ideas
    if deps.idea_runner is not None:
        parallel = deps.idea_runner.parallel
    config: dict[str, Any] = {**THREAD, "max_concurrency": parallel}
    payload: Any = None if resume and graph.get_state(config).values else {}
    while True:
        graph.invoke(payload, config=config, context=deps)
        pending = [i for task in graph.get_state(config).tasks for i in task.interrupts]
        if not pending:
            return dict(graph.get_state(config).values)
        if deps.copilot is None:
            raise RunStoreError("The run is paused for a co-pilot answer; resume with --copilot.")
        answers = {
            item.id: deps.copilot(CopilotRequest.model_validate(item.value)).model_dump()
            for item in pending
        }
        payload = Command(resume=answers)


def execute(
    run: RunPaths, request: RunRequest, *, resume: bool, deps: PipelineDeps | None = None
) -> RunManifest:
    """Run (or resume) the graph in ``run``; run.json records the outcome either way.

    The template's own virtualenv is made (or found) first, before any model call: a
    requirements.txt that does not install fails the run before ideas are paid for."""
    settings = deps.settings if deps else settings_for(request.preset, request.overrides)
    deps = deps or real_deps(settings, run, request)
    deps.idea_runner = deps.idea_runner or IDEA_RUNNER.get()
    if not resume:
        start_manifest(run, request, settings, ideas_apart=deps.idea_runner is not None)
    elif deps.idea_runner is None and _ideas_apart(run):
        deps.idea_runner = _local_idea_runner(settings)
    with checkpointer(run) as saver:
        try:
            prepare_environment(deps.runner)
            state = drive(deps, saver, resume=resume)
        except KeyboardInterrupt:
            stages.write_manifest(deps, _state(saver), status="interrupted", reason=_hint(run))
            raise
        except RunInterrupted as exc:
            stages.write_manifest(deps, _state(saver), status="interrupted", reason=_hint(run))
            raise RunInterrupted(_hint(run), run_dir=str(run.root)) from exc
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            stages.write_manifest(deps, _state(saver), status="failed", reason=reason)
            raise
    status, outcome = stages.finished_status(deps, state)  # type: ignore[arg-type]
    return stages.write_manifest(deps, state, status=status, reason=outcome)  # type: ignore[arg-type]


def _state(saver: SqliteSaver) -> Any:
    snapshot = build_paper_graph(saver).get_state(THREAD)
    return dict(snapshot.values)


def _hint(run: RunPaths) -> str:
    return f"interrupted; `scientist resume {run.root}` continues it"


class RunInterrupted(AutoscholarError):
    """The run was stopped from outside (Ctrl-C on the batch's driver cancelled its idea
    tasks); ``scientist resume`` continues it."""

    def __init__(self, message: str, *, run_dir: str | None = None) -> None:
        super().__init__(message)
        self.run_dir = run_dir


def _ideas_apart(run: RunPaths) -> bool:
    """Whether the run's ideas ran as tasks of their own (run.json says)."""
    try:
        manifest = RunManifest.model_validate_json(run.run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.idea_tasks == "apart"


def _local_idea_runner(settings: Settings, deps_factory: Any = None) -> IdeaRunner:
    from scientist.runs.idea_task import LocalIdeaRunner  # it imports this module

    return LocalIdeaRunner(settings.pipeline.max_concurrent_ideas, deps_factory)


def run_pipeline(
    request: RunRequest, *, deps_factory: Callable[..., PipelineDeps] | None = None
) -> tuple[RunPaths, RunManifest]:
    """A new run folder for ``request.template``, run to the end."""
    settings = settings_for(request.preset, request.overrides)
    template = load_template(request.template)
    run = new_run(settings.runs_dir, template.name)
    deps = (deps_factory or real_deps)(settings, run, request)
    return run, execute(run, request, resume=False, deps=deps)


def run_in_folder(
    settings: Settings,
    template: str,
    run: RunPaths,
    *,
    on_event: Callable[[PipelineEvent], None] | None = None,
    deps_factory: Callable[..., PipelineDeps] | None = None,
) -> RunManifest:
    """Start a run in ``run``, or continue it if it has checkpoints (the service's entry:
    a job claimed again after its worker died gets the same folder)."""
    run.root.mkdir(parents=True, exist_ok=True)
    request = RunRequest(template=template, preset=settings.preset, on_event=on_event)
    resume = run.checkpoints.is_file() and run.run_json.is_file()
    deps = (deps_factory or real_deps)(settings, run, request)
    return execute(run, request, resume=resume, deps=deps)


def resume_pipeline(
    path: str,
    *,
    copilot: Copilot | None = None,
    on_event: Callable[[PipelineEvent], None] | None = None,
    deps_factory: Callable[..., PipelineDeps] | None = None,
) -> tuple[RunPaths, RunManifest]:
    """Continue a run folder from its last checkpoint, with the settings it started with."""
    run = open_run(Path(path))
    if not run.run_json.is_file() or not run.checkpoints.is_file():
        raise RunStoreError(
            f"{path} has no run.json or checkpoints.sqlite: not a paper run folder."
        )
    manifest = RunManifest.model_validate_json(run.run_json.read_text(encoding="utf-8"))
    request = RunRequest(
        template=manifest.template,
        preset=manifest.preset,
        overrides=manifest.overrides,
        copilot=copilot,
        on_event=on_event,
    )
    settings = settings_for(request.preset, request.overrides)
    deps = (deps_factory or real_deps)(settings, run, request)
    if deps.idea_runner is None and IDEA_RUNNER.get() is None and manifest.idea_tasks == "apart":
        deps.idea_runner = _local_idea_runner(settings, deps_factory)
    return run, execute(run, request, resume=True, deps=deps)


def outcomes(manifest: RunManifest) -> list[IdeaOutcome]:
    """Ideas of a finished run in a stable order."""
    return sorted(manifest.ideas, key=lambda o: o.name)
