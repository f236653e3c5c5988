"""Loading a research template (The AI Scientist's layout; see TEMPLATES.md)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.resources import shipped_path
from scientist.errors import TemplateError
from scientist.ideas.models import Idea

SHIPPED_TEMPLATES = shipped_path("templates")
REQUIRED_FILES = (
    "experiment.py",
    "plot.py",
    "prompt.json",
    "seed_ideas.json",
    "latex/template.tex",
)


class TemplatePrompt(BaseModel):
    """``prompt.json``: the idea generator's system message and task text."""

    model_config = ConfigDict(extra="allow")

    system: str = Field(min_length=1)
    task_description: str = Field(min_length=1)


class Template(BaseModel):
    """A template folder, read: what the idea stage shows the model."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: Path
    prompt: TemplatePrompt
    seed_ideas: list[Idea]
    experiment_code: str


def shipped_templates() -> list[str]:
    """Names of the templates shipped in ``templates/``."""
    if not SHIPPED_TEMPLATES.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_TEMPLATES.iterdir() if (p / "experiment.py").is_file())


def resolve_template(name_or_path: str | Path) -> Path:
    """A template folder from a path, or from the name of a shipped template."""
    path = Path(name_or_path)
    if path.is_dir():
        return path.resolve()
    shipped = SHIPPED_TEMPLATES / str(name_or_path)
    if shipped.is_dir():
        return shipped
    names = ", ".join(shipped_templates()) or "none"
    raise TemplateError(
        f"No template at {name_or_path!r}: give a template folder or a shipped name ({names})."
    )


def missing_files(path: Path) -> list[str]:
    """Required template files that are absent."""
    return [name for name in REQUIRED_FILES if not (path / name).is_file()]


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path} is not valid JSON ({exc}); fix the file.") from exc


def load_template(name_or_path: str | Path) -> Template:
    """Read and validate a template's prompt, seed ideas and experiment code."""
    path = resolve_template(name_or_path)
    missing = missing_files(path)
    if missing:
        raise TemplateError(f"Template {path} lacks {', '.join(missing)} (see TEMPLATES.md).")
    try:
        prompt = TemplatePrompt.model_validate(read_json(path / "prompt.json"))
        seeds = [Idea.model_validate(item) for item in as_list(read_json(path / "seed_ideas.json"))]
    except ValidationError as exc:
        raise TemplateError(f"Template {path}: {exc}") from exc
    code = (path / "experiment.py").read_text(encoding="utf-8")
    return Template(
        name=path.name, path=path, prompt=prompt, seed_ideas=seeds, experiment_code=code
    )


def as_list(data: object) -> list[object]:
    if not isinstance(data, list):
        raise TemplateError("seed_ideas.json must hold a JSON list of ideas.")
    return data
