"""Batch: many paper runs at once on a process pool; a failing run or idea stops no other.

The executor is an interface: ``LocalProcessExecutor`` uses this machine's cores; a Ray
cluster can take the same ``BatchTask`` objects later by implementing ``Executor``.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from scientist.pipeline.models import IdeaOutcome


class BatchTask(BaseModel):
    """One paper run of a batch: a template with its preset and overrides."""

    model_config = ConfigDict(extra="forbid")

    template: str
    preset: str
    overrides: list[str] = Field(default_factory=list)


class BatchResult(BaseModel):
    """What one run of a batch ended with."""

    model_config = ConfigDict(extra="forbid")

    task: BatchTask
    run_dir: str | None = None
    status: str
    reason: str | None = None
    seconds: float
    ideas: list[IdeaOutcome] = Field(default_factory=list)


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


def run_task(task: BatchTask) -> BatchResult:
    """One paper run, in whatever process the executor chose; never raises."""
    from scientist.pipeline.run import RunRequest, run_pipeline

    start = time.monotonic()
    request = RunRequest(template=task.template, preset=task.preset, overrides=task.overrides)
    try:
        run, manifest = run_pipeline(request)
    except Exception as exc:
        return BatchResult(
            task=task,
            status="failed",
            reason=f"{type(exc).__name__}: {exc}",
            seconds=time.monotonic() - start,
        )
    return BatchResult(
        task=task,
        run_dir=str(run.root),
        status=manifest.status,
        seconds=time.monotonic() - start,
        ideas=manifest.ideas,
    )


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
