"""The job queue on a real SQLite file: claims, leases, dead workers, one completion."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from service.errors import JobLimitError
from service.store import JobStore, pid_alive
from tests.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite", clock=clock)


def test_database_is_in_wal_mode(store: JobStore) -> None:
    import sqlite3

    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_claim_takes_the_oldest_queued_job_once(store: JobStore, clock: ManualClock) -> None:
    first = store.create("review", "alice", {"n": 1})
    clock.now += 1
    store.create("review", "alice", {"n": 2})
    claimed = store.claim("w1", lease_s=30, max_attempts=3)
    assert claimed is not None and claimed.id == first.id
    assert claimed.status == "running" and claimed.attempts == 1 and claimed.claim
    again = store.claim("w2", lease_s=30, max_attempts=3)
    assert again is not None and again.id != first.id
    assert store.claim("w3", lease_s=30, max_attempts=3) is None


def test_concurrent_claims_never_share_a_job(store: JobStore) -> None:
    ids = {store.create("review", "alice", {}).id for _ in range(40)}
    taken: list[str] = []
    lock = threading.Lock()

    def grab(name: str) -> None:
        while (job := store.claim(name, lease_s=30, max_attempts=3)) is not None:
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)


def test_expired_lease_is_claimed_again_and_the_old_claim_cannot_finish(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    old = store.claim("w1", lease_s=30, max_attempts=3)
    assert old is not None and old.claim is not None
    assert store.claim("w2", lease_s=30, max_attempts=3) is None  # lease still valid
    clock.now += 31
    new = store.claim("w2", lease_s=30, max_attempts=3)
    assert new is not None and new.id == job.id and new.attempts == 2
    assert new.claim is not None
    assert not store.finish(job.id, old.claim, "done", result={"by": "w1"})
    assert store.renew(job.id, old.claim, 30) is None
    assert store.set_progress(job.id, old.claim, {"stage": "x"}) is None
    assert store.finish(job.id, new.claim, "done", result={"by": "w2"})
    assert not store.finish(job.id, new.claim, "done", result={"by": "w2 again"})
    row = store.get(job.id)
    assert row is not None and row.result == {"by": "w2"} and row.completions == 1
    events = [e.event for e in store.log(job.id)]
    assert events == ["queued", "claimed", "claimed", "completed"]


def test_job_of_a_dead_worker_process_is_reclaimed_at_once(store: JobStore) -> None:
    job = store.create("review", "alice", {})
    claimed = store.claim("w1", lease_s=3600, max_attempts=3)
    assert claimed is not None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import sqlite3

    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE jobs SET worker_pid = ? WHERE id = ?", (dead.pid, job.id))
    assert store.expire_dead_workers() == [job.id]
    again = store.claim("w2", lease_s=30, max_attempts=3)
    assert again is not None and again.id == job.id and again.attempts == 2


def test_a_live_worker_keeps_its_job(store: JobStore) -> None:
    store.create("review", "alice", {})
    assert store.claim("w1", lease_s=3600, max_attempts=3) is not None
    assert store.expire_dead_workers() == []  # our own pid is alive
    assert store.claim("w2", lease_s=30, max_attempts=3) is None


def test_a_job_that_keeps_killing_its_worker_fails_after_max_attempts(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    for _ in range(2):
        assert store.claim("w", lease_s=10, max_attempts=2) is not None
        clock.now += 11
    assert store.claim("w", lease_s=10, max_attempts=2) is None
    row = store.get(job.id)
    assert row is not None and row.status == "failed" and row.completions == 0
    assert row.error is not None and "2 times" in row.error


def test_release_puts_the_job_back(store: JobStore) -> None:
    job = store.create("review", "alice", {})
    claimed = store.claim("w", lease_s=30, max_attempts=3)
    assert claimed is not None and claimed.claim is not None
    assert store.release(job.id, claimed.claim, "shutting down")
    row = store.get(job.id)
    assert row is not None and row.status == "queued" and row.claim is None


def test_cancel_queued_is_immediate_running_is_signalled(store: JobStore) -> None:
    queued = store.create("run", "alice", {})
    running = store.create("run", "alice", {})
    # claim takes the oldest: move the queued one behind
    claimed = store.claim("w", lease_s=30, max_attempts=3)
    assert claimed is not None and claimed.claim is not None
    other = running if claimed.id == queued.id else queued
    cancelled = store.cancel(other.id, "alice")
    assert cancelled is not None and cancelled.status == "cancelled"
    signalled = store.cancel(claimed.id, "alice")
    assert signalled is not None and signalled.status == "running"
    assert signalled.cancel_requested
    assert store.renew(claimed.id, claimed.claim, 30) is True
    assert store.cancel(claimed.id, "bob") is None


def test_owner_sees_only_own_jobs_and_the_unfinished_limit_holds(store: JobStore) -> None:
    mine = store.create("review", "alice", {}, max_unfinished=2)
    store.create("review", "alice", {}, max_unfinished=2)
    with pytest.raises(JobLimitError, match="2 unfinished jobs"):
        store.create("review", "alice", {}, max_unfinished=2)
    store.create("review", "bob", {}, max_unfinished=2)
    assert store.get(mine.id, owner="bob") is None
    assert store.get(mine.id, owner="alice") is not None
    assert {j.owner for j in store.jobs_of("alice")} == {"alice"}
    assert store.unfinished("alice") == 2


def test_pid_alive_sees_zombies_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Block until it has exited, without reaping it (WNOWAIT): it is a zombie now, however
    # slow the machine (a fixed sleep here failed under load).
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)
