"""Pieces both CLIs share: loading settings from flags, showing them, reporting usage."""

from __future__ import annotations

import importlib.metadata
import json
import logging
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.settings import Settings, load_settings, parse_assignments, set_path
from gateway.errors import AutoscholarError

# Progress, notes and warnings, on stderr: silenced by -q. Errors go to ``errors``, never silenced.
console = Console(stderr=True, soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="One JSON document on stdout (logs and progress on stderr)."),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Only errors on stderr: no progress, notes or logs.")
]
VerboseOpt = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="More log lines (-v info, -vv debug).")
]
PresetOpt = Annotated[
    str | None, typer.Option("--preset", help="debug, default, quality or a JSON path.")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a setting: section.field=value (repeatable)."),
]


def settings_from_flags(
    preset: str | None,
    assignments: list[str] | None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Effective settings for ``--preset``, repeated ``--set section.field=value`` and a
    command's own typed flags (``{"review.num_reviewers": 3}``; None means "not given"),
    which win over ``--set``. The one way every CLI turns its options into settings."""
    overrides = parse_assignments(assignments or [])
    for dotted, value in (flags or {}).items():
        if value is not None:
            set_path(overrides, dotted, value)
    return load_settings(preset, overrides)


def settings_json(settings: Settings) -> str:
    """The settings as indented JSON, secrets masked."""
    data: dict[str, Any] = json.loads(settings.model_dump_json())
    return json.dumps(data, indent=2, sort_keys=False)


def fail(exc: AutoscholarError) -> int:
    """Print a typed error for a person and return its exit code: 1 the job failed, 2 the
    command's input, 3 the configuration (``gateway.errors.EXIT_*``)."""
    errors.print(f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))}")
    return exc.exit_code


class ErrorOutput(BaseModel):
    """What a ``--json`` command prints when it stops on a typed error."""

    error_type: str
    error: str
    exit_code: int


def fail_json(exc: AutoscholarError, as_json: bool) -> int:
    """:func:`fail`, and under ``--json`` the error as the one document on stdout."""
    code = fail(exc)
    if as_json:
        emit_json(ErrorOutput(error_type=type(exc).__name__, error=str(exc), exit_code=code))
    return code


def emit_json(document: BaseModel) -> None:
    """The one JSON document of a ``--json`` command, on stdout."""
    typer.echo(document.model_dump_json(indent=2))


def set_verbosity(quiet: bool, verbose: int) -> None:
    """-q / -v of both CLIs: how much goes to stderr besides errors and the command's output.

    Default: warnings from the log, progress and notes. -q: errors only. -v: info log lines;
    -vv: debug.
    """
    console.quiet = quiet
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if quiet else levels[min(verbose, len(levels) - 1)]
    logging.basicConfig(stream=errors.file, level=level, format=LOG_FORMAT, force=True)


def print_settings(preset: str | None, assignments: list[str] | None) -> None:
    """The ``settings`` command of both CLIs: effective settings as JSON, or a clear error."""
    try:
        Console().print_json(settings_json(settings_from_flags(preset, assignments)))
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc


def progress_bars(stderr: Console | None = None) -> Progress:
    """The progress display used for long work: description, bar, n/m, elapsed."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    shown = stderr or console
    return Progress(*columns, console=shown, disable=console.quiet or shown.quiet)


def version_text(command: str) -> str:
    """``scientist 0.1.0 (autoscholar)``: the command and the installed distribution's version."""
    try:
        version = importlib.metadata.version("autoscholar")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    return f"{command} {version} (autoscholar)"


def version_callback(command: str) -> Callable[[bool], None]:
    """A ``--version`` option's callback: print the version and stop."""

    def show(value: bool) -> None:
        if value:
            typer.echo(version_text(command))
            raise typer.Exit(0)

    return show


def version_option(command: str) -> Any:
    """The ``--version`` option of ``command``'s root callback."""
    return typer.Option(
        "--version",
        callback=version_callback(command),
        is_eager=True,
        help="Print the version and exit.",
    )
