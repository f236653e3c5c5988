"""What the write-up graph's nodes need, passed as LangGraph's runtime context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.literature.models import Literature
from core.settings import Settings
from gateway import Gateway
from scientist.writeup.compile import LatexCompiler


@dataclass(frozen=True)
class WriteupEvent:
    """Progress of the write-up: a stage, the section concerned (if any), a short detail."""

    stage: str
    section: str | None = None
    detail: str = ""


@dataclass
class WriteupDeps:
    """Gateway, settings, literature, LaTeX compiler and an optional progress callback."""

    gateway: Gateway
    settings: Settings
    literature: Literature
    compiler: LatexCompiler
    on_progress: Callable[[WriteupEvent], None] | None = None

    def notify(self, stage: str, section: str | None = None, detail: str = "") -> None:
        """Report progress if anyone listens."""
        if self.on_progress is not None:
            self.on_progress(WriteupEvent(stage, section, detail))
