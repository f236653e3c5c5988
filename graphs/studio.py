"""Graph factories for LangGraph's own tools: ``langgraph dev``, LangGraph Studio, the API server.

``langgraph.json`` names these factories. Such a tool invokes a graph with JSON only, so the
dependencies (gateway, settings, calibration, few-shot examples) cannot arrive as the runtime
context the way ``reviewer review`` passes them. A factory reads a serialisable
:class:`StudioConfig` (a preset and ``--set`` overrides, from the assistant's or the run's
``configurable``), and binds the dependencies built from it into the graph's nodes. They are
built when a node first needs them, so drawing the graph builds nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from core.cli_support import settings_from_flags
from core.settings import Settings
from gateway import Gateway
from graphs.review import build_review_graph
from reviewer.review.reviewing import ReviewDeps

T = TypeVar("T")


class StudioConfig(BaseModel):
    """What a LangGraph tool may set in ``configurable``: everything else there is ignored."""

    model_config = ConfigDict(extra="ignore")

    preset: str = Field("debug", description="debug, default, quality or a JSON path.")
    overrides: list[str] = Field(
        default_factory=list, description="`section.field=value` pairs, as with --set."
    )
    template: str = Field("digits", description="The paper graph's template (name or folder).")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> StudioConfig:
        """The fields this config's ``configurable`` holds (a RunnableConfig, or None)."""
        return cls.model_validate(dict((config or {}).get("configurable") or {}))

    def settings(self) -> Settings:
        """Settings as the CLIs build them: preset < environment < overrides."""
        return settings_from_flags(self.preset, self.overrides)


def once(build: Callable[[], T]) -> Callable[[], T]:
    """``build`` called on first use only, then its result for every later call."""
    return functools.cache(build)


def review_deps(studio: StudioConfig) -> ReviewDeps:
    """The review graph's dependencies, as ``reviewer review`` builds them."""
    settings = studio.settings()
    return ReviewDeps.from_settings(settings, Gateway.from_settings(settings))


def review_graph(config: dict[str, Any]) -> Any:
    """The review graph, for ``langgraph.json``. Input: ``{"pdf_path": ...}`` or
    ``{"paper_text": ...}``; configurable: ``preset``, ``overrides``."""
    studio = StudioConfig.from_config(config)
    return build_review_graph(deps=once(lambda: review_deps(studio)))
