"""Records the literature layer returns; every source maps its answers onto these."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

SourceName = Literal["semantic_scholar", "openalex", "offline"]


class Paper(BaseModel):
    """One paper as any source describes it. ``paper_id`` is unique within a search result."""

    model_config = ConfigDict(extra="forbid")

    paper_id: str = Field(
        description="Source-qualified id, e.g. 's2:abc123', 'openalex:W1', 'offline:key'."
    )
    title: str
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    abstract: str | None = None
    citation_count: int | None = None
    ids: dict[str, str] = Field(
        default_factory=dict, description="External ids: doi, arxiv, s2, openalex, openreview."
    )
    bibtex: str = Field(description="A complete BibTeX entry whose key is ``citation_key``.")
    citation_key: str = Field(description="Stable, unique BibTeX key, e.g. 'power2022grokking'.")
    source: SourceName


class SourceOutcome(BaseModel):
    """What one source did for one query: answered, or failed and why."""

    model_config = ConfigDict(extra="forbid")

    source: SourceName
    ok: bool
    results: int = 0
    seconds: float = 0.0
    error: str | None = Field(None, description="Why it failed: timeout, HTTP 429, malformed JSON…")
    cached: bool = Field(False, description="Answered from the response cache, no request made.")


class SearchResult(BaseModel):
    """Papers for one query, and which sources answered."""

    model_config = ConfigDict(extra="forbid")

    query: str
    papers: list[Paper] = Field(default_factory=list)
    outcomes: list[SourceOutcome] = Field(default_factory=list)

    @property
    def answered_by(self) -> list[SourceName]:
        """Sources that answered (possibly with zero results)."""
        return [outcome.source for outcome in self.outcomes if outcome.ok]


class Literature(Protocol):
    """The one interface the idea and write-up stages use; tests pass a fake."""

    def search(self, query: str, limit: int) -> SearchResult:
        """Search the cascade; never raises because a source is down, never hangs."""
        ...

    def paper(self, paper_id: str) -> Paper | None:
        """A paper seen in an earlier search (or fetched by id); None if unknown."""
        ...
