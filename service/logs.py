"""Worker logs: plain text, or one JSON object per line carrying the job id.

    configure_logging("json")
    with job_logging(job.id):
        log.info("claimed")   # {"ts": ..., "level": "INFO", ..., "job_id": "<id>", ...}

The job id lives in a context variable, so every line logged while the job runs carries
it: the worker's own, the gateway's and the graph's, in threads that copy the context
(LangGraph's executor does).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s"
CURRENT_JOB: ContextVar[str | None] = ContextVar("autoscholar_job_id", default=None)


@contextmanager
def job_logging(job_id: str) -> Iterator[None]:
    """Tag every log line of this context with ``job_id``."""
    token = CURRENT_JOB.set(job_id)
    try:
        yield
    finally:
        CURRENT_JOB.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, process, thread, job_id,
    and the traceback as ``exc`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
            "job_id": getattr(record, "job_id", None) or CURRENT_JOB.get(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(fmt: LogFormat, level: int = logging.INFO) -> None:
    """Set the root logger's one handler (stderr) to ``fmt``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
