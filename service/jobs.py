"""Job kinds behind one small interface: a :class:`JobHandler` per kind.

A handler gets a :class:`JobContext` (the job, its settings, its folder, a progress
callback) and returns the result JSON, or raises. Progress goes through ``ctx.report``,
which also stops the handler (by raising) when the job was cancelled or its claim lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from core.runstore import RunPaths
from core.settings import Settings
from gateway import Gateway
from gateway.cache import ResponseCache
from gateway.ledger import Ledger
from graphs.review import checkpointed, review_paper
from reviewer.review.form import ReviewReport
from reviewer.review.nodes import ReviewInput
from reviewer.review.report import ReportRenderError, write_outputs
from reviewer.review.reviewing import ProgressEvent, ReviewDeps
from scientist.pipeline.deps import Copilot
from scientist.runs.run import run_in_folder
from service.checkpoints import open_checkpointer
from service.config import ServicePaths
from service.copilot import BrowserCopilot, CopilotStore
from service.store import JobRecord

GatewayFactory = Callable[[Settings], Gateway]
MAX_RUN_EVENTS = 30
STAGE_OF_NODE = {
    "load_paper": "checking references and numbers",  # the checks run next (no LLM)
    "run_checks": "reviewing",
    "prepare_excerpt": "reviewing",
    "review_one": "reviewing",
    "write_meta_review": "deciding",
    "decide": "writing the report",
}


@dataclass
class JobContext:
    """What a handler may use: the job, its effective settings, its folder, progress, and
    ``check``, which raises when the job was cancelled or its claim lost (for a handler
    that waits without reporting progress)."""

    job: JobRecord
    settings: Settings
    paths: ServicePaths
    report: Callable[[dict[str, Any]], None] = field(default=lambda progress: None)
    check: Callable[[], None] = field(default=lambda: None)


class JobHandler(Protocol):
    """Runs one kind of job to its result JSON."""

    kind: str

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Do the job; return what GET shows as its result."""
        ...


@cache
def shared_cache(path: Path) -> ResponseCache:
    """One response-cache connection per file for the whole worker process."""
    return ResponseCache(path)


def cache_for(settings: Settings) -> ResponseCache | None:
    """The response cache these settings ask for, if any."""
    return shared_cache(settings.cache_file()) if settings.llm.cache_enabled else None


def default_gateway(settings: Settings) -> Gateway:
    """The real gateway for these settings, with the response cache.

    The cache is what makes a resumed job cheap: calls a killed worker already made are
    answered from it (LangGraph re-runs an unfinished step as a whole).
    """
    return Gateway(settings, cache=cache_for(settings))


class ReviewProgress:
    """Turns reviewer events and graph steps into the job's progress JSON (thread-safe)."""

    def __init__(self, settings: Settings, report: Callable[[dict[str, Any]], None]) -> None:
        review = settings.review
        self.total = review.num_reviewers * (1 + review.num_reflections) + 2
        self.reviewers: dict[str, dict[str, Any]] = {}
        self.stage = "queued"
        self._report = report
        self._lock = threading.Lock()

    def on_reviewer(self, event: ProgressEvent) -> None:
        """A reviewer finished its review or a reflection round."""
        with self._lock:
            self.reviewers[str(event.reviewer)] = {
                "round": event.round,
                "total_rounds": event.total_rounds,
                "done": event.done,
            }
        self.push()

    def on_stage(self, stage: str) -> None:
        """The graph moved on."""
        with self._lock:
            self.stage = stage
        self.push()

    def on_node(self, node: str) -> None:
        """A graph node finished: its stage, if it starts a new one."""
        if node in STAGE_OF_NODE:
            self.on_stage(STAGE_OF_NODE[node])

    def finish(self) -> None:
        """Everything is written."""
        with self._lock:
            self.stage = "done"
        self.push(1.0)

    def push(self, fraction: float | None = None) -> None:
        """Send the current progress to the job row."""
        with self._lock:
            steps = sum(r["round"] + 1 for r in self.reviewers.values())
            steps += {"writing the report": 1, "done": 2}.get(self.stage, 0)
            snapshot = {
                "stage": self.stage,
                "reviewers": dict(self.reviewers),
                "fraction": fraction if fraction is not None else min(steps / self.total, 0.99),
            }
        self._report(snapshot)


class ReviewHandler:
    """Reviews the uploaded PDF with the review graph, checkpointed by job id."""

    kind = "review"

    def __init__(self, gateway_factory: GatewayFactory = default_gateway) -> None:
        self.gateway_factory = gateway_factory

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Run (or resume) the graph, then write review.json/.md/.html/.pdf.

        Under ``max_concurrency=1`` (every reviewer on the one embedded server) LangGraph
        queues a finished reviewer's checkpoint write behind the next reviewer on its single
        worker thread, so a kill mid-ensemble re-runs the whole reviewer step on resume; the
        response cache then answers the calls already made.
        """
        job, settings = ctx.job, ctx.settings
        progress = ReviewProgress(settings, ctx.report)
        ledger = Ledger(ctx.paths.job_dir(job.id) / "ledger.jsonl")
        gateway = self.gateway_factory(settings).with_ledger(ledger)
        deps = ReviewDeps.from_settings(settings, gateway, on_progress=progress.on_reviewer)
        inputs = ReviewInput(pdf_path=str(ctx.paths.upload(job.id)))
        with open_checkpointer(ctx.paths.checkpoints) as saver:
            resumed = checkpointed(saver, job.id)
            progress.on_stage("resuming" if resumed else "reading the paper")
            report = review_paper(
                inputs,
                deps,
                checkpointer=saver,
                thread_id=job.id,
                on_node=progress.on_node,
            )
            report = report.model_copy(
                update={"paper": report.paper.model_copy(update={"source": job.params["filename"]})}
            )
            progress.on_stage("writing the report")
            pdf_error = write_reports(report, ctx.paths.review_dir(job.id))
            saver.delete_thread(job.id)  # the files hold it all now; keep the database small
        slim = report.model_copy(update={"shown": report.shown.model_copy(update={"text": ""})})
        progress.finish()
        return {"review": slim.model_dump(mode="json"), "pdf_error": pdf_error, "resumed": resumed}


def write_reports(report: ReviewReport, out_dir: Path) -> str | None:
    """review.json/.md/.html/.pdf; why the PDF is missing when only it failed."""
    try:
        write_outputs(report, out_dir)
    except ReportRenderError as exc:
        return str(exc)
    return None


class RunLauncher(Protocol):
    """Runs the paper pipeline (``scientist.runs.run.run_in_folder``'s signature). It is
    given ``copilot`` only for a co-pilot run, so a launcher that cannot pause needs none."""

    def __call__(
        self,
        settings: Settings,
        template: str,
        run_paths: RunPaths,
        *,
        on_event: Callable[[Any], None] | None = None,
        copilot: Copilot | None = None,
    ) -> Any:
        """Run (or resume, from the run folder's checkpoints) and return the run's summary."""
        ...


def pipeline_launcher(
    settings: Settings,
    template: str,
    run_paths: RunPaths,
    *,
    on_event: Callable[[Any], None] | None = None,
    copilot: Copilot | None = None,
) -> Any:
    """The real pipeline: start the run in its folder, or resume it from its checkpoints."""
    return run_in_folder(settings, template, run_paths, on_event=on_event, copilot=copilot)


def as_json(value: Any) -> Any:
    """A pydantic model, dataclass, dict or anything else as JSON-ready data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if is_dataclass(value) and not isinstance(value, type):
        return {k: as_json(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _first(data: dict[str, Any], *names: str) -> Any:
    return next((data[n] for n in names if data.get(n) is not None), None)


class RunProgress:
    """Folds the pipeline's events into ``{"stage", "ideas": {name: stage}, "events"}``."""

    def __init__(self, report: Callable[[dict[str, Any]], None]) -> None:
        self.stage: str | None = None
        self.ideas: dict[str, str] = {}
        self.events: list[dict[str, Any]] = []
        self._report = report
        self._lock = threading.Lock()

    def on_event(self, event: Any) -> None:
        """One pipeline event of any shape: a model, a dataclass, a dict or a string."""
        data = as_json(event)
        if not isinstance(data, dict):
            data = {"stage": str(data)}
        stage = _first(data, "stage", "kind", "event") or type(event).__name__
        idea = _first(data, "idea", "idea_name", "name")
        status = _first(data, "status", "state")
        label = f"{stage}: {status}" if status else str(stage)
        with self._lock:
            self.stage = label
            if isinstance(idea, str):
                self.ideas[idea] = label
            self.events = [*self.events, {"at": time.time(), **data}][-MAX_RUN_EVENTS:]
            snapshot = {"stage": self.stage, "ideas": dict(self.ideas), "events": self.events}
        self._report(snapshot)


class RunHandler:
    """Runs the paper pipeline on a template into ``jobs/<id>/run/``."""

    kind = "run"

    def __init__(self, launcher: RunLauncher = pipeline_launcher) -> None:
        self.launcher = launcher

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Launch (or resume: the run folder and its checkpoints are kept) the pipeline; a
        co-pilot run waits at each pause for its owner's answer (``service.copilot``)."""
        run_paths = RunPaths(ctx.paths.run_dir(ctx.job.id))
        run_paths.root.mkdir(parents=True, exist_ok=True)
        progress = RunProgress(ctx.report)
        template = ctx.job.params["template"]
        if not ctx.job.params.get("copilot"):
            summary = self.launcher(ctx.settings, template, run_paths, on_event=progress.on_event)
        else:
            copilot = browser_copilot(ctx, progress.on_event)
            summary = self.launcher(
                ctx.settings, template, run_paths, on_event=progress.on_event, copilot=copilot
            )
        return {"summary": as_json(summary), "run_dir": str(run_paths.root)}


def browser_copilot(ctx: JobContext, on_event: Callable[[Any], None]) -> BrowserCopilot:
    """The co-pilot of a run job: pauses go to the job store, answers come from its owner."""
    assert ctx.job.claim is not None
    return BrowserCopilot(
        store=CopilotStore(ctx.paths.database),
        job_id=ctx.job.id,
        claim=ctx.job.claim,
        check=ctx.check,
        on_event=on_event,
        poll_s=ctx.settings.service.poll_interval_s,
    )


def default_handlers(
    gateway_factory: GatewayFactory = default_gateway, launcher: RunLauncher = pipeline_launcher
) -> dict[str, JobHandler]:
    """One handler per job kind."""
    return {"review": ReviewHandler(gateway_factory), "run": RunHandler(launcher)}
