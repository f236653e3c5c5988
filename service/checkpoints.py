"""The LangGraph checkpointer every worker shares: one SQLite file, a thread per job id."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel

import reviewer.checks.models
import reviewer.review.form


def state_types(*modules: ModuleType) -> list[tuple[str, str]]:
    """Every pydantic model defined in ``modules``: what graph states may hold."""
    return [
        (value.__module__, value.__name__)
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == module.__name__
    ]


def serializer() -> JsonPlusSerializer:
    """Checkpoint serde that rebuilds our state models and nothing else unexpected.

    LangGraph warns about (and will block) restoring classes it was not told about.
    """
    allowed = state_types(reviewer.review.form, reviewer.checks.models)
    return JsonPlusSerializer(allowed_msgpack_modules=allowed)


@contextmanager
def open_checkpointer(path: Path) -> Iterator[SqliteSaver]:
    """A SqliteSaver on ``path`` (WAL, waits for other writers); closed on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        saver = SqliteSaver(conn, serde=serializer())
        saver.setup()
        yield saver
    finally:
        conn.close()
