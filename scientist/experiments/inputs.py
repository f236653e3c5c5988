"""Reading the stage's inputs from a run folder: the idea by name, and its template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.runstore import RunPaths
from scientist.experiments.errors import IdeaNotFoundError
from scientist.ideas.models import Idea


def read_ideas_file(run: RunPaths) -> dict[str, Any]:
    """``ideas.json`` as a JSON object; a clear error when it is absent or malformed."""
    path = run.ideas_json
    if not path.is_file():
        raise IdeaNotFoundError(
            f"{path} does not exist: generate ideas first (`scientist ideas`) or pass a run "
            "folder that has them."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise IdeaNotFoundError(f"{path} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict) or not isinstance(data.get("ideas"), list):
        raise IdeaNotFoundError(f'{path} must hold a JSON object with an "ideas" list.')
    return data


def raw_ideas(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The idea dicts of the file: items are Idea objects, or hold one under "idea"."""
    found = []
    for item in data.get("ideas", []):
        raw = item.get("idea", item) if isinstance(item, dict) else None
        if isinstance(raw, dict):
            found.append(raw)
    return found


def find_idea(run: RunPaths, name: str) -> Idea:
    """The idea called ``name`` in the run's ``ideas.json``, validated."""
    raws = raw_ideas(read_ideas_file(run))
    for raw in raws:
        if raw.get("Name") == name:
            try:
                return Idea.model_validate(raw)
            except ValidationError as exc:
                raise IdeaNotFoundError(
                    f"Idea {name!r} in {run.ideas_json} is malformed: {exc}"
                ) from exc
    names = ", ".join(str(r.get("Name")) for r in raws) or "none"
    raise IdeaNotFoundError(f"No idea named {name!r} in {run.ideas_json} (ideas: {names}).")


def template_of(run: RunPaths, given: str | None) -> str:
    """The template: ``--template`` if given, else the "template" key of ``ideas.json``."""
    if given:
        return given
    template = read_ideas_file(run).get("template")
    if isinstance(template, str) and template:
        return template
    raise IdeaNotFoundError(
        f'{run.ideas_json} names no "template"; pass --template NAME_OR_FOLDER.'
    )


def idea_folder(run: RunPaths, idea: Idea) -> Path:
    """Where this idea's experiments live inside the run folder."""
    return run.idea(idea.Name).root
