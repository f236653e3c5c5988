"""Batch: many paper runs at once on a process pool; a failing run or idea stops no other.

The executor is an interface: ``LocalProcessExecutor`` uses this machine's cores;
``scientist.runs.ray_executor.RayExecutor`` sends the same ``BatchTask`` objects to a Ray
cluster, each with the run folder it made for it (``run_dir``), so a retried task resumes.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from scientist.pipeline.deps import PipelineDeps
from scientist.pipeline.models import IdeaOutcome, RunManifest
from scientist.runs.run import RunInterrupted, resume_pipeline, run_pipeline
from scientist.runs.wiring import TASK_EVENTS, RunRequest


class BatchTask(BaseModel):
    """One paper run of a batch: a template with its preset and overrides."""

    model_config = ConfigDict(extra="forbid")

    template: str
    preset: str
    overrides: list[str] = Field(default_factory=list)
    run_dir: str | None = Field(
        None,
        description="A run folder made for this task (run.json and checkpoints in it): the task "
        "resumes it. None: the task makes a new folder under runs_dir.",
    )


class BatchResult(BaseModel):
    """What one run of a batch ended with."""

    model_config = ConfigDict(extra="forbid")

    task: BatchTask
    run_dir: str | None = None
    status: str
    reason: str | None = None
    seconds: float
    ideas: list[IdeaOutcome] = Field(default_factory=list)
    node: str | None = Field(None, description="Where it ran: the Ray node (None: this machine).")


TaskFn = Callable[[BatchTask], BatchResult]


class Executor(Protocol):
    """Runs tasks somewhere and yields results as they finish."""

    def run(self, fn: TaskFn, tasks: Iterable[BatchTask]) -> Iterator[BatchResult]:
        """Each task's result, in completion order."""
        ...


class InlineExecutor:
    """One task after another in this process (tests, debugging)."""

    def run(self, fn: TaskFn, tasks: Iterable[BatchTask]) -> Iterator[BatchResult]:
        """Run each task here."""
        for task in tasks:
            yield fn(task)


class LocalProcessExecutor:
    """A pool of ``parallel`` fresh processes (spawned: no state shared with this one)."""

    def __init__(self, parallel: int) -> None:
        self.parallel = parallel

    def run(self, fn: TaskFn, tasks: Iterable[BatchTask]) -> Iterator[BatchResult]:
        """Submit every task; yield results as they complete; a dead worker is a failed task."""
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.parallel, mp_context=context) as pool:
            futures: dict[Future[BatchResult], BatchTask] = {
                pool.submit(fn, task): task for task in tasks
            }
            for future in as_completed(futures):
                yield _result(future, futures[future])


def _result(future: Future[BatchResult], task: BatchTask) -> BatchResult:
    try:
        return future.result()
    except Exception as exc:
        return BatchResult(
            task=task, status="failed", reason=f"{type(exc).__name__}: {exc}", seconds=0.0
        )


def run_task(
    task: BatchTask, *, deps_factory: Callable[..., PipelineDeps] | None = None
) -> BatchResult:
    """One paper run, in whatever process the executor chose; never raises. A task with a
    ``run_dir`` continues that folder from its checkpoints (a retried task repeats nothing
    it finished); ``deps_factory`` replaces the real dependencies (tests)."""
    start = time.monotonic()
    on_event = TASK_EVENTS.get()
    request = RunRequest(
        template=task.template, preset=task.preset, overrides=task.overrides, on_event=on_event
    )
    try:
        if task.run_dir is not None:
            run, manifest = resume_pipeline(
                task.run_dir, on_event=on_event, deps_factory=deps_factory
            )
        else:
            run, manifest = run_pipeline(request, deps_factory=deps_factory)
    except RunInterrupted as exc:
        return BatchResult(
            task=task,
            run_dir=exc.run_dir,
            status="interrupted",
            reason=str(exc),
            seconds=time.monotonic() - start,
        )
    except Exception as exc:
        return BatchResult(
            task=task,
            run_dir=task.run_dir,
            status="failed",
            reason=f"{type(exc).__name__}: {exc}",
            seconds=time.monotonic() - start,
        )
    return result_of(task, str(run.root), manifest, time.monotonic() - start)


def result_of(task: BatchTask, run_dir: str, manifest: RunManifest, seconds: float) -> BatchResult:
    """A finished run's result: its status and the reason (why it failed or ran no idea)."""
    return BatchResult(
        task=task,
        run_dir=run_dir,
        status=manifest.status,
        reason=manifest.reason,
        seconds=seconds,
        ideas=manifest.ideas,
    )


def progress_line(result: BatchResult) -> str:
    """One line as a run of the batch ends: what it ended with, how long it took, and why it
    wrote no paper when it wrote none."""
    papers = sum(1 for o in result.ideas if o.paper_pdf)
    line = f"{result.task.template}: {result.status} in {result.seconds:.0f} s"
    line += f" on {result.node}" if result.node else ""
    if result.status == "done":
        line += f" ({papers} paper{'' if papers == 1 else 's'} from {len(result.ideas)} idea"
        line += f"{'' if len(result.ideas) == 1 else 's'})"
    return line + (f": {result.reason}" if result.reason else "")


def run_batch(
    tasks: list[BatchTask],
    executor: Executor,
    fn: TaskFn = run_task,
    on_result: Callable[[BatchResult], None] | None = None,
) -> list[BatchResult]:
    """Every task through ``executor``; results in completion order."""
    results = []
    for result in executor.run(fn, tasks):
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
