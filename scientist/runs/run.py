"""Start or resume a paper run: build the deps, drive the graph, answer co-pilot pauses."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from core.runstore import RunPaths, RunStoreError, new_run, open_run
from core.settings import Settings
from gateway.errors import AutoscholarError
from graphs.paper import build_paper_graph
from scientist.experiments.runner import prepare_environment
from scientist.ideas.given import given_ideas
from scientist.ideas.template import load_template
from scientist.pipeline import stages
from scientist.pipeline.deps import Copilot, IdeaRunner, PipelineDeps
from scientist.pipeline.models import (
    CopilotRequest,
    IdeaOutcome,
    PipelineEvent,
    RunManifest,
)
from scientist.runs.wiring import (
    IDEA_RUNNER,
    THREAD,
    VERSIONED,
    RunRequest,
    checkpointer,
    real_deps,
    settings_for,
)


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
    given_ideas(settings)  # a researcher's idea that is not valid fails before the folder
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
    copilot: Copilot | None = None,
) -> RunManifest:
    """Start a run in ``run``, or continue it if it has checkpoints (the service's entry:
    a job claimed again after its worker died gets the same folder); ``copilot`` answers
    its pauses (the service's co-pilot runs)."""
    run.root.mkdir(parents=True, exist_ok=True)
    request = RunRequest(
        template=template, preset=settings.preset, copilot=copilot, on_event=on_event
    )
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
