"""A live table of every idea's stage and status, fed by pipeline events."""

from __future__ import annotations

import threading
import time

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table

from scientist.pipeline.models import STAGES, PipelineEvent

MARKS = {
    "started": "[yellow]…[/]",
    "done": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "stopped": "[red]■[/]",
    "waiting": "[cyan]?[/]",
}


class LiveView:
    """Keeps the latest status per (idea, stage); renders them as a table with elapsed time."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._status: dict[str, dict[str, str]] = {}
        self._details: dict[str, str] = {}
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._live: Live | None = None

    def __call__(self, event: PipelineEvent) -> None:
        """Record an event and refresh the view."""
        key = event.idea or "(run)"
        with self._lock:
            self._status.setdefault(key, {})[event.stage] = event.status
            if event.detail:
                self._details[key] = event.detail
        if self._live is not None:
            self._live.update(self.render())
        else:
            mark = MARKS.get(event.status, event.status)
            self.console.print(f"{mark} {key} · {event.stage} {event.status} {event.detail}")

    def render(self) -> RenderableType:
        """The current table."""
        table = Table(title=f"paper run · {time.monotonic() - self._start:.0f} s")
        table.add_column("idea")
        for stage in STAGES:
            table.add_column(stage)
        table.add_column("detail", overflow="fold", max_width=50)
        with self._lock:
            for key, stages in self._status.items():
                marks = [MARKS.get(stages.get(s, ""), "") for s in STAGES]
                table.add_row(key, *marks, self._details.get(key, ""))
        return Group(table)

    def __enter__(self) -> LiveView:
        self._live = Live(self.render(), console=self.console, refresh_per_second=2)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None
