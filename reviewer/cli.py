"""``reviewer``: the reviewing side's command line. It never imports ``scientist``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gateway.cli_support import fail, settings_from_flags, settings_json
from gateway.errors import AutoscholarError

app = typer.Typer(help="Review papers with a calibrated LLM ensemble.", no_args_is_help=True)
out = Console()


@app.command()
def settings(
    preset: Annotated[
        str | None, typer.Option(help="debug, default, quality or a JSON path.")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="section.field=value")] = None,
) -> None:
    """Print the effective settings (preset < environment < --set), secrets masked."""
    try:
        out.print_json(settings_json(settings_from_flags(preset, set_)))
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc


@app.callback()
def _root() -> None:
    """Review papers with a calibrated LLM ensemble."""


def main() -> None:
    """Console-script entry point."""
    app()
