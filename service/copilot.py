"""The co-pilot of service run jobs: the pipeline pauses at a stage end, the job's owner
answers in the browser (the run page) or over the API.

A run submitted with ``copilot: true`` runs with a :class:`BrowserCopilot`. At each pause
(the pipeline's LangGraph ``interrupt``: stage, idea, summary, the editable artifact) it
records the request in ``copilot_pauses``, next to the jobs in the job store's SQLite file,
and polls for the answer every ``service.poll_interval_s``. Meanwhile the job keeps its
worker slot and its lease (``service.job_max_wall_s`` still counts), shows as ``waiting``,
and stops waiting when it is cancelled. ``POST /v1/runs/{id}/copilot`` and the page's form
store the answer through :func:`answer_pause`: one answer per pause; the pauses of several
ideas come one after the other. A pause moves ``waiting → answered → delivered``.

A worker that dies while a pause waits leaves it open; the job's next worker resumes from
the graph checkpoint, the pipeline pauses again with the same request, and that pause (with
an answer given meanwhile) is the one it waits on. A waiting pause the resumed run does not
come back to is ``dropped``. An answer already delivered is never given twice: a pause the
pipeline makes again after a redo is a new pause.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.clock import Clock, Sleep
from gateway.errors import AutoscholarError
from scientist.pipeline.models import CopilotReply, CopilotRequest
from scientist.pipeline.nodes import parse_edited_ideas
from service.errors import ApiError, ClaimLostError, JobCancelledError, JobStoreError
from service.models import CopilotAnswer, CopilotPause
from service.store import UNFINISHED, JobRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS copilot_pauses (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('waiting', 'answered', 'delivered', 'dropped')),
    request TEXT NOT NULL,
    reply TEXT,
    asked_at REAL NOT NULL,
    answered_at REAL,
    PRIMARY KEY (job_id, seq)
);
"""
WAITING_STATUS = "waiting for your answer"


def _pause(row: sqlite3.Row) -> CopilotPause:
    """A row as the API shows it (read as plain JSON: a row outlives model changes)."""
    request = json.loads(row["request"])
    reply = json.loads(row["reply"]) if row["reply"] else {}
    return CopilotPause(
        seq=row["seq"],
        state=row["state"],
        stage=str(request.get("stage", "")),
        idea=request.get("idea"),
        summary=str(request.get("summary", "")),
        editable=str(request.get("editable", "")),
        asked_at=row["asked_at"],
        action=reply.get("action"),
        text=str(reply.get("text", "")),
        answered_at=row["answered_at"],
    )


class CopilotStore:
    """The ``copilot_pauses`` table of the job database; safe across processes."""

    def __init__(self, path: Path, *, clock: Clock = time.time) -> None:
        self.path = path
        self.clock = clock
        self._local = threading.local()
        try:
            with self._connect() as conn:
                conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise JobStoreError(
                f"Cannot open the co-pilot table in {path} ({exc}); check that "
                "service.data_dir is writable."
            ) from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        yield conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # --- the worker side ----------------------------------------------------------------

    def ask(self, job_id: str, claim: str, request: CopilotRequest) -> int | None:
        """Record a pause of the job this claim holds; its number. The same request still
        open (asked again after a restart) keeps its number and any answer it got; other
        waiting pauses of the job are dropped. None: the claim is lost."""
        body = request.model_dump_json()
        with self._write() as conn:
            held = conn.execute(
                "SELECT 1 FROM jobs WHERE id = ? AND claim = ? AND status = 'running'",
                (job_id, claim),
            ).fetchone()
            if held is None:
                return None
            same = conn.execute(
                "SELECT seq FROM copilot_pauses WHERE job_id = ? AND request = ? "
                "AND state IN ('waiting', 'answered') ORDER BY seq DESC LIMIT 1",
                (job_id, body),
            ).fetchone()
            seq = int(same[0]) if same else self._next_seq(conn, job_id)
            conn.execute(
                "UPDATE copilot_pauses SET state = 'dropped' "
                "WHERE job_id = ? AND state = 'waiting' AND seq != ?",
                (job_id, seq),
            )
            if same is None:
                conn.execute(
                    "INSERT INTO copilot_pauses (job_id, seq, state, request, asked_at) "
                    "VALUES (?, ?, 'waiting', ?, ?)",
                    (job_id, seq, body, self.clock()),
                )
        return seq

    @staticmethod
    def _next_seq(conn: sqlite3.Connection, job_id: str) -> int:
        row = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM copilot_pauses WHERE job_id = ?", (job_id,)
        ).fetchone()
        return int(row[0]) + 1

    def take_answer(self, job_id: str, seq: int) -> CopilotReply | None:
        """The pause's answer, once (it is then ``delivered``); None while it waits. Raises
        JobCancelledError as soon as the job's owner cancelled it."""
        with self._write() as conn:
            cancelled = conn.execute(
                "SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if cancelled is not None and cancelled[0]:
                raise JobCancelledError(f"job {job_id} was cancelled by its owner")
            row = conn.execute(
                "UPDATE copilot_pauses SET state = 'delivered' "
                "WHERE job_id = ? AND seq = ? AND state = 'answered' RETURNING reply",
                (job_id, seq),
            ).fetchone()
        return CopilotReply.model_validate_json(row[0]) if row else None

    # --- the API side -------------------------------------------------------------------

    def pauses(self, job_id: str) -> list[CopilotPause]:
        """Every pause of the job, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM copilot_pauses WHERE job_id = ? ORDER BY seq", (job_id,)
            ).fetchall()
        return [_pause(r) for r in rows]

    def waiting(self, job_id: str) -> CopilotPause | None:
        """The job's pause waiting for an answer, if any."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM copilot_pauses WHERE job_id = ? AND state = 'waiting' "
                "ORDER BY seq DESC LIMIT 1",
                (job_id,),
            ).fetchone()
        return _pause(row) if row else None

    def waiting_jobs(self, job_ids: list[str]) -> set[str]:
        """Which of these jobs have a pause waiting for an answer."""
        if not job_ids:
            return set()
        marks = ", ".join("?" * len(job_ids))
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT DISTINCT job_id FROM copilot_pauses "
                f"WHERE state = 'waiting' AND job_id IN ({marks})",
                job_ids,
            ).fetchall()
        return {r[0] for r in rows}

    def answer(self, job_id: str, seq: int, reply: CopilotReply) -> CopilotPause | None:
        """Store the answer of a waiting pause; None when it no longer waits."""
        with self._write() as conn:
            row = conn.execute(
                "UPDATE copilot_pauses SET state = 'answered', reply = ?, answered_at = ? "
                "WHERE job_id = ? AND seq = ? AND state = 'waiting' RETURNING *",
                (reply.model_dump_json(), self.clock(), job_id, seq),
            ).fetchone()
        return _pause(row) if row else None


@dataclass
class BrowserCopilot:
    """The pipeline's co-pilot in a worker: each pause is recorded in the job store, and
    the answer the owner gives on the page or over the API is polled for."""

    store: CopilotStore
    job_id: str
    claim: str
    check: Callable[[], None] = field(default=lambda: None)
    on_event: Callable[[Any], None] = field(default=lambda event: None)
    poll_s: float = 1.0
    sleep: Sleep = time.sleep

    def __call__(self, request: CopilotRequest) -> CopilotReply:
        """Wait for the answer to ``request``; raises when the job is cancelled (seen at
        the next poll) or its claim lost (``check``) meanwhile."""
        seq = self.store.ask(self.job_id, self.claim, request)
        if seq is None:
            raise ClaimLostError(f"job {self.job_id}: another worker holds it now")
        self._event(request, WAITING_STATUS, seq)
        while True:
            self.check()
            reply = self.store.take_answer(self.job_id, seq)
            if reply is not None:
                self._event(request, f"answered: {reply.action}", seq)
                return reply
            self.sleep(self.poll_s)

    def _event(self, request: CopilotRequest, status: str, seq: int) -> None:
        event = {"stage": request.stage, "idea": request.idea, "status": status, "pause": seq}
        self.on_event(event)


def answer_pause(store: CopilotStore, job: JobRecord, answer: CopilotAnswer) -> CopilotPause:
    """Store the owner's answer to the run's waiting pause; 409 ``not_waiting`` when there
    is none (or ``answer.pause`` names another), 422 ``invalid_answer`` for an answer the
    pipeline could not use."""
    pause = store.waiting(job.id) if job.params.get("copilot") else None
    if job.status not in UNFINISHED or job.cancel_requested or pause is None:
        raise not_waiting(job)
    if answer.pause is not None and answer.pause != pause.seq:
        raise ApiError(
            409,
            "not_waiting",
            f"Pause {answer.pause} of run {job.id} is not the one waiting (pause {pause.seq}, "
            f"{pause.stage}); reload the run and answer that one.",
        )
    answered = store.answer(job.id, pause.seq, checked_reply(pause, answer))
    if answered is None:  # answered meanwhile, from another tab or client
        raise not_waiting(job)
    return answered


def not_waiting(job: JobRecord) -> ApiError:
    """409 for an answer to a run that waits for none, saying why."""
    if not job.params.get("copilot"):
        why = "it was not started as a co-pilot run (copilot: true)"
    elif job.status not in UNFINISHED or job.cancel_requested:
        why = f"it is {'cancelled' if job.cancel_requested else job.status}"
    else:
        why = "it is not paused now (its pause was answered, or it has not reached the next)"
    return ApiError(
        409,
        "not_waiting",
        f"Run {job.id} waits for no co-pilot answer: {why}. GET /v1/runs/{job.id} shows "
        "copilot_pause when it does.",
    )


def checked_reply(pause: CopilotPause, answer: CopilotAnswer) -> CopilotReply:
    """The pipeline's reply for ``answer``, or 422 when the pipeline could not use it: an
    empty edit or feedback, or an edit of a JSON artifact that is not valid JSON of the
    same shape (the ideas: a list of ideas)."""
    text = answer.text.strip()
    if answer.action == "approve":
        return CopilotReply(action="approve")
    if not text:
        raise invalid_answer(f"{answer.action} needs text: the {_what(answer)}.")
    if answer.action == "edit":
        check_edit(pause, answer.text)
    return CopilotReply(action=answer.action, text=answer.text)


def _what(answer: CopilotAnswer) -> str:
    if answer.action == "edit":
        return "edited artifact, which replaces the stage's own"
    return "feedback the stage is redone with"


def check_edit(pause: CopilotPause, text: str) -> None:
    """422 unless the edit of a JSON artifact is JSON of the same top-level shape."""
    try:
        original = json.loads(pause.editable)
    except ValueError:
        return  # a text artifact: any text will do
    try:
        edited = json.loads(text)
    except ValueError as exc:
        raise invalid_answer(
            f"The {pause.stage} artifact is JSON and the edit is not: {exc}."
        ) from exc
    if type(edited) is not type(original):
        shape = type(original).__name__.replace("dict", "object").replace("list", "array")
        raise invalid_answer(f"The edited {pause.stage} artifact must be a JSON {shape}.")
    if pause.stage == "ideas":
        try:
            parse_edited_ideas(text)
        except AutoscholarError as exc:
            raise invalid_answer(str(exc)) from exc


def invalid_answer(detail: str) -> ApiError:
    """422 for an answer the pipeline could not use."""
    return ApiError(422, "invalid_answer", f"{detail} Nothing was stored; answer again.")
