"""The terminal side of co-pilot mode: show a stage's summary, take approve / edit / feedback."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.prompt import Prompt

from scientist.pipeline.models import CopilotReply, CopilotRequest

CHOICES = {"a": "approve", "e": "edit", "f": "feedback"}


def terminal_copilot(request: CopilotRequest, console: Console | None = None) -> CopilotReply:
    """Ask the human at the terminal; 'edit' opens $EDITOR on the stage's artifact."""
    console = console or Console(stderr=True)
    title = f"{request.stage} done" + (f" · {request.idea}" if request.idea else "")
    console.print(Panel(request.summary, title=title))
    key = Prompt.ask(
        escape("[a]pprove, [e]dit, or [f]eedback and redo"),  # else rich eats "[a]" as markup
        choices=list(CHOICES),
        default="a",
        console=console,
    )
    action = CHOICES[key]
    if action == "feedback":
        return CopilotReply(action="feedback", text=Prompt.ask("feedback", console=console))
    if action == "edit":
        edited = click.edit(request.editable)
        if edited is None:
            console.print("no change saved: approving as is")
            return CopilotReply(action="approve")
        return CopilotReply(action="edit", text=edited)
    return CopilotReply(action="approve")
