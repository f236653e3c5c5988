"""Reading a run folder for the write-up: ideas.json and each idea's experiments.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from core.runstore import RunPaths, safe_name
from scientist.experiments.models import ExperimentRecord
from scientist.ideas.models import Idea
from scientist.ideas.records import NoveltyVerdict, PaperRef, relevant_papers
from scientist.writeup.errors import WriteupInputError


@dataclass(frozen=True)
class WriteupTarget:
    """One idea to write: the idea, its folder and its experiment record."""

    idea: Idea
    idea_dir: Path
    record: ExperimentRecord


def read_ideas(path: Path) -> list[Idea]:
    """Ideas from ideas.json: ``{"ideas": [...]}`` with Idea dicts or ``{"idea": {...}}`` items."""
    if not path.is_file():
        raise WriteupInputError(
            f"{path} does not exist: run the idea stage first (scientist ideas)."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WriteupInputError(f"{path} is not valid JSON ({exc}).") from exc
    items = data.get("ideas") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise WriteupInputError(f'{path} must hold a JSON object with an "ideas" list.')
    ideas = []
    for item in items:
        raw = item.get("idea", item) if isinstance(item, dict) else item
        try:
            ideas.append(Idea.model_validate(raw))
        except ValidationError as exc:
            raise WriteupInputError(f"{path}: an idea is malformed: {exc}") from exc
    return ideas


def read_record(path: Path) -> ExperimentRecord:
    """An idea folder's experiments.json."""
    try:
        return ExperimentRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise WriteupInputError(f"{path} is missing or malformed ({exc}).") from exc


def writeup_targets(run: RunPaths, name: str | None = None) -> list[WriteupTarget]:
    """The ideas to write: ``name`` only, or every idea whose folder holds experiments.json."""
    ideas = read_ideas(run.ideas_json)
    if name is not None:
        chosen = [i for i in ideas if name in (i.Name, safe_name(i.Name))]
        if not chosen:
            names = ", ".join(i.Name for i in ideas) or "none"
            raise WriteupInputError(f"No idea named {name!r} in {run.ideas_json} (ideas: {names}).")
        paths = run.idea(chosen[0].Name)
        if not paths.experiments_json.is_file():
            raise WriteupInputError(
                f"{paths.experiments_json} does not exist: run the experiments for {name} first."
            )
        return [WriteupTarget(chosen[0], paths.root, read_record(paths.experiments_json))]
    targets = []
    for idea in ideas:
        paths = run.idea(idea.Name)
        if paths.experiments_json.is_file():
            targets.append(WriteupTarget(idea, paths.root, read_record(paths.experiments_json)))
    if not targets:
        raise WriteupInputError(
            f"No idea folder in {run.root} holds experiments.json: run the experiments first."
        )
    return targets


def read_related(path: Path, name: str, fallback: int) -> list[PaperRef]:
    """The papers idea ``name``'s novelty check found relevant, from ideas.json (see
    ``relevant_papers``); none when the file, the idea or its check is missing or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    items = data.get("ideas") if isinstance(data, dict) else data
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("novelty"), dict):
            continue
        idea = item.get("idea")
        if isinstance(idea, dict) and name in (idea.get("Name"), safe_name(str(idea.get("Name")))):
            try:
                return relevant_papers(NoveltyVerdict.model_validate(item["novelty"]), fallback)
            except ValidationError:
                return []
    return []
