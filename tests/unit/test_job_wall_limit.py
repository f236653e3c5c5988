"""A job's wall-clock limit holds across lease renewals and re-claims (issue #15)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from service.config import ServiceConfig
from service.jobs import JobContext
from service.store import JobStore, overtime_error
from service.worker import Worker
from tests.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite", clock=clock)


def test_renewal_never_extends_a_lease_past_the_wall_limit(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    claimed = store.claim("w1", lease_s=60, max_attempts=3, max_wall_s=100)
    assert claimed is not None and claimed.claim is not None
    clock.now = 1050.0
    assert store.renew(job.id, claimed.claim, lease_s=60, max_wall_s=100) is False
    record = store.get(job.id)
    assert record is not None and record.lease_until == 1100.0  # not 1110: the limit caps it
    clock.now = 1030.0
    assert store.renew(job.id, claimed.claim, lease_s=60, max_wall_s=100) is False
    record = store.get(job.id)
    assert record is not None and record.lease_until == 1090.0  # under the limit: a full lease
    clock.now = 1100.0
    assert store.renew(job.id, claimed.claim, lease_s=60, max_wall_s=100) is None
    failed = store.get(job.id)
    assert failed is not None and failed.status == "failed" and failed.claim is None
    assert failed.error == overtime_error(100)
    assert store.log(job.id)[-1].note == "wall-clock limit"


def test_without_a_limit_renewal_extends_as_before(store: JobStore, clock: ManualClock) -> None:
    job = store.create("review", "alice", {})
    claimed = store.claim("w1", lease_s=60, max_attempts=3)
    assert claimed is not None and claimed.claim is not None
    clock.now = 1_000_000.0
    assert store.renew(job.id, claimed.claim, lease_s=60) is False
    record = store.get(job.id)
    assert record is not None and record.status == "running" and record.lease_until == 1_000_060.0


def test_a_job_past_its_limit_is_failed_not_claimed_again(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    assert store.claim("w1", lease_s=60, max_attempts=5, max_wall_s=100) is not None
    clock.now = 1099.0  # its worker died; the lease ran out, the limit not yet
    assert store.claim("w2", lease_s=60, max_attempts=5, max_wall_s=100) is not None
    clock.now = 1200.0  # the second worker died too, and now the limit has passed
    assert store.claim("w3", lease_s=60, max_attempts=5, max_wall_s=100) is None
    failed = store.get(job.id)
    assert failed is not None and failed.status == "failed"
    assert failed.error == overtime_error(100)


class Endless:
    """A handler that would run for a minute, reporting progress as it goes."""

    kind = "review"

    def __init__(self) -> None:
        self.stopped_after: float | None = None

    def run(self, ctx: JobContext) -> dict[str, Any]:
        start = time.monotonic()
        try:
            while time.monotonic() - start < 60:
                ctx.report({"stage": "working"})
                time.sleep(0.05)
        finally:
            self.stopped_after = time.monotonic() - start
        return {}


def test_a_worker_stops_a_job_at_its_wall_limit(tmp_path: Path) -> None:
    overrides = {
        "data_dir": str(tmp_path / "data"),
        "service": {"lease_s": 0.3, "job_max_wall_s": 1.0},
    }
    config = ServiceConfig(preset="debug", overrides=overrides)
    handler = Endless()
    lost = threading.Event()
    worker = Worker(config, {"review": handler}, on_lost=lost.set)
    job = worker.store.create("review", "alice", {})
    assert worker.run_once()
    assert lost.is_set()  # the worker process would exit here (service.worker.exit_lost)
    assert handler.stopped_after is not None and handler.stopped_after < 5
    failed = worker.store.get(job.id)
    assert failed is not None and failed.status == "failed"
    assert failed.error == overtime_error(1.0)
