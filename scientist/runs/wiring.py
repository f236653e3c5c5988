"""What a paper run is built from: its request, settings and real dependencies, its
checkpointer, and the context a task runs in (where events go, who runs its ideas).
``scientist.runs.run`` drives a run with them; ``scientist.runs.idea_task`` runs one idea
with them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel

import reviewer.checks.models
import reviewer.review.form
import scientist.ideas.nodes
import scientist.ideas.records
import scientist.plan.models
import scientist.survey.models
import scientist.writeup.models
import scientist.writeup.results
from core.literature import build_literature
from core.runstore import RunPaths
from core.settings import Settings, load_settings, parse_assignments
from gateway import Gateway
from gateway.cache import ResponseCache
from gateway.ledger import Ledger
from graphs.paper import STAGE_GRAPHS
from reviewer.review.reviewing import ReviewDeps
from scientist.experiments.editor import AiderCLI
from scientist.experiments.models import (
    ExperimentRecord,
    FigureNote,
    GroupResult,
    RoundRecord,
    RunOutcome,
)
from scientist.experiments.runner import SandboxRunner
from scientist.ideas.models import Idea
from scientist.ideas.template import Template, TemplatePrompt, load_template
from scientist.pipeline.deps import Copilot, IdeaRunner, PipelineDeps
from scientist.pipeline.models import (
    IdeaOutcome,
    PipelineEvent,
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
# and checkpoint in its thread, so a run killed in either resumes from their states too; so
# does the idea graph, in the ideas node's namespace (its template, drafts and verdicts).
CHECKPOINT_TYPES: tuple[type, ...] = (
    Idea,
    Template,
    TemplatePrompt,
    StageUsage,
    IdeaOutcome,
    ExperimentRecord,
    RunOutcome,
    GroupResult,
    RoundRecord,
    FigureNote,
    *_models_in(
        scientist.ideas.records,
        scientist.ideas.nodes,
        scientist.survey.models,
        scientist.plan.models,
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
