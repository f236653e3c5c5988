"""A batch through the local process pool and through Ray on this machine: Ray's overhead
per task, the ratio of wall times, and how wall time would scale over N nodes.

Each of the 8 tasks is one run of one idea whose pipeline does the same fixed CPU work
(sha256 rounds, calibrated once to about ``--work-s`` seconds on one core), so only the
executors differ. Both run as ``scientist batch`` runs them: the pool
(``LocalProcessExecutor``, 2 spawned processes, each run and its idea in one process) and
``RayExecutor`` on a private Ray instance with 2 CPUs: each run made and driven on the
driver, its idea sent as one Ray task of one CPU (the job, with the run's settings and
ledger, and the template packed once per batch, travel with it). The run's own stage (the
ideas) is left out of both: it is the same work in both places. Ray's instance is started
once (its start-up is reported apart); the first Ray batch is cold (worker processes import
autoscholar), later ones are warm. Timed alternately, ``--repeats`` each.

    overhead per task = (slots x wall - sum of the tasks' own work seconds) / tasks
        (the slot time a task costs beyond its work: start-up, folders, scheduling, results;
        measured from each task's own timing, so a busy machine slows the work, not this)
    projected wall on N nodes of 2 slots = ceil(tasks / (2N)) x (work + overhead per task)

Target: Ray's wall time within 1.2x of the local pool's (warm workers: a running cluster;
the cold batch and the instance's start-up, which a one-off ``scientist batch --executor
ray`` without an address pays once, are reported beside it).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import emit_json, fmt, make_console, median, verdict
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.runstore import new_run
from core.settings import ClusterSettings
from scientist.ideas.models import Idea
from scientist.pipeline.deps import PipelineDeps
from scientist.pipeline.models import IdeaOutcome, StageUsage
from scientist.runs.batch import (
    BatchResult,
    BatchTask,
    Executor,
    LocalProcessExecutor,
    run_batch,
)
from scientist.runs.idea_task import IdeaJob, job_for
from scientist.runs.wiring import IDEA_RUNNER, RunRequest, settings_for
from tests.pipeline_support import PipelineModel, fake_deps_factory

TARGET_RATIO = 1.2
SLOTS = 2
TOY = str(Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "template_toy")


IDEA = Idea(
    Name="cpu_work",
    Title="Fixed CPU work",
    Experiment="Burn sha256 rounds.",
    Interestingness=1,
    Feasibility=10,
    Novelty=1,
)


@dataclass(frozen=True)
class CpuIdea:
    """An idea task that burns a fixed number of sha256 rounds (on a Ray worker, or in the
    pool's process); its seconds are the experiments stage's."""

    rounds: int

    def __call__(self, job: IdeaJob) -> IdeaOutcome:
        start = time.perf_counter()
        burn(self.rounds)
        usage = {"experiments": StageUsage(seconds=time.perf_counter() - start)}
        return IdeaOutcome(name=job.idea.Name, status="done", usage=usage)


@dataclass(frozen=True)
class InProcess:
    """The pool's idea runner: the idea task in the run's own process."""

    work: CpuIdea
    parallel: int = 1

    def __call__(self, idea: Idea, deps: PipelineDeps) -> IdeaOutcome:
        return self.work(job_for(idea, deps))


@dataclass(frozen=True)
class CpuRun:
    """A batch task: one run folder with one idea, whose pipeline is the CPU work; the
    executor's idea runner (Ray's, on the driver) or the run's own process runs it."""

    work: CpuIdea

    def __call__(self, task: BatchTask) -> BatchResult:
        start = time.perf_counter()
        settings = settings_for(task.preset, task.overrides)
        run = new_run(settings.runs_dir, "cpu")
        request = RunRequest(template=task.template)
        deps = fake_deps_factory(PipelineModel())(settings, run, request)
        runner = IDEA_RUNNER.get() or InProcess(self.work)
        outcome = runner(IDEA, deps)
        return BatchResult(
            task=task,
            run_dir=str(run.root),
            status=outcome.status,
            seconds=time.perf_counter() - start,
            ideas=[outcome],
        )


def burn(rounds: int) -> None:
    """CPU work: chained sha256 of a 64-byte block."""
    digest = b"\0" * 64
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest() * 2


def calibrate(work_s: float) -> tuple[int, float]:
    """Rounds that take about ``work_s`` on one core here, and what they took."""
    rounds = 20_000
    while True:
        start = time.perf_counter()
        burn(rounds)
        took = time.perf_counter() - start
        if took > 0.5:
            break
        rounds *= 2
    rounds = int(rounds * work_s / took)
    start = time.perf_counter()
    burn(rounds)
    return rounds, time.perf_counter() - start


def tasks(tmp: Path, count: int) -> list[BatchTask]:
    """``count`` runs of the toy template, their folders under ``tmp``."""
    overrides = [f"runs_dir={tmp / 'runs'}", f"data_dir={tmp / 'data'}"]
    return [BatchTask(template=TOY, preset="debug", overrides=overrides) for _ in range(count)]


@dataclass(frozen=True)
class Timing:
    """One batch: its wall time and the seconds each task spent on its work."""

    wall_s: float
    work_s: list[float]

    @property
    def overhead_per_task(self) -> float:
        """Slot seconds per task not spent on the work."""
        return (SLOTS * self.wall_s - sum(self.work_s)) / len(self.work_s)


def timed(executor: Executor, work: CpuRun, batch: list[BatchTask]) -> Timing:
    """Run the batch; from submitting it to its last result, and each idea's own work time."""
    start = time.perf_counter()
    results = run_batch(batch, executor, fn=work)
    seconds = time.perf_counter() - start
    assert all(r.status == "done" for r in results), [r.reason for r in results]
    return Timing(seconds, [r.ideas[0].usage["experiments"].seconds for r in results])


def projected(count: int, nodes: int, work_s: float, overhead: float | None) -> float | None:
    """Wall time of ``count`` tasks on ``nodes`` nodes of 2 slots."""
    if overhead is None:
        return None
    return math.ceil(count / (SLOTS * nodes)) * (work_s + overhead)


def main() -> None:
    """Alternate pool and Ray batches; report overheads, the ratio and the projection."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--work-s", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # loopback only; no token in ~/.ray
    import ray  # the optional `cluster` extra; imported after its environment is set

    from scientist.runs.ray_executor import RayExecutor

    rounds, calibrated_s = calibrate(args.work_s)
    work = CpuRun(CpuIdea(rounds))
    start = time.perf_counter()
    ray.init(num_cpus=SLOTS, include_dashboard=False, logging_level=logging.WARNING)
    ray_start_s = time.perf_counter() - start
    pool, warm = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ray_executor = RayExecutor(ClusterSettings(num_cpus=1), poll_s=0.05, idea_fn=work.work)
        cold = timed(ray_executor, work, tasks(tmp / "cold", args.tasks))
        for i in range(args.repeats):
            pool.append(timed(LocalProcessExecutor(SLOTS), work, tasks(tmp / f"p{i}", args.tasks)))
            warm.append(timed(ray_executor, work, tasks(tmp / f"r{i}", args.tasks)))
    ray.shutdown()
    p, r = median([t.wall_s for t in pool]), median([t.wall_s for t in warm])
    ratio = None if p is None or r is None else r / p
    cold_ratio = None if p is None else (cold.wall_s + ray_start_s) / p
    over_pool = median([t.overhead_per_task for t in pool])
    over_ray = median([t.overhead_per_task for t in warm])
    over_cold = cold.overhead_per_task
    work_s = median([s for t in warm for s in t.work_s]) or calibrated_s
    ideal = math.ceil(args.tasks / SLOTS) * work_s

    console = make_console()
    title = f"{args.tasks} tasks of {work_s:.2f} s CPU work, {SLOTS} slots (ideal {ideal:.1f} s)"
    table = Table(title=title)
    for column in ("executor", "wall s (median)", "x ideal", "overhead per task s"):
        table.add_column(column)
    for name, seconds, over in (
        ("local pool (2 processes)", p, over_pool),
        ("Ray, warm workers", r, over_ray),
        ("Ray, first batch (cold workers)", cold.wall_s, over_cold),
    ):
        times = None if seconds is None else seconds / ideal
        table.add_row(name, fmt(seconds, 2), fmt(times, 2), fmt(over, 3))
    console.print(table)
    console.print(f"Ray instance start-up (once per batch command): {ray_start_s:.1f} s")
    console.print(
        f"a one-off batch on a private instance (start-up + cold batch) / local pool: "
        f"{fmt(cold_ratio, 2)}x"
    )
    console.print(
        f"Ray / local pool wall time: {fmt(ratio, 2)}x (target ≤ {TARGET_RATIO}x): "
        f"{verdict(ratio, TARGET_RATIO + 1e-9, higher_is_better=False)}"
    )
    projection = Table(title="projected wall time on N nodes of 2 slots (measured overhead)")
    projection.add_column("tasks")
    node_counts = (1, 2, 4, 8)
    for n in node_counts:
        projection.add_column(f"{n} node{'s' if n > 1 else ''} s")
    figures: dict[str, dict[str, float | None]] = {}
    for count in (args.tasks, 64):
        row = {str(n): projected(count, n, work_s, over_ray) for n in node_counts}
        figures[str(count)] = row
        projection.add_row(str(count), *(fmt(v, 1) for v in row.values()))
    console.print(projection)
    emit_json(
        {
            "tasks": args.tasks,
            "work_s": round(work_s, 3),
            "slots": SLOTS,
            "ideal_s": round(ideal, 3),
            "pool_s_median": p,
            "ray_s_median": r,
            "ray_cold_s": cold.wall_s,
            "ray_start_s": round(ray_start_s, 2),
            "overhead_s_per_task_pool": over_pool,
            "overhead_s_per_task_ray": over_ray,
            "overhead_s_per_task_ray_cold": over_cold,
            "ratio_ray_to_pool": ratio,
            "ratio_private_start_and_cold_to_pool": cold_ratio,
            "target_ratio": TARGET_RATIO,
            "verdict": verdict(ratio, TARGET_RATIO + 1e-9, higher_is_better=False),
            "projected_wall_s": figures,
        }
    )


if __name__ == "__main__":
    main()
