"""Load and validate the calibration papers (JSONL) and a reviewer's scores (CSV, JSON, JSONL).

Bad records are never skipped silently: every problem is collected with its line number
and reported at once in a :class:`CalibrationDataError`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reviewer.calibration.errors import CalibrationDataError, CalibrationError

PAPER_ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"  # ids become file names under OUT/reviews/


class HumanReview(BaseModel):
    """One human reviewer's overall rating (ICLR 2022 scale: 1, 3, 5, 6, 8, 10)."""

    model_config = ConfigDict(extra="ignore")

    rating: int = Field(ge=1, le=10)


class CalibrationPaper(BaseModel):
    """One paper of the calibration set: its text, its human ratings and its decision."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=PAPER_ID_PATTERN, description="OpenReview forum id.")
    title: str = ""
    full_text: str = Field(min_length=1)
    references_offset: int | None = Field(None, ge=0, description="Start of References.")
    decision: Literal["accept", "reject"]
    reviews: list[HumanReview] = Field(min_length=1)

    @property
    def accepted(self) -> bool:
        """True for an accepted paper."""
        return self.decision == "accept"

    @property
    def ratings(self) -> list[int]:
        """The human ratings, in file order."""
        return [r.rating for r in self.reviews]

    @property
    def body_chars(self) -> int:
        """Characters before the References heading (the whole text when it has none)."""
        offset = self.references_offset
        return len(self.full_text) if offset is None else min(offset, len(self.full_text))


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def load_papers(path: Path) -> list[CalibrationPaper]:
    """Every paper in a JSONL file; blank lines are allowed, bad or duplicate ones are not."""
    if not path.is_file():
        raise CalibrationError(f"{path}: no such data file; pass --data with a JSONL file.")
    papers: list[CalibrationPaper] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                paper = CalibrationPaper.model_validate_json(line)
            except ValidationError as exc:
                problems.append(f"line {number}: {_first_error(exc)}")
                continue
            if paper.id in seen:
                problems.append(f"line {number}: duplicate id {paper.id!r} (line {seen[paper.id]})")
                continue
            seen[paper.id] = number
            papers.append(paper)
    if problems:
        raise CalibrationDataError(path, problems)
    if not papers:
        raise CalibrationError(f"{path}: the data file holds no papers.")
    return papers


def labels(papers: list[CalibrationPaper]) -> np.ndarray:
    """1 for accept, 0 for reject, in paper order."""
    return np.array([1.0 if p.accepted else 0.0 for p in papers])


def _records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) pairs from a CSV, JSONL or JSON-list file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            start = 2
            for row in reader:
                yield f"line {start}", dict(row)
                start = reader.line_num + 1
    elif suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield f"line {number}", _json_object(line, f"line {number}")
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise CalibrationError(f"{path}: a JSON reviews file must hold a list of objects.")
        for number, item in enumerate(data, start=1):
            yield f"item {number}", item if isinstance(item, dict) else {"_bad": item}
    else:
        raise CalibrationError(f"{path}: reviews must be .csv, .json or .jsonl, not {suffix!r}.")


def _json_object(line: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"_bad": f"not JSON ({exc.msg})"}
    return value if isinstance(value, dict) else {"_bad": f"not an object ({where})"}


def _overall(record: dict[str, Any]) -> float:
    """The record's Overall as a finite number on the 1-10 scale, or ValueError."""
    raw = record.get("Overall", record.get("overall"))
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueError("no Overall value")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"Overall {raw!r} is not a number") from None
    if not math.isfinite(value) or not 1 <= value <= 10:
        raise ValueError(f"Overall {raw!r} is not a number from 1 to 10")
    return value


def load_reviews(path: Path) -> dict[str, float]:
    """``paper_id -> Overall`` from a reviews file with at least those two columns."""
    if not path.is_file():
        raise CalibrationError(f"{path}: no such reviews file.")
    scores: dict[str, float] = {}
    problems: list[str] = []
    try:
        for where, record in _records(path):
            paper_id = str(record.get("paper_id") or "").strip()
            if "_bad" in record or not paper_id:
                problems.append(f"{where}: {record.get('_bad') or 'no paper_id'}")
                continue
            if paper_id in scores:
                problems.append(f"{where}: duplicate paper_id {paper_id!r}")
                continue
            try:
                scores[paper_id] = _overall(record)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise CalibrationError(f"{path}: unreadable reviews file ({exc}).") from exc
    if problems:
        raise CalibrationDataError(path, problems)
    if not scores:
        raise CalibrationError(f"{path}: the reviews file holds no reviews.")
    return scores


def select_papers(
    papers: list[CalibrationPaper], limit: int | None, seed: int
) -> list[CalibrationPaper]:
    """A stratified random sample of ``limit`` papers (all of them without a limit)."""
    if limit is None or limit >= len(papers):
        return list(papers)
    if limit < 4:
        raise CalibrationError(f"--limit {limit} is too small: use at least 4 papers.")
    rng = np.random.default_rng(seed)
    accepted = [p for p in papers if p.accepted]
    rejected = [p for p in papers if not p.accepted]
    share = round(limit * len(accepted) / len(papers))
    take = min(len(accepted), max(share, 2), limit - min(2, len(rejected)))
    picks = [accepted[i] for i in rng.permutation(len(accepted))[:take]]
    picks += [rejected[i] for i in rng.permutation(len(rejected))[: limit - take]]
    order = {p.id: i for i, p in enumerate(papers)}
    return sorted(picks, key=lambda p: order[p.id])
