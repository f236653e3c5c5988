"""The idea stage's structured replies and the records it writes to ``ideas.json``.

The reply classes accept any profile's reply (they are what the stage keeps); the bounds a
model's reply must meet come from its output profile: ``idea_reply(profile)``,
``idea_reflection(profile)`` and ``novelty_reply(profile)`` are the schemas sent.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from core.literature.models import Paper, SourceName, SourceOutcome
from gateway.profiles import OutputProfile
from scientist.ideas.models import Idea, idea_form

R = TypeVar("R", bound=BaseModel)

SortKey = Literal["overall", "Novelty", "Interestingness", "Feasibility"]
SORT_KEYS: tuple[SortKey, ...] = ("overall", "Novelty", "Interestingness", "Feasibility")


THOUGHT = {
    "idea": "Brief reasoning before the idea.",
    "reflection": "What is weak about the idea, if anything.",
    "novelty": "What the results show about the idea.",
}
JUSTIFICATION = "Why, when deciding; else ''."
CLOSEST = "Ids of the closest papers shown, when deciding."


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdeaReply(_Reply):
    """A newly proposed idea."""

    thought: str = Field(description=THOUGHT["idea"])
    idea: Idea


class IdeaReflection(_Reply):
    """One reflection round: the improved idea, and whether it needs no further change."""

    thought: str = Field(description=THOUGHT["reflection"])
    idea: Idea
    done: bool = Field(description="True when the idea needs no further change.")


class NoveltyReply(_Reply):
    """One novelty round: search again, or decide."""

    thought: str = Field(description=THOUGHT["novelty"])
    decision: Literal["query", "novel", "not_novel"] = Field(
        description="'query' to search again; 'novel' or 'not_novel' to decide."
    )
    # Every field is required so that a grammar-constrained model always writes each key.
    # The query bound is a guard rail in every profile: a search query is a few keywords.
    query: str = Field(
        max_length=200, description="The next search query when decision is 'query', else ''."
    )
    justification: str = Field(description=JUSTIFICATION)
    closest_papers: list[str] = Field(description=CLOSEST)

    @model_validator(mode="after")
    def _query_when_searching(self) -> NoveltyReply:
        if self.decision == "query" and not self.query.strip():
            raise ValueError("decision 'query' needs a non-empty 'query'")
        return self


def _thought(profile: OutputProfile, description: str) -> Any:
    return (str, Field(max_length=profile.idea_thought_chars, description=description))


@functools.cache
def idea_reply(profile: OutputProfile) -> type[IdeaReply]:
    """The new-idea reply with ``profile``'s bounds on its thought and its idea."""
    fields: dict[str, Any] = {
        "thought": _thought(profile, THOUGHT["idea"]),
        "idea": (idea_form(profile), ...),
    }
    return create_model("IdeaReply", __base__=IdeaReply, __doc__=IdeaReply.__doc__, **fields)


@functools.cache
def idea_reflection(profile: OutputProfile) -> type[IdeaReflection]:
    """The reflection reply with ``profile``'s bounds on its thought and its idea."""
    fields: dict[str, Any] = {
        "thought": _thought(profile, THOUGHT["reflection"]),
        "idea": (idea_form(profile), ...),
    }
    return create_model(
        "IdeaReflection", __base__=IdeaReflection, __doc__=IdeaReflection.__doc__, **fields
    )


@functools.cache
def novelty_reply(profile: OutputProfile) -> type[NoveltyReply]:
    """The novelty reply with ``profile``'s bounds on its thought, justification and papers."""
    fields: dict[str, Any] = {
        "thought": _thought(profile, THOUGHT["novelty"]),
        "justification": (
            str,
            Field(max_length=profile.idea_thought_chars, description=JUSTIFICATION),
        ),
        "closest_papers": (
            list[str],
            Field(max_length=profile.novelty_closest_papers, description=CLOSEST),
        ),
    }
    return create_model(
        "NoveltyReply", __base__=NoveltyReply, __doc__=NoveltyReply.__doc__, **fields
    )


def as_record(reply: BaseModel, record: type[R]) -> R:
    """``reply`` (an instance of a profile-bounded schema) as the plain ``record`` class.

    What the stage keeps and checkpoints is then one class whatever profile asked for it.
    """
    return record.model_validate(reply.model_dump())


class PaperRef(BaseModel):
    """A paper as the idea stage records it: enough to find it again and cite it."""

    paper_id: str
    title: str
    year: int | None = None
    citation_key: str
    source: SourceName
    bibtex: str = Field(
        "", description="The literature layer's BibTeX entry ('' in files written before it)."
    )

    @classmethod
    def of(cls, paper: Paper) -> PaperRef:
        """The reference of a literature-layer Paper."""
        return cls(
            paper_id=paper.paper_id,
            title=paper.title,
            year=paper.year,
            citation_key=paper.citation_key,
            source=paper.source,
            bibtex=paper.bibtex,
        )


class NoveltyQuery(BaseModel):
    """One literature query of a novelty check and what it returned."""

    round: int = Field(description="0 for the opening title search, then the model's rounds.")
    query: str
    asked_by: Literal["title", "model"]
    papers: list[PaperRef] = Field(default_factory=list)
    outcomes: list[SourceOutcome] = Field(default_factory=list)


VerdictStatus = Literal["novel", "not_novel", "undecided", "skipped"]


class NoveltyVerdict(BaseModel):
    """The outcome of a novelty check; ``undecided`` is never turned into a guess."""

    status: VerdictStatus
    novel: bool | None = Field(None, description="None unless the model decided.")
    justification: str = ""
    reason: str | None = Field(None, description="Why the check is undecided or skipped.")
    closest: list[PaperRef] = Field(default_factory=list)
    unknown_ids: list[str] = Field(
        default_factory=list, description="Ids the model named that were never shown; dropped."
    )
    queries: list[NoveltyQuery] = Field(default_factory=list)
    thoughts: list[str] = Field(default_factory=list)
    rounds_used: int = 0
    sources_answered: list[SourceName] = Field(default_factory=list)


def relevant_papers(verdict: NoveltyVerdict, fallback: int) -> list[PaperRef]:
    """The papers a novelty check found relevant: the closest papers it named, else the top
    ``fallback`` results of its queries (each query's best first, then the second best…)."""
    if verdict.closest:
        return list(verdict.closest)
    ranked: dict[str, PaperRef] = {}
    depth = max((len(q.papers) for q in verdict.queries), default=0)
    for rank in range(depth):
        for query in verdict.queries:
            if rank < len(query.papers):
                ranked.setdefault(query.papers[rank].paper_id, query.papers[rank])
    return list(ranked.values())[:fallback]


class IdeaRecord(BaseModel):
    """One idea with its history: drafts, reflections and the novelty verdict."""

    index: int
    origin: Literal["generated", "seed", "given"] = Field(
        "generated",
        description="generated by the model; seed: the template's; given: the researcher's "
        "own (ideas.given), its first draft verbatim and unscored.",
    )
    status: Literal["kept", "duplicate"] = "kept"
    duplicate_of: str | None = Field(None, description="Name of the earlier idea it repeats.")
    idea: Idea
    drafts: list[Idea] = Field(default_factory=list, description="Every version, first to last.")
    thoughts: list[str] = Field(default_factory=list)
    reflections_used: int = 0
    stopped_early: bool = False
    reflection_error: str | None = None
    novelty: NoveltyVerdict | None = None

    @property
    def novel(self) -> bool | None:
        """The novelty verdict as a boolean; None when undecided, skipped or not checked."""
        return self.novelty.novel if self.novelty is not None else None

    @property
    def overall(self) -> float | None:
        """The mean of the three self-assessed scores; None for an unscored idea."""
        i = self.idea
        if i.Interestingness is None or i.Feasibility is None or i.Novelty is None:
            return None
        return round((i.Interestingness + i.Feasibility + i.Novelty) / 3, 2)


class IdeaFailure(BaseModel):
    """An idea the model could not produce in a valid form."""

    index: int
    stage: Literal["generate"]
    error: str


class IdeasFile(BaseModel):
    """Everything ``ideas.json`` holds."""

    template: str
    model: str
    feedback: str | None = None
    topic: str | None = Field(
        None, description="The researcher's direction the ideas were generated for (--topic)."
    )
    created_at: str
    wall_time_s: float
    ideas: list[IdeaRecord] = Field(
        default_factory=list, description="Kept ideas (seeds first when they were checked)."
    )
    duplicates: list[IdeaRecord] = Field(
        default_factory=list, description="Ideas dropped as repeats of an earlier or seed idea."
    )
    failures: list[IdeaFailure] = Field(default_factory=list)
    sources: list[SourceName] = Field(default_factory=list, description="Sources configured.")
    sources_answered: list[SourceName] = Field(
        default_factory=list, description="Sources that answered at least one query."
    )
    settings: dict[str, Any] = Field(default_factory=dict)
    usage: dict[str, Any] = Field(default_factory=dict)

    def every_idea(self) -> list[IdeaRecord]:
        """Kept ideas and duplicates, in the order they were produced."""
        return sorted([*self.ideas, *self.duplicates], key=lambda r: r.index)


def sort_value(record: IdeaRecord, key: SortKey) -> float:
    """The value ``--sort-by`` orders records by (an unscored idea sorts last)."""
    value = record.overall if key == "overall" else getattr(record.idea, key)
    return float("-inf") if value is None else float(value)


def save_ideas(ideas: IdeasFile, path: Path) -> Path:
    """Write ``ideas.json`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ideas.model_dump_json(indent=2), encoding="utf-8")
    return path


def load_ideas(path: Path) -> IdeasFile:
    """Read an ``ideas.json`` back."""
    return IdeasFile.model_validate_json(path.read_text(encoding="utf-8"))
