"""Reading a local corpus for the offline index: .jsonl records and .bib files.

A .jsonl line needs a ``title``; it may carry ``id``, ``abstract``, ``authors`` (names, or
objects with a ``name``), ``year``, ``venue`` (a year is read from it when ``year`` is
absent, e.g. "ICLR 2022"), ``doi``, ``arxiv``, ``url``/``forum_url``, ``citation_count``
and a ready ``bibtex`` entry. Other fields (the ICLR file's full text, reviews) are ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core.literature.bibtex import parse_bib
from core.literature.errors import CorpusError

CORPUS_SUFFIXES = (".jsonl", ".bib")
_YEAR = re.compile(r"\b(19|20)\d\d\b")


class CorpusRecord(BaseModel):
    """One paper of the local corpus, as indexed."""

    record_id: str = Field(description="Unique within the index: the record's id or a hash.")
    title: str
    abstract: str = ""
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    ids: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    citation_count: int | None = None
    bibtex: str | None = None
    origin: str = Field("", description="The file the record came from.")


def corpus_files(paths: Iterable[Path]) -> list[Path]:
    """The .jsonl and .bib files named by ``paths`` (folders are searched recursively)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in CORPUS_SUFFIXES)
        elif path.is_file() and path.suffix.lower() in CORPUS_SUFFIXES:
            found.append(path)
        elif path.exists():
            raise CorpusError(f"{path}: only .jsonl and .bib files can be indexed.")
        else:
            raise CorpusError(f"{path}: no such file or folder.")
    return found


def read_corpus(path: Path) -> Iterator[CorpusRecord]:
    """Records of one .jsonl or .bib file."""
    if path.suffix.lower() == ".bib":
        yield from read_bib(path)
    else:
        yield from read_jsonl(path)


def _stable_id(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:12]


def _authors(value: Any) -> list[str]:
    if isinstance(value, str):
        return [a.strip() for a in value.split(" and ") if a.strip()]
    if isinstance(value, list):
        names = [a.get("name", "") if isinstance(a, dict) else str(a) for a in value]
        return [n.strip() for n in names if n and n.strip()]
    return []


def _year(value: Any, venue: str | None) -> int | None:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    match = _YEAR.search(venue or "")
    return int(match.group(0)) if match else None


def record_from_json(data: dict[str, Any], origin: str) -> CorpusRecord | None:
    """A record from one JSON object, or None when it has no title."""
    title = " ".join(str(data.get("title") or "").split())
    if not title:
        return None
    venue = data.get("venue") or None
    ids = {k: str(data[k]) for k in ("doi", "arxiv", "openreview") if data.get(k)}
    if str(data.get("forum_url") or "").startswith("https://openreview.net/"):
        ids.setdefault("openreview", str(data.get("id")))
    count = data.get("citation_count")
    return CorpusRecord(
        record_id=str(data.get("id") or _stable_id(origin, title)),
        title=title,
        abstract=" ".join(str(data.get("abstract") or "").split()),
        authors=_authors(data.get("authors")),
        year=_year(data.get("year"), venue),
        venue=venue,
        ids=ids,
        url=data.get("url") or data.get("forum_url") or None,
        citation_count=count if isinstance(count, int) else None,
        bibtex=data.get("bibtex") or None,
        origin=origin,
    )


def read_jsonl(path: Path) -> Iterator[CorpusRecord]:
    """Records of a JSON-lines file; a malformed line is an error naming the line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{number}: not valid JSON ({exc.msg}).") from exc
            if not isinstance(data, dict):
                raise CorpusError(f"{path}:{number}: expected a JSON object per line.")
            record = record_from_json(data, str(path))
            if record is not None:
                yield record


def read_bib(path: Path) -> Iterator[CorpusRecord]:
    """Records of a BibTeX file: @string macros and ``#`` resolved, entries without a title
    skipped, a malformed entry skipped with a warning naming its line."""
    text = path.read_text(encoding="utf-8", errors="replace")
    for entry in parse_bib(text, source=str(path)):
        data: dict[str, Any] = {
            "id": entry.key or None,
            "title": entry.field("title"),
            "abstract": entry.field("abstract"),
            "authors": entry.field("author"),
            "year": entry.field("year"),
            "venue": entry.field("journal") or entry.field("booktitle"),
            "doi": entry.field("doi"),
            "arxiv": entry.field("eprint"),
            "url": entry.field("url"),
            "bibtex": entry.text,
        }
        record = record_from_json(data, str(path))
        if record is not None:
            yield record
