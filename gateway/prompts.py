"""Prompt templates as files next to their code, rendered strictly (missing variables raise)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, meta


@cache
def _environment(folder: str) -> Environment:
    return Environment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(folder: Path, name: str, **variables: Any) -> str:
    """Render ``folder/name`` with exactly ``variables``; extra or missing ones raise."""
    env = _environment(str(folder))
    expected = template_variables(folder, name)
    extra = set(variables) - expected
    if extra:
        raise TypeError(f"Template {name} does not use {sorted(extra)}")
    return env.get_template(name).render(**variables).strip()


def template_variables(folder: Path, name: str) -> set[str]:
    """The undeclared variables a template needs."""
    env = _environment(str(folder))
    source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
    return set(meta.find_undeclared_variables(env.parse(source)))


GATEWAY_PROMPTS = Path(__file__).parent / "prompts"
