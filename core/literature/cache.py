"""Per-source response cache in SQLite: a repeated query costs no request and no rate-limit wait."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from core.clock import Clock
from core.literature.models import Paper

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    created REAL NOT NULL,
    papers TEXT NOT NULL
)
"""


def request_key(source: str, kind: str, text: str, limit: int, tag: str = "") -> str:
    """Key of one request: source, kind (search/paper), normalised text, limit, source tag."""
    payload = json.dumps([source, kind, " ".join(text.lower().split()), limit, tag])
    return hashlib.sha256(payload.encode()).hexdigest()


class SourceCache:
    """Papers per request key, kept for ``ttl_s`` seconds."""

    def __init__(self, path: Path, ttl_s: float, clock: Clock = time.time) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock, closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            yield db

    def get(self, key: str) -> list[Paper] | None:
        """The cached papers, or None when absent or expired."""
        with self._db() as db:
            row = db.execute(
                "SELECT created, papers FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None or self._clock() - row[0] > self.ttl_s:
            return None
        return [Paper.model_validate(p) for p in json.loads(row[1])]

    def put(self, key: str, source: str, papers: list[Paper]) -> None:
        """Store ``papers`` under ``key``."""
        data = json.dumps([p.model_dump(mode="json") for p in papers])
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (key, source, self._clock(), data),
            )
