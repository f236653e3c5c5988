"""Pieces both CLIs share: loading settings from flags, showing them, reporting usage."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from gateway.errors import AutoscholarError
from gateway.settings import Settings, load_settings, parse_assignments

console = Console(stderr=True, soft_wrap=True)


def settings_from_flags(preset: str | None, assignments: list[str] | None) -> Settings:
    """Effective settings for ``--preset`` and repeated ``--set section.field=value``."""
    return load_settings(preset, parse_assignments(assignments or []))


def settings_json(settings: Settings) -> str:
    """The settings as indented JSON, secrets masked."""
    data: dict[str, Any] = json.loads(settings.model_dump_json())
    return json.dumps(data, indent=2, sort_keys=False)


def fail(exc: AutoscholarError) -> int:
    """Print a typed error for a person and return the exit code."""
    console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}")
    return 2
