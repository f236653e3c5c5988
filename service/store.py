"""The job queue: one SQLite file (WAL mode) shared by the API process and every worker.

A job moves ``queued → running → done | failed | cancelled``. A worker claims a job with
one ``UPDATE … RETURNING`` inside ``BEGIN IMMEDIATE``, which gives the claim a fresh random
``claim`` token and a lease. Everything a worker later writes (progress, lease renewal,
completion) is conditional on that token, so a worker that lost its claim (its lease ran out
and another worker took the job) can never record a result: a job completes at most once.
A running job whose lease ran out, or whose worker process on this host is gone, is claimed
again; after ``max_attempts`` claims it fails instead. ``job_log`` keeps every transition.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core.clock import Clock
from service.errors import JobLimitError, JobStoreError, QueueFullError
from service.models import JobKind, JobStatus
from service.usage import ModelUsage

UNFINISHED: tuple[JobStatus, ...] = ("queued", "running")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    params TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    completions INTEGER NOT NULL DEFAULT 0,
    claim TEXT,
    worker TEXT,
    worker_pid INTEGER,
    worker_host TEXT,
    lease_until REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created_at);
CREATE TABLE IF NOT EXISTS job_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at REAL NOT NULL,
    event TEXT NOT NULL,
    worker TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS job_log_by_job ON job_log (job_id, seq);
CREATE TABLE IF NOT EXISTS job_usage (
    job_id TEXT NOT NULL,
    model TEXT NOT NULL,
    calls INTEGER NOT NULL,
    cache_hits INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    rate_limited INTEGER NOT NULL,
    backoff_wait_s REAL NOT NULL,
    PRIMARY KEY (job_id, model)
);
"""
USAGE_COLUMNS = tuple(ModelUsage.model_fields)
# The claimable job of the owner with the fewest running jobs, oldest first: one user's
# thousands of queued jobs do not starve another user's one. (Per-owner running counts are
# grouped once, not counted per candidate row.)
_NEXT_CLAIMABLE = """
WITH claimable AS (
    SELECT id, owner, created_at, rowid AS seq FROM jobs
    WHERE status = 'queued' OR (status = 'running' AND lease_until < :now)
), busy AS (
    SELECT owner, COUNT(*) AS running FROM jobs
    WHERE status = 'running' AND lease_until >= :now GROUP BY owner
)
SELECT c.id FROM claimable AS c LEFT JOIN busy AS b ON b.owner = c.owner
ORDER BY COALESCE(b.running, 0), c.created_at, c.seq LIMIT 1
"""


class JobRecord(BaseModel):
    """One row of ``jobs``, with its JSON columns parsed."""

    id: str
    kind: JobKind
    owner: str
    status: JobStatus
    params: dict[str, Any]
    progress: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    completions: int = 0
    claim: str | None = None
    worker: str | None = None
    worker_pid: int | None = None
    worker_host: str | None = None
    lease_until: float | None = None
    cancel_requested: bool = False
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float


class LogEntry(BaseModel):
    """One transition in ``job_log``."""

    job_id: str
    at: float
    event: str
    worker: str | None = None
    note: str | None = None


def _record(row: sqlite3.Row) -> JobRecord:
    data = dict(row)
    for column in ("params", "progress", "result"):
        if data.get(column) is not None:
            data[column] = json.loads(data[column])
    data["cancel_requested"] = bool(data["cancel_requested"])
    return JobRecord.model_validate(data)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rpartition(")")[2].split()[0] != "Z"


def overtime_error(max_wall_s: float) -> str:
    """Why a job past its wall-clock limit failed, and what to do."""
    return (
        f"the job ran past service.job_max_wall_s ({max_wall_s:g} s from its first start); "
        "lease renewal cannot extend it: raise the limit or submit a smaller job"
    )


class JobStore:
    """The jobs table: create, claim, renew, finish, cancel, read. Safe across processes."""

    def __init__(self, path: Path, *, clock: Clock = time.time) -> None:
        self.path = path
        self.clock = clock
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise JobStoreError(
                f"Cannot open the job database {path} ({exc}); check that service.data_dir "
                "is writable."
            ) from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, opened once (closing the last one checkpoints the WAL)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database's write lock from the start."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _log(
        conn: sqlite3.Connection, job_id: str, at: float, event: str, worker: str | None, note: str
    ) -> None:
        conn.execute(
            "INSERT INTO job_log (job_id, at, event, worker, note) VALUES (?, ?, ?, ?, ?)",
            (job_id, at, event, worker, note or None),
        )

    # --- the API side -------------------------------------------------------------------

    def create(
        self,
        kind: JobKind,
        owner: str,
        params: dict[str, Any],
        *,
        job_id: str | None = None,
        max_unfinished: int | None = None,
        max_queued: int | None = None,
    ) -> JobRecord:
        """Queue a job; with ``max_unfinished``, refuse (JobLimitError) when the owner is full;
        with ``max_queued``, refuse (QueueFullError) when the queue is."""
        job_id = job_id or new_job_id()
        now = self.clock()
        with self._write() as conn:
            if max_unfinished is not None and self._unfinished(conn, owner) >= max_unfinished:
                raise JobLimitError(owner, max_unfinished)
            if max_queued is not None and self._queued(conn) >= max_queued:
                raise QueueFullError(max_queued)
            conn.execute(
                "INSERT INTO jobs (id, kind, owner, status, params, created_at, updated_at) "
                "VALUES (?, ?, ?, 'queued', ?, ?, ?)",
                (job_id, kind, owner, json.dumps(params), now, now),
            )
            self._log(conn, job_id, now, "queued", None, "")
        job = self.get(job_id)
        assert job is not None
        return job

    @staticmethod
    def _unfinished(conn: sqlite3.Connection, owner: str) -> int:
        row = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running')",
            (owner,),
        ).fetchone()
        return int(row[0])

    @staticmethod
    def _queued(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()
        return int(row[0])

    def queued(self) -> int:
        """How many jobs wait in the queue (every user's)."""
        with self._connect() as conn:
            return self._queued(conn)

    def unfinished(self, owner: str) -> int:
        """How many of ``owner``'s jobs are queued or running."""
        with self._connect() as conn:
            return self._unfinished(conn, owner)

    def get(self, job_id: str, owner: str | None = None) -> JobRecord | None:
        """The job, or None when it does not exist (or, with ``owner``, is someone else's)."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or (owner is not None and row["owner"] != owner):
            return None
        return _record(row)

    def jobs_of(self, owner: str, kind: JobKind | None = None, limit: int = 200) -> list[JobRecord]:
        """``owner``'s jobs, newest first."""
        query = "SELECT * FROM jobs WHERE owner = ?"
        args: list[Any] = [owner]
        if kind is not None:
            query += " AND kind = ?"
            args.append(kind)
        query += " ORDER BY created_at DESC LIMIT ?"
        with self._connect() as conn:
            rows = conn.execute(query, [*args, limit]).fetchall()
        return [_record(r) for r in rows]

    def cancel(self, job_id: str, owner: str) -> JobRecord | None:
        """Cancel a queued job at once; ask a running one to stop. None if not ``owner``'s."""
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(
                "UPDATE jobs SET cancel_requested = 1, updated_at = ?, "
                "status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END, "
                "finished_at = CASE WHEN status = 'queued' THEN ? ELSE finished_at END "
                "WHERE id = ? AND owner = ? RETURNING status",
                (now, now, job_id, owner),
            ).fetchone()
            if row is not None:
                self._log(conn, job_id, now, "cancel_requested", None, row["status"])
        return self.get(job_id, owner) if row is not None else None

    def counts(self) -> dict[str, int]:
        """Jobs per status, for the health check."""
        with self._connect() as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def counts_by_kind(self) -> dict[tuple[str, str], int]:
        """Jobs per (kind, status)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status"
            ).fetchall()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def latency_histogram(self, kind: JobKind, bounds: list[float]) -> tuple[list[int], int, float]:
        """Done jobs of ``kind`` by seconds from submission to completion: the count at or
        under each bound (cumulative), the count and the sum of all."""
        buckets = ", ".join("COALESCE(SUM(d <= ?), 0)" for _ in bounds)
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT COUNT(*), COALESCE(SUM(d), 0.0){', ' if bounds else ''}{buckets} FROM "
                "(SELECT finished_at - created_at AS d FROM jobs "
                "WHERE kind = ? AND status = 'done')",
                [*bounds, kind],
            ).fetchone()
        return [int(v) for v in row[2:]], int(row[0]), float(row[1])

    def usage_totals(self) -> list[ModelUsage]:
        """Every finished job's provider usage, summed per model."""
        sums = ", ".join(f"SUM({c})" for c in USAGE_COLUMNS[1:])
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT model, {sums} FROM job_usage GROUP BY model ORDER BY model"
            ).fetchall()
        return [ModelUsage.model_validate(dict(zip(USAGE_COLUMNS, r, strict=True))) for r in rows]

    def usage_of(self, job_id: str) -> list[ModelUsage]:
        """One job's stored usage per model."""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(USAGE_COLUMNS)} FROM job_usage WHERE job_id = ? ORDER BY model",
                (job_id,),
            ).fetchall()
        return [ModelUsage.model_validate(dict(r)) for r in rows]

    def log(self, job_id: str) -> list[LogEntry]:
        """Every transition of one job, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT job_id, at, event, worker, note FROM job_log WHERE job_id = ? ORDER BY seq",
                (job_id,),
            ).fetchall()
        return [LogEntry.model_validate(dict(r)) for r in rows]

    # --- the worker side ----------------------------------------------------------------

    def claim(
        self, worker: str, lease_s: float, max_attempts: int, max_wall_s: float | None = None
    ) -> JobRecord | None:
        """Atomically take the next claimable job, or None when there is none.

        Claimable: queued, or running with an expired lease. Next: the oldest job of the
        owner with the fewest running jobs (fair share between users). A job that was already
        claimed ``max_attempts`` times, or that first started more than ``max_wall_s`` ago,
        fails here instead of running again.
        """
        now = self.clock()
        with self._write() as conn:
            self._fail_exhausted(conn, now, max_attempts)
            if max_wall_s is not None:
                self._fail_overtime(conn, now, max_wall_s)
            row = conn.execute(
                "UPDATE jobs SET status = 'running', claim = :claim, worker = :worker, "
                "worker_pid = :pid, worker_host = :host, lease_until = :until, "
                "attempts = attempts + 1, started_at = COALESCE(started_at, :now), "
                f"updated_at = :now WHERE id = ({_NEXT_CLAIMABLE}) RETURNING *",
                {
                    "claim": uuid.uuid4().hex,
                    "worker": worker,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "until": now + lease_s,
                    "now": now,
                },
            ).fetchone()
            if row is None:
                return None
            job = _record(row)
            self._log(conn, job.id, now, "claimed", worker, f"attempt {job.attempts}")
        return job

    def _fail_exhausted(self, conn: sqlite3.Connection, now: float, max_attempts: int) -> None:
        rows = conn.execute(
            "UPDATE jobs SET status = 'failed', finished_at = ?, updated_at = ?, claim = NULL, "
            "lease_until = NULL, error = 'the job was started ' || attempts || ' times and its "
            "worker stopped each time (crashed or was killed); see the worker logs, fix the "
            "cause and submit it again' "
            "WHERE status = 'running' AND lease_until < ? AND attempts >= ? RETURNING id",
            (now, now, now, max_attempts),
        ).fetchall()
        for row in rows:
            self._log(conn, row["id"], now, "failed", None, "attempts exhausted")

    def expire_dead_workers(self) -> list[str]:
        """End the lease of running jobs whose worker process on this host is gone."""
        host, me = socket.gethostname(), os.getpid()
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, claim, worker_pid, lease_until FROM jobs WHERE status = 'running' "
                "AND worker_host = ? AND worker_pid IS NOT NULL",
                (host,),
            ).fetchall()
        dead = [r for r in rows if r["worker_pid"] != me and not pid_alive(r["worker_pid"])]
        expired = []
        for row in dead:
            with self._write() as conn:
                changed = conn.execute(
                    "UPDATE jobs SET lease_until = 0 WHERE id = ? AND claim = ?",
                    (row["id"], row["claim"]),
                ).rowcount
                if changed:
                    if row["lease_until"] != 0:  # logged once, however often a worker looks
                        note = f"pid {row['worker_pid']}"
                        self._log(conn, row["id"], self.clock(), "worker_gone", None, note)
                    expired.append(row["id"])
        return expired

    def renew(
        self, job_id: str, claim: str, lease_s: float, max_wall_s: float | None = None
    ) -> bool | None:
        """Extend the lease, never past ``max_wall_s`` from the job's first start (a job past
        it is failed). None: the claim is lost; else whether cancellation was asked."""
        now = self.clock()
        until = "MIN(:until, started_at + :wall)" if max_wall_s is not None else ":until"
        with self._write() as conn:
            if max_wall_s is not None:
                self._fail_overtime(conn, now, max_wall_s)
            row = conn.execute(
                f"UPDATE jobs SET lease_until = {until}, updated_at = :now "
                "WHERE id = :id AND claim = :claim AND status = 'running' "
                "RETURNING cancel_requested",
                {
                    "until": now + lease_s,
                    "now": now,
                    "wall": max_wall_s,
                    "id": job_id,
                    "claim": claim,
                },
            ).fetchone()
        return None if row is None else bool(row[0])

    def _fail_overtime(self, conn: sqlite3.Connection, now: float, max_wall_s: float) -> None:
        rows = conn.execute(
            "UPDATE jobs SET status = 'failed', finished_at = :now, updated_at = :now, "
            "claim = NULL, lease_until = NULL, error = :error "
            "WHERE status IN ('running', 'queued') AND started_at IS NOT NULL "
            "AND started_at + :wall <= :now RETURNING id",
            {"now": now, "wall": max_wall_s, "error": overtime_error(max_wall_s)},
        ).fetchall()
        for row in rows:
            self._log(conn, row["id"], now, "failed", None, "wall-clock limit")

    def set_progress(self, job_id: str, claim: str, progress: dict[str, Any]) -> bool | None:
        """Record progress. None: the claim is lost; else whether cancellation was asked."""
        with self._connect() as conn:
            row = conn.execute(
                "UPDATE jobs SET progress = ?, updated_at = ? "
                "WHERE id = ? AND claim = ? AND status = 'running' RETURNING cancel_requested",
                (json.dumps(progress), self.clock(), job_id, claim),
            ).fetchone()
        return None if row is None else bool(row[0])

    def finish(
        self,
        job_id: str,
        claim: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        usage: list[ModelUsage] | None = None,
    ) -> bool:
        """Record the outcome (and the job's ``usage``) once, only while the claim holds;
        False when it was lost."""
        now = self.clock()
        done = 1 if status == "done" else 0
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE jobs SET status = :status, result = :result, error = :error, "
                "finished_at = :now, updated_at = :now, lease_until = NULL, "
                "completions = completions + :done "
                "WHERE id = :id AND claim = :claim AND status = 'running'",
                {
                    "status": status,
                    "result": json.dumps(result) if result is not None else None,
                    "error": error,
                    "now": now,
                    "done": done,
                    "id": job_id,
                    "claim": claim,
                },
            ).rowcount
            if changed:
                self._log(conn, job_id, now, "completed" if done else status, None, error or "")
                self._record_usage(conn, job_id, usage or [])
        return bool(changed)

    @staticmethod
    def _record_usage(conn: sqlite3.Connection, job_id: str, usage: list[ModelUsage]) -> None:
        marks = ", ".join("?" * (len(USAGE_COLUMNS) + 1))
        conn.executemany(
            f"INSERT OR REPLACE INTO job_usage (job_id, {', '.join(USAGE_COLUMNS)}) "
            f"VALUES ({marks})",
            [(job_id, *row.model_dump().values()) for row in usage],
        )

    def release(self, job_id: str, claim: str, note: str) -> bool:
        """Put a running job back in the queue (worker shutting down, retryable error)."""
        now = self.clock()
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE jobs SET status = 'queued', claim = NULL, lease_until = NULL, "
                "updated_at = ? WHERE id = ? AND claim = ? AND status = 'running'",
                (now, job_id, claim),
            ).rowcount
            if changed:
                self._log(conn, job_id, now, "released", None, note)
        return bool(changed)


def new_job_id() -> str:
    """A random, unguessable job id."""
    return uuid.uuid4().hex
