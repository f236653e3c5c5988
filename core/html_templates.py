"""The Jinja environment of the HTML pages (the service's pages, a run's report.html)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined


def html_environment(folder: Path, filters: dict[str, Callable[..., Any]]) -> Environment:
    """Templates in ``folder``, every value escaped, an undefined name an error."""
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters)
    return env
