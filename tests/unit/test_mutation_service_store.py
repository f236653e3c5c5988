"""The job store's contract, field by field, on real SQLite files and real processes.

What a job looks like after each transition (timestamps from an injected clock), which
transitions are refused, which job a worker gets, what each user sees, what the log says,
and what survives reopening the database.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from service.errors import JobLimitError, JobStoreError
from service.store import JobRecord, JobStore, LogEntry, pid_alive
from tests.clock import ManualClock

EXHAUSTED = (
    "the job was started 2 times and its worker stopped each time (crashed or was killed); "
    "see the worker logs, fix the cause and submit it again"
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite", clock=clock)


def _get(store: JobStore, job_id: str) -> JobRecord:
    job = store.get(job_id)
    assert job is not None
    return job


def _claim(store: JobStore, worker: str = "w1", lease_s: float = 30) -> tuple[str, str]:
    job = store.claim(worker, lease_s=lease_s, max_attempts=3)
    assert job is not None and job.claim is not None
    return job.id, job.claim


def _entry(job_id: str, at: float, event: str, worker: str | None, note: str | None) -> LogEntry:
    return LogEntry(job_id=job_id, at=at, event=event, worker=worker, note=note)


def _sleeper() -> subprocess.Popen[bytes]:
    """A live child that exits 0 once its stdin closes (a signal would show in returncode)."""
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )


# --- create / get ------------------------------------------------------------------------


def test_a_new_job_is_queued_with_clock_timestamps_and_nothing_else_set(
    store: JobStore,
) -> None:
    job = store.create("run", "alice", {"idea": "x", "n": [1, 2]}, job_id="job-1")
    assert job == JobRecord(
        id="job-1",
        kind="run",
        owner="alice",
        status="queued",
        params={"idea": "x", "n": [1, 2]},
        created_at=1000.0,
        updated_at=1000.0,
    )
    assert store.get("job-1") == job
    assert store.log("job-1") == [_entry("job-1", 1000.0, "queued", None, None)]


def test_generated_job_ids_are_distinct_hex_tokens(store: JobStore) -> None:
    ids = [store.create("review", "alice", {}).id for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_get_hides_other_owners_jobs_and_unknown_ids(store: JobStore) -> None:
    job = store.create("review", "alice", {})
    assert store.get(job.id, owner="alice") == job
    assert store.get(job.id) == job
    assert store.get(job.id, owner="bob") is None
    assert store.get("no-such-job") is None
    assert store.get("no-such-job", owner="alice") is None


def test_the_unfinished_limit_names_the_owner_and_a_refusal_writes_nothing(
    store: JobStore, clock: ManualClock
) -> None:
    first = store.create("review", "alice", {}, max_unfinished=1)
    with pytest.raises(JobLimitError) as refused:
        store.create("review", "alice", {}, job_id="refused", max_unfinished=1)
    assert refused.value.limit == 1
    assert str(refused.value).startswith("alice already has 1 unfinished jobs (the limit)")
    assert store.get("refused") is None and store.log("refused") == []
    # the refusal rolled its transaction back: the next write goes through
    assert store.create("review", "bob", {}, max_unfinished=1).owner == "bob"
    # a finished job no longer counts against the limit
    job_id, claim = _claim(store)
    assert job_id == first.id
    assert store.finish(job_id, claim, "done", result={})
    assert store.create("review", "alice", {}, max_unfinished=1).status == "queued"


def test_unfinished_counts_queued_and_running_jobs_of_one_owner(store: JobStore) -> None:
    store.create("review", "alice", {})
    store.create("review", "alice", {})
    store.create("review", "alice", {})
    store.create("review", "bob", {})
    assert store.unfinished("alice") == 3
    job_id, claim = _claim(store)
    assert store.unfinished("alice") == 3  # running still counts
    assert store.finish(job_id, claim, "failed", error="x")
    assert store.unfinished("alice") == 2
    assert store.unfinished("bob") == 1
    assert store.unfinished("carol") == 0


# --- jobs_of / counts ----------------------------------------------------------------------


def test_jobs_of_lists_newest_first_filtered_by_kind_and_limited(
    store: JobStore, clock: ManualClock
) -> None:
    clock.now = 1000.0
    oldest = store.create("review", "alice", {}, job_id="oldest")
    clock.now = 1002.0
    newest = store.create("run", "alice", {}, job_id="newest")
    clock.now = 1001.0
    middle = store.create("review", "alice", {}, job_id="middle")
    store.create("review", "bob", {}, job_id="bobs")
    assert [j.id for j in store.jobs_of("alice")] == [newest.id, middle.id, oldest.id]
    assert [j.id for j in store.jobs_of("alice", kind="review")] == [middle.id, oldest.id]
    assert [j.id for j in store.jobs_of("alice", kind="run")] == [newest.id]
    assert [j.id for j in store.jobs_of("alice", limit=2)] == [newest.id, middle.id]
    assert [j.id for j in store.jobs_of("alice", kind="review", limit=1)] == [middle.id]
    assert [j.id for j in store.jobs_of("bob", kind="run")] == []
    assert store.jobs_of("carol") == []
    assert store.jobs_of("alice")[0] == newest


def test_jobs_of_returns_at_most_200_by_default(store: JobStore, clock: ManualClock) -> None:
    for i in range(201):
        clock.now = 1000.0 + i
        store.create("review", "alice", {}, job_id=f"j{i:03d}")
    listed = store.jobs_of("alice")
    assert len(listed) == 200
    assert listed[0].id == "j200" and listed[-1].id == "j001"


def test_counts_gives_jobs_per_status(store: JobStore, clock: ManualClock) -> None:
    assert store.counts() == {}
    for i in range(5):
        clock.now = 1000.0 + i
        store.create("review", "alice", {}, job_id=f"j{i}")
    done_id, done_claim = _claim(store)
    failed_id, failed_claim = _claim(store)
    _claim(store)
    assert store.finish(done_id, done_claim, "done", result={})
    assert store.finish(failed_id, failed_claim, "failed", error="x")
    assert store.cancel("j3", "alice") is not None
    assert store.counts() == {"done": 1, "failed": 1, "running": 1, "cancelled": 1, "queued": 1}


# --- claim ---------------------------------------------------------------------------------


def test_a_claim_records_worker_process_host_and_lease(store: JobStore, clock: ManualClock) -> None:
    job = store.create("review", "alice", {"k": 1})
    clock.now = 1005.0
    claimed = store.claim("w1", lease_s=30, max_attempts=3)
    assert claimed is not None and claimed.claim is not None
    assert re.fullmatch(r"[0-9a-f]{32}", claimed.claim)
    assert claimed.model_dump() == {
        **job.model_dump(),
        "status": "running",
        "claim": claimed.claim,
        "worker": "w1",
        "worker_pid": os.getpid(),
        "worker_host": socket.gethostname(),
        "lease_until": 1035.0,
        "attempts": 1,
        "started_at": 1005.0,
        "updated_at": 1005.0,
    }
    assert _get(store, job.id) == claimed
    assert store.log(job.id)[-1] == _entry(job.id, 1005.0, "claimed", "w1", "attempt 1")


def test_a_reclaimed_job_keeps_its_first_start_and_gets_a_new_token(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    first = store.claim("w1", lease_s=10, max_attempts=3)
    assert first is not None
    clock.now = 1020.0
    second = store.claim("w2", lease_s=10, max_attempts=3)
    assert second is not None and second.id == job.id
    assert second.claim != first.claim and second.worker == "w2"
    assert second.started_at == 1000.0 and second.updated_at == 1020.0
    assert second.lease_until == 1030.0 and second.attempts == 2
    assert store.log(job.id)[-1] == _entry(job.id, 1020.0, "claimed", "w2", "attempt 2")


def test_claim_order_is_by_creation_time_and_a_lease_ends_strictly_after_it(
    store: JobStore, clock: ManualClock
) -> None:
    clock.now = 1005.0
    later = store.create("review", "alice", {}, job_id="later")
    clock.now = 1000.0
    earlier = store.create("review", "alice", {}, job_id="earlier")
    clock.now = 1010.0
    assert _claim(store, lease_s=10)[0] == earlier.id  # created first, inserted second
    # "earlier" is leased until 1020.0: at 1020.0 it is still held, so "later" comes next
    clock.now = 1020.0
    assert _claim(store, lease_s=100)[0] == later.id
    assert store.claim("w3", lease_s=10, max_attempts=3) is None
    # past its lease, the older running job goes before any newer one
    store.create("review", "alice", {}, job_id="newest")
    clock.now = 1020.5
    assert _claim(store)[0] == earlier.id
    assert _claim(store)[0] == "newest"
    assert store.claim("w3", lease_s=10, max_attempts=3) is None


def test_finished_and_cancelled_jobs_are_never_claimed(store: JobStore, clock: ManualClock) -> None:
    for status in ("done", "failed", "cancelled"):
        store.create("review", "alice", {}, job_id=status)
        job_id, claim = _claim(store)
        assert store.finish(job_id, claim, status, error=None)
    store.create("review", "alice", {}, job_id="cancelled-while-queued")
    assert store.cancel("cancelled-while-queued", "alice") is not None
    clock.now += 10_000
    assert store.claim("w", lease_s=10, max_attempts=3) is None
    assert {j.id: j.status for j in store.jobs_of("alice")} == {
        "done": "done",
        "failed": "failed",
        "cancelled": "cancelled",
        "cancelled-while-queued": "cancelled",
    }


def test_an_exhausted_job_fails_with_its_reason_and_the_claim_takes_the_next(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    first = store.claim("w", lease_s=10, max_attempts=2)
    assert first is not None and first.claim is not None
    clock.now = 1011.0
    second = store.claim("w", lease_s=10, max_attempts=2)  # 1 < 2 attempts: runs again
    assert second is not None and second.id == job.id and second.attempts == 2
    assert second.claim is not None
    clock.now = 1021.0
    store.create("review", "alice", {}, job_id="next")
    # at its lease's last instant the exhausted job is still held, not failed
    assert store.claim("w", lease_s=10, max_attempts=2) is not None  # takes "next"
    assert _get(store, job.id).status == "running"
    clock.now = 1021.5
    assert store.claim("w", lease_s=10, max_attempts=2) is None
    failed = _get(store, job.id)
    assert failed.model_dump() == {
        **second.model_dump(),
        "status": "failed",
        "error": EXHAUSTED,
        "claim": None,
        "lease_until": None,
        "finished_at": 1021.5,
        "updated_at": 1021.5,
    }
    assert store.log(job.id)[-1] == _entry(job.id, 1021.5, "failed", None, "attempts exhausted")
    assert not store.finish(job.id, second.claim, "done", result={})


def test_a_job_within_its_lease_is_not_failed_however_many_attempts(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    assert store.claim("w", lease_s=10, max_attempts=1) is not None
    assert store.claim("w", lease_s=10, max_attempts=1) is None
    assert _get(store, job.id).status == "running"
    assert [e.event for e in store.log(job.id)] == ["queued", "claimed"]


def test_a_released_job_is_claimed_again_without_counting_as_a_crash(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    job_id, claim = _claim(store)
    clock.now = 1003.0
    assert store.release(job_id, claim, "shutting down")
    released = _get(store, job.id)
    assert (released.status, released.claim, released.lease_until) == ("queued", None, None)
    assert released.updated_at == 1003.0 and released.attempts == 1
    assert store.log(job.id)[-1] == _entry(job.id, 1003.0, "released", None, "shutting down")
    assert not store.release(job_id, claim, "again")  # the claim is gone
    assert not store.finish(job_id, claim, "done", result={})
    assert store.renew(job_id, claim, 30) is None
    again = store.claim("w2", lease_s=30, max_attempts=1)
    assert again is not None and again.id == job.id and again.attempts == 2


# --- renew / progress / finish ---------------------------------------------------------------


def test_renew_extends_the_lease_from_now_and_reports_cancellation(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    job_id, claim = _claim(store, lease_s=30)
    clock.now = 1020.0
    assert store.renew(job_id, claim, 60) is False
    renewed = _get(store, job.id)
    assert renewed.lease_until == 1080.0 and renewed.updated_at == 1020.0
    clock.now = 1070.0  # past the first lease, inside the renewed one
    assert store.claim("w2", lease_s=30, max_attempts=3) is None
    assert store.renew(job_id, "not-the-claim", 60) is None
    assert store.renew("other-job", claim, 60) is None
    assert store.cancel(job.id, "alice") is not None
    assert store.renew(job_id, claim, 60) is True


def test_progress_is_stored_and_reports_cancellation_while_the_claim_holds(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("run", "alice", {})
    job_id, claim = _claim(store)
    clock.now = 1007.0
    assert store.set_progress(job_id, claim, {"stage": "ideas", "done": 2}) is False
    current = _get(store, job.id)
    assert current.progress == {"stage": "ideas", "done": 2} and current.updated_at == 1007.0
    assert current.lease_until == 1030.0  # progress is not a renewal
    assert store.set_progress(job_id, "not-the-claim", {"stage": "x"}) is None
    assert store.set_progress("other-job", claim, {"stage": "x"}) is None
    assert _get(store, job.id).progress == {"stage": "ideas", "done": 2}
    assert store.cancel(job.id, "alice") is not None
    assert store.set_progress(job_id, claim, {"stage": "writeup"}) is True
    assert _get(store, job.id).progress == {"stage": "writeup"}
    assert store.finish(job_id, claim, "cancelled", error="cancelled by its owner")
    assert store.set_progress(job_id, claim, {"stage": "late"}) is None
    assert _get(store, job.id).progress == {"stage": "writeup"}


def test_finish_done_records_the_result_once(store: JobStore, clock: ManualClock) -> None:
    job = store.create("review", "alice", {})
    job_id, claim = _claim(store)
    clock.now = 1009.0
    assert store.finish(job_id, claim, "done", result={"score": 6, "ok": True})
    done = _get(store, job.id)
    assert (done.status, done.result, done.error) == ("done", {"score": 6, "ok": True}, None)
    assert (done.finished_at, done.updated_at, done.lease_until) == (1009.0, 1009.0, None)
    assert done.completions == 1
    assert store.log(job.id)[-1] == _entry(job.id, 1009.0, "completed", None, None)
    assert not store.finish(job_id, claim, "failed", error="late")
    assert not store.finish(job_id, "not-the-claim", "done", result={})
    assert _get(store, job.id) == done


def test_finish_failed_records_the_error_without_a_completion(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    job_id, claim = _claim(store)
    clock.now = 1004.0
    assert store.finish(job_id, claim, "failed", error="the PDF is encrypted")
    failed = _get(store, job.id)
    assert (failed.status, failed.result, failed.error) == (
        "failed",
        None,
        "the PDF is encrypted",
    )
    assert (failed.finished_at, failed.lease_until, failed.completions) == (1004.0, None, 0)
    assert store.log(job.id)[-1] == _entry(job.id, 1004.0, "failed", None, "the PDF is encrypted")


def test_finish_cancelled_without_an_error_logs_the_status(store: JobStore) -> None:
    job = store.create("run", "alice", {})
    job_id, claim = _claim(store)
    assert store.finish(job_id, claim, "cancelled")
    cancelled = _get(store, job.id)
    assert (cancelled.status, cancelled.result, cancelled.error) == ("cancelled", None, None)
    assert cancelled.completions == 0
    assert store.log(job.id)[-1] == _entry(job.id, 1000.0, "cancelled", None, None)


# --- cancel --------------------------------------------------------------------------------


def test_cancelling_a_queued_job_finishes_it_at_once(store: JobStore, clock: ManualClock) -> None:
    job = store.create("run", "alice", {})
    clock.now = 1006.0
    cancelled = store.cancel(job.id, "alice")
    assert cancelled is not None
    assert (cancelled.status, cancelled.cancel_requested) == ("cancelled", True)
    assert (cancelled.finished_at, cancelled.updated_at) == (1006.0, 1006.0)
    assert store.log(job.id)[-1] == _entry(job.id, 1006.0, "cancel_requested", None, "cancelled")


def test_cancelling_a_running_job_only_asks_it_to_stop(store: JobStore, clock: ManualClock) -> None:
    job = store.create("run", "alice", {})
    _claim(store)
    clock.now = 1006.0
    asked = store.cancel(job.id, "alice")
    assert asked is not None
    assert (asked.status, asked.cancel_requested) == ("running", True)
    assert (asked.finished_at, asked.updated_at) == (None, 1006.0)
    assert store.log(job.id)[-1] == _entry(job.id, 1006.0, "cancel_requested", None, "running")


def test_cancelling_a_finished_job_keeps_its_outcome(store: JobStore, clock: ManualClock) -> None:
    job = store.create("review", "alice", {})
    job_id, claim = _claim(store)
    assert store.finish(job_id, claim, "done", result={"a": 1})
    clock.now = 1050.0
    after = store.cancel(job.id, "alice")
    assert after is not None
    assert (after.status, after.result, after.finished_at) == ("done", {"a": 1}, 1000.0)
    assert store.log(job.id)[-1] == _entry(job.id, 1050.0, "cancel_requested", None, "done")


def test_nobody_can_cancel_someone_elses_job_or_a_missing_one(store: JobStore) -> None:
    job = store.create("run", "alice", {})
    assert store.cancel(job.id, "bob") is None
    assert store.cancel("no-such-job", "alice") is None
    assert _get(store, job.id) == job
    assert store.log(job.id) == [_entry(job.id, 1000.0, "queued", None, None)]
    assert store.log("no-such-job") == []


# --- dead workers and pid_alive -------------------------------------------------------------


def _set_worker(store: JobStore, job_id: str, pid: int, host: str | None = None) -> None:
    with sqlite3.connect(store.path) as conn:
        conn.execute(
            "UPDATE jobs SET worker_pid = ?, worker_host = COALESCE(?, worker_host) WHERE id = ?",
            (pid, host, job_id),
        )


def test_a_job_of_another_live_process_keeps_its_lease(store: JobStore) -> None:
    job = store.create("review", "alice", {})
    _claim(store, lease_s=3600)
    child = _sleeper()
    try:
        _set_worker(store, job.id, child.pid)
        assert store.expire_dead_workers() == []
        assert _get(store, job.id).lease_until == 4600.0
    finally:
        child.communicate(b"")
    assert child.returncode == 0


def test_a_dead_workers_job_is_expired_and_logged_with_its_pid(
    store: JobStore, clock: ManualClock
) -> None:
    job = store.create("review", "alice", {})
    other = store.create("review", "alice", {})
    _claim(store, lease_s=3600)
    _claim(store, lease_s=3600)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _set_worker(store, job.id, dead.pid)
    _set_worker(store, other.id, dead.pid, host="another-host")  # not ours to judge
    clock.now = 1002.0
    assert store.expire_dead_workers() == [job.id]
    assert _get(store, job.id).lease_until == 0
    assert _get(store, other.id).lease_until == 4600.0
    assert store.log(job.id)[-1] == _entry(job.id, 1002.0, "worker_gone", None, f"pid {dead.pid}")
    assert store.expire_dead_workers() == [job.id]  # still running with a dead pid
    reclaimed = store.claim("w2", lease_s=30, max_attempts=3)
    assert reclaimed is not None and reclaimed.id == job.id
    assert store.expire_dead_workers() == []  # now held by this live process


def test_pid_alive_leaves_a_live_process_untouched() -> None:
    child = _sleeper()
    try:
        assert pid_alive(child.pid)
    finally:
        child.communicate(b"")
    assert child.returncode == 0  # no signal reached it
    assert not pid_alive(child.pid)


def test_pid_alive_reads_the_state_after_the_last_parenthesis() -> None:
    # A process name may hold ")": "/proc/PID/stat" then reads "PID (x) Z () S ...".
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; open('/proc/self/comm', 'w').write('x) Z ('); print('ready', flush=True);"
            " sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        assert Path(f"/proc/{child.pid}/comm").read_text() == "x) Z (\n"
        assert pid_alive(child.pid)
    finally:
        child.communicate(b"")
    assert child.returncode == 0


def test_pid_alive_counts_another_users_process_as_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    monkeypatch.setattr(os, "kill", refuse)
    assert pid_alive(dead.pid)


def test_pid_alive_trusts_kill_without_procfs(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoProcfs(type(Path())):  # type: ignore[misc]
        def read_text(self, *args: object, **kwargs: object) -> str:
            raise FileNotFoundError(2, "No such file or directory", str(self))

    child = _sleeper()
    try:
        monkeypatch.setattr("service.store.Path", NoProcfs)
        assert pid_alive(child.pid)
    finally:
        child.communicate(b"")
    monkeypatch.undo()
    assert child.returncode == 0


# --- the database file ------------------------------------------------------------------------


def test_everything_survives_reopening_the_database(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "data" / "deeper" / "jobs.sqlite"
    first = JobStore(path, clock=clock)
    job = first.create("run", "alice", {"idea": "x"})
    job_id, claim = _claim(first)
    clock.now = 1001.0
    assert first.set_progress(job_id, claim, {"stage": "writeup"}) is False
    assert first.renew(job_id, claim, 100) is False
    clock.now = 1002.0
    assert first.finish(job_id, claim, "done", result={"pdf": "paper.pdf"})
    queued = first.create("review", "bob", {})
    reopened = JobStore(path, clock=clock)
    finished = _get(reopened, job.id)
    assert finished == _get(first, job.id)
    assert finished.progress == {"stage": "writeup"} and finished.result == {"pdf": "paper.pdf"}
    assert (finished.status, finished.finished_at) == ("done", 1002.0)
    assert reopened.log(job.id) == first.log(job.id)
    assert [e.event for e in reopened.log(job.id)] == ["queued", "claimed", "completed"]
    assert reopened.jobs_of("bob") == [queued]
    assert reopened.counts() == {"done": 1, "queued": 1}


def test_a_database_that_cannot_be_opened_says_what_to_check(tmp_path: Path) -> None:
    with pytest.raises(JobStoreError) as caught:
        JobStore(tmp_path)  # a directory, not a database file
    message = str(caught.value)
    assert message.startswith(f"Cannot open the job database {tmp_path} (")
    assert message.endswith("); check that service.data_dir is writable.")
    assert isinstance(caught.value.__cause__, sqlite3.Error)


def test_a_data_dir_below_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    with pytest.raises(JobStoreError) as caught:
        JobStore(blocker / "data" / "jobs.sqlite")
    assert str(caught.value).startswith(
        f"Cannot open the job database {blocker}/data/jobs.sqlite ("
    )
    assert str(caught.value).endswith("); check that service.data_dir is writable.")
    assert isinstance(caught.value.__cause__, OSError)
