"""What the idea graph's nodes need, passed as LangGraph's runtime context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from core.literature.models import Literature
from core.settings import Settings
from gateway import Gateway
from gateway.profiles import OutputProfile

Step = Literal["generate", "given", "reflect", "idea_done", "novelty", "novelty_done"]


@dataclass(frozen=True)
class IdeasProgress:
    """A step of the idea stage finished; ``index`` is the idea, ``round`` its round."""

    step: Step
    index: int
    round: int = 0
    total_rounds: int = 0
    name: str = ""


@dataclass
class IdeasDeps:
    """Gateway, settings and literature for the idea stage; tests swap each of them."""

    gateway: Gateway
    settings: Settings
    literature: Literature
    on_progress: Callable[[IdeasProgress], None] | None = None

    def notify(self, event: IdeasProgress) -> None:
        """Report progress if anyone listens."""
        if self.on_progress is not None:
            self.on_progress(event)

    def profile(self) -> OutputProfile:
        """The output profile of the ideas model: reply bounds, caps and prompt sizes."""
        return self.settings.profile(self.settings.llm.models.ideas)

    def sampling(self) -> dict[str, Any]:
        """Model, temperature and output cap shared by every call of the stage."""
        return {
            "model": self.settings.llm.models.ideas,
            "temperature": self.settings.ideas.temperature,
            "max_tokens": self.profile().idea_max_tokens,
        }
