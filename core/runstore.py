"""The run folder's layout, in one place.

runs/<UTC stamp>_<template>/
    ideas.json  ledger.jsonl  run.json  checkpoints.sqlite
    <idea name>/            template copy, run_i/, *.png, notes.txt
        experiments.json
        paper/              paper.tex, references.bib, paper.pdf, writeup.json
        review/             review.json, review.md, review.html
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.errors import EXIT_USAGE, AutoscholarError


class RunStoreError(AutoscholarError):
    """A run folder is missing or not a run folder."""

    exit_code = EXIT_USAGE


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(name: str) -> str:
    """A folder name from a model-chosen idea name: no separators, no dot-dot, not empty."""
    cleaned = _UNSAFE.sub("_", name).strip("._")[:60]
    return cleaned or "idea"


@dataclass(frozen=True)
class IdeaPaths:
    """Files of one idea inside a run folder."""

    root: Path

    @property
    def experiments_json(self) -> Path:
        return self.root / "experiments.json"

    @property
    def paper_dir(self) -> Path:
        return self.root / "paper"

    @property
    def writeup_json(self) -> Path:
        return self.paper_dir / "writeup.json"

    @property
    def paper_pdf(self) -> Path:
        return self.paper_dir / "paper.pdf"

    @property
    def review_dir(self) -> Path:
        return self.root / "review"


@dataclass(frozen=True)
class RunPaths:
    """Files of one run folder."""

    root: Path

    @property
    def ideas_json(self) -> Path:
        return self.root / "ideas.json"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints.sqlite"

    def idea(self, name: str) -> IdeaPaths:
        return IdeaPaths(self.root / safe_name(name))


def new_run(runs_dir: Path, label: str, now: datetime | None = None) -> RunPaths:
    """Create ``runs_dir/<UTC stamp>_<label>/`` (a suffix keeps two runs in one second apart)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    base = runs_dir / f"{stamp}_{safe_name(label)}"
    for attempt in range(100):
        root = base if attempt == 0 else base.with_name(f"{base.name}-{attempt}")
        try:
            root.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        return RunPaths(root)
    raise RunStoreError(f"Could not create a fresh run folder next to {base}.")


def open_run(path: Path) -> RunPaths:
    """An existing run folder; a clear error if it is not one."""
    if not path.is_dir():
        raise RunStoreError(f"{path} is not a folder; pass a run folder under runs/.")
    return RunPaths(path)
