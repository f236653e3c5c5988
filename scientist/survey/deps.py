"""What the literature review's nodes need, passed as LangGraph's runtime context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.literature.models import Literature
from core.settings import Settings
from gateway import Gateway
from gateway.profiles import OutputProfile
from gateway.settings import Role

ROLE: Role = "citations"
"""The role of every call of the review: the model that searches and reads the literature."""


@dataclass
class SurveyDeps:
    """Gateway, settings and literature cascade of the review; tests swap each of them."""

    gateway: Gateway
    settings: Settings
    literature: Literature

    def profile(self) -> OutputProfile:
        """The output profile of the review's model: reply bounds, caps and prompt sizes."""
        return self.settings.profile(self.settings.llm.models.citations)

    def sampling(self) -> dict[str, Any]:
        """Role and output cap shared by every call of the stage."""
        return {"role": ROLE, "max_tokens": self.profile().survey_max_tokens}
