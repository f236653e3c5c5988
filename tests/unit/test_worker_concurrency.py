"""A worker runs up to ``service.jobs_per_worker`` jobs at once, each exactly once (#22)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from service.config import ServiceConfig
from service.jobs import JobContext
from service.worker import Worker


def _config(tmp_path: Path, jobs_per_worker: int) -> ServiceConfig:
    overrides = {
        "data_dir": str(tmp_path / "data"),
        "service": {"jobs_per_worker": jobs_per_worker, "poll_interval_s": 0.02},
    }
    return ServiceConfig(preset="debug", overrides=overrides)


class Gathering:
    """Each job waits until ``parties`` jobs are inside at once (or times out)."""

    kind = "review"

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)
        self.most_at_once = 0
        self.ran: list[str] = []
        self._inside = 0
        self._lock = threading.Lock()

    def run(self, ctx: JobContext) -> dict[str, Any]:
        with self._lock:
            self._inside += 1
            self.most_at_once = max(self.most_at_once, self._inside)
            self.ran.append(ctx.job.id)
        try:
            self.barrier.wait()  # BrokenBarrierError unless enough jobs run together
            ctx.report({"stage": "together"})
            time.sleep(0.05)
        finally:
            with self._lock:
                self._inside -= 1
        return {"job": ctx.job.id}


def _run_until_finished(worker: Worker, expected: int, timeout: float = 30) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while worker.store.counts().get("done", 0) + worker.store.counts().get("failed", 0) < expected:
        assert time.monotonic() < deadline, worker.store.counts()
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_worker_runs_n_jobs_at_once_and_completes_each_once(tmp_path: Path) -> None:
    handler = Gathering(parties=4)
    worker = Worker(_config(tmp_path, 4), {"review": handler}, name="wide")
    ids = [worker.store.create("review", f"user{i % 2}", {}).id for i in range(8)]
    _run_until_finished(worker, expected=8)

    jobs = [worker.store.get(i) for i in ids]
    assert [j.status for j in jobs if j] == ["done"] * 8, [j.error for j in jobs if j]
    assert [(j.completions, j.attempts) for j in jobs if j] == [(1, 1)] * 8
    assert sorted(handler.ran) == sorted(ids)  # each job ran once
    assert handler.most_at_once == 4  # never more than the slots, and all of them used
    for job_id in ids:
        assert [e.event for e in worker.store.log(job_id)] == ["queued", "claimed", "completed"]
    assert worker.in_flight == {}


def test_one_job_per_worker_never_overlaps(tmp_path: Path) -> None:
    handler = Gathering(parties=1)
    worker = Worker(_config(tmp_path, 1), {"review": handler})
    for _ in range(3):
        worker.store.create("review", "alice", {})
    _run_until_finished(worker, expected=3)
    assert handler.most_at_once == 1 and len(handler.ran) == 3


class Blocking:
    """Jobs that run until released."""

    kind = "review"

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Event()

    def run(self, ctx: JobContext) -> dict[str, Any]:
        self.started.release()
        while not self.release.wait(0.02):
            ctx.report({"stage": "waiting"})
        return {}


def test_release_all_hands_every_running_job_back(tmp_path: Path) -> None:
    handler = Blocking()
    worker = Worker(_config(tmp_path, 3), {"review": handler})
    ids = [worker.store.create("review", "alice", {}).id for _ in range(3)]
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()
    for _ in ids:
        assert handler.started.acquire(timeout=10)
    stop.set()
    worker.release_all("worker stopped")  # what SIGTERM does in the worker's main thread
    handler.release.set()
    thread.join(timeout=30)
    for job_id in ids:
        job = worker.store.get(job_id)
        assert job is not None and job.status == "queued" and job.completions == 0
        assert [e.event for e in worker.store.log(job_id)] == ["queued", "claimed", "released"]
