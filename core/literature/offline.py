"""The offline index: SQLite FTS5 with BM25 ranking over a local corpus (.jsonl, .bib).

Built by ``scientist literature index PATH...`` into ``<data_dir>/literature/index.sqlite``
(or ``literature.index_path``); a rebuild writes a new file and swaps it in atomically.
Titles weigh most in the ranking, then authors, abstracts and venues; an exact title
query ranks that paper first.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.literature.bibtex import STOPWORDS, base_key, make_bibtex, with_key
from core.literature.corpus import CorpusRecord, corpus_files, read_corpus
from core.literature.errors import IndexMissingError
from core.literature.models import Paper, SourceName

# bm25() weights per column: record_id, title, abstract, authors, venue, data.
BM25_WEIGHTS = (0.0, 10.0, 1.0, 2.0, 0.5, 0.0)
_WORD = re.compile(r"\w+", re.UNICODE)
SCHEMA = """
CREATE VIRTUAL TABLE docs USING fts5(
    record_id UNINDEXED, title, abstract, authors, venue, data UNINDEXED,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class IndexStats:
    """What a build produced."""

    path: Path
    records: int
    skipped_duplicates: int
    files: list[Path]
    seconds: float


def match_expression(query: str) -> str:
    """An FTS5 MATCH expression: every content word quoted, any of them may match."""
    words = [w.lower() for w in _WORD.findall(query)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(kept))


def _normal_title(title: str) -> str:
    return " ".join(_WORD.findall(title.lower()))


def build_index(paths: Iterable[Path], index_path: Path) -> IndexStats:
    """Index every record of the corpus files under ``paths``; replaces any earlier index."""
    start = time.perf_counter()
    files = corpus_files(paths)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_name(f".{index_path.name}.{uuid.uuid4().hex}.tmp")
    seen_ids: set[str] = set()
    seen_titles: set[str] = set()
    skipped = 0
    try:
        with closing(sqlite3.connect(tmp)) as db, db:
            db.executescript(SCHEMA)
            for path in files:
                rows = []
                for record in read_corpus(path):
                    title = _normal_title(record.title)
                    if record.record_id in seen_ids or title in seen_titles:
                        skipped += 1
                        continue
                    seen_ids.add(record.record_id)
                    seen_titles.add(title)
                    rows.append(_row(record))
                db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?)", rows)
            meta = {
                "build_id": uuid.uuid4().hex,
                "built_at": str(time.time()),
                "files": json.dumps([str(p) for p in files]),
                "records": str(len(seen_ids)),
            }
            db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            db.execute("INSERT INTO docs(docs) VALUES ('optimize')")
        tmp.replace(index_path)
    finally:
        tmp.unlink(missing_ok=True)
    return IndexStats(index_path, len(seen_ids), skipped, files, time.perf_counter() - start)


def _row(record: CorpusRecord) -> tuple[str, str, str, str, str, str]:
    return (
        record.record_id,
        record.title,
        record.abstract,
        " ".join(record.authors),
        record.venue or "",
        record.model_dump_json(),
    )


def paper_from_record(record: CorpusRecord) -> Paper:
    """A Paper with a base citation key (the cascade makes keys unique across sources)."""
    key = base_key(record.authors, record.year, record.title)
    rekeyed = with_key(record.bibtex or "", key)
    return Paper(
        paper_id=f"offline:{record.record_id}",
        title=record.title,
        authors=record.authors,
        year=record.year,
        venue=record.venue,
        abstract=record.abstract or None,
        citation_count=record.citation_count,
        ids=record.ids,
        bibtex=rekeyed.text
        if rekeyed
        else make_bibtex(
            key,
            title=record.title,
            authors=record.authors,
            year=record.year,
            venue=record.venue,
            ids=record.ids,
            url=record.url,
        ),
        citation_key=key,
        source="offline",
    )


class OfflineIndex:
    """Searches an index built by ``build_index``; a missing index is a clear error."""

    name: SourceName = "offline"

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self.path.is_file():
            raise IndexMissingError(
                f"No offline literature index at {self.path}. Build one with "
                "`scientist literature index PATH...` (.jsonl or .bib files, or folders)."
            )
        with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
            yield db

    @property
    def cache_tag(self) -> str:
        """Changes with every rebuild, so cached answers of an older index are not reused."""
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'build_id'").fetchone()
        return str(row[0]) if row else ""

    def search(self, query: str, limit: int) -> list[Paper]:
        """The best ``limit`` records by BM25; an exact title match comes first."""
        expression = match_expression(query)
        if not expression:
            return []
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        sql = (
            f"SELECT title, data FROM docs WHERE docs MATCH ? "
            f"ORDER BY bm25(docs, {weights}) LIMIT ?"
        )
        with self._connect() as db:
            rows = db.execute(sql, (expression, max(limit, 1) * 3)).fetchall()
        wanted = _normal_title(query)
        rows.sort(key=lambda row: _normal_title(row[0]) != wanted)  # stable: keeps BM25 order
        return [paper_from_record(CorpusRecord.model_validate_json(r[1])) for r in rows[:limit]]

    def fetch(self, paper_id: str) -> Paper | None:
        """The record ``offline:<id>``, or None."""
        record_id = paper_id.removeprefix("offline:")
        with self._connect() as db:
            row = db.execute("SELECT data FROM docs WHERE record_id = ?", (record_id,)).fetchone()
        return paper_from_record(CorpusRecord.model_validate_json(row[0])) if row else None

    def count(self) -> int:
        """Records in the index."""
        with self._connect() as db:
            return int(db.execute("SELECT count(*) FROM docs").fetchone()[0])
