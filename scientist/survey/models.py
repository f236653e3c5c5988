"""Records of the literature review: the model's replies, and ``literature_review.json``.

The reply classes are what the stage keeps; the bounds a model's reply must meet come from
its output profile (``survey_queries(profile, n)``, ``paper_summary(profile)``,
``synthesis_schema(keys, profile)`` are the schemas sent). Every paper in a
``LiteratureReview`` is one the literature cascade returned, with the cascade's BibTeX under
the key the write-up's references.bib uses.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)

from core.literature.models import SourceName
from gateway.profiles import OutputProfile
from scientist.ideas.records import PaperRef

REVIEW_JSON = "literature_review.json"
REVIEW_MD = "literature_review.md"
OTHER_THEME = "Other related work"
ADDED_THEME = "Added by the researcher"


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SurveyQueries(_Reply):
    """Search queries for the literature on an idea."""

    queries: list[str] = Field(description="Short keyword queries, each a different angle.")


class PaperSummary(_Reply):
    """What one paper does, and how it relates to the idea."""

    summary: str = Field(description="What the paper does and finds, in one or two sentences.")
    relation: str = Field(
        description="How it relates to the idea: what the idea builds on, changes or tests."
    )


class ThemeReply(_Reply):
    """A theme of the related work and the papers under it (by citation key)."""

    name: str = Field(description="A short name for the line of work.")
    papers: list[str] = Field(description="Citation keys of the papers in this theme.")


class SurveySynthesis(_Reply):
    """The papers grouped by theme, and the gaps the idea addresses."""

    themes: list[ThemeReply] = Field(description="Lines of prior work, each with its papers.")
    gaps: list[str] = Field(description="Gaps in this literature that the idea addresses.")


def _text(chars: int, description: str) -> Any:
    return (str, Field(max_length=chars, description=description))


@functools.cache
def survey_queries(profile: OutputProfile, count: int) -> type[SurveyQueries]:
    """The queries reply: at most ``count`` queries of bounded length."""
    query = Annotated[str, StringConstraints(max_length=min(profile.survey_text_chars, 200))]
    fields: dict[str, Any] = {
        "queries": (
            list[query],
            Field(
                min_length=1,
                max_length=count,
                description=SurveyQueries.model_fields["queries"].description,
            ),
        )
    }
    return create_model(
        "SurveyQueries", __base__=SurveyQueries, __doc__=SurveyQueries.__doc__, **fields
    )


@functools.cache
def paper_summary(profile: OutputProfile) -> type[PaperSummary]:
    """The per-paper reply with ``profile``'s bound on each text."""
    described = PaperSummary.model_fields
    fields: dict[str, Any] = {
        name: _text(profile.survey_text_chars, described[name].description or "")
        for name in ("summary", "relation")
    }
    return create_model(
        "PaperSummary", __base__=PaperSummary, __doc__=PaperSummary.__doc__, **fields
    )


def synthesis_schema(keys: list[str], profile: OutputProfile) -> type[BaseModel]:
    """The synthesis reply: themes whose papers are an enum of the review's keys (the model
    can only name papers the cascade returned), and at most ``survey_items`` themes and gaps."""
    key: Any = Literal[tuple(keys)]
    text = profile.survey_text_chars
    theme = create_model(
        "ThemeReply",
        name=_text(min(text, 200), ThemeReply.model_fields["name"].description or ""),
        papers=(list[key], Field(description=ThemeReply.model_fields["papers"].description)),
    )
    gap: Any = Annotated[str, StringConstraints(max_length=text)]
    themes: Any = list[theme]
    return create_model(
        "SurveySynthesis",
        themes=(themes, Field(max_length=profile.survey_items)),
        gaps=(list[gap], Field(max_length=profile.survey_items)),
    )


class SearchRecord(BaseModel):
    """One query of the review and what the cascade returned for it."""

    model_config = ConfigDict(extra="forbid")

    query: str
    paper_ids: list[str] = Field(default_factory=list, description="Returned, best first.")
    sources_answered: list[SourceName] = Field(default_factory=list)
    error: str | None = Field(None, description="Why the search failed, if it did.")


class ReviewedPaper(BaseModel):
    """A paper of the review: the cascade's record of it, and what the review says of it."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="Its citation key in the paper's references.bib.")
    paper_id: str = Field(description="The literature layer's id of the paper.")
    title: str
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    abstract: str | None = None
    bibtex: str = Field(description="The literature layer's BibTeX entry, under ``key``.")
    source: SourceName
    queries: list[str] = Field(default_factory=list, description="The queries that found it.")
    score: float = Field(0.0, description="Rank fusion over the queries (higher: more relevant).")
    theme: str = OTHER_THEME
    summary: str = ""
    relation: str = Field("", description="How it relates to the idea.")


class LiteratureReview(BaseModel):
    """``literature_review.json``: the papers kept, grouped by theme, and the gaps."""

    model_config = ConfigDict(extra="forbid")

    idea: str = Field(description="The idea's Name.")
    title: str = Field(description="The idea's Title.")
    searches: list[SearchRecord] = Field(default_factory=list)
    found: int = Field(0, description="Distinct papers the searches returned.")
    papers: list[ReviewedPaper] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list, description="Gaps the idea addresses.")
    feedback: str | None = Field(None, description="The researcher's feedback it was redone with.")
    edited: bool = Field(False, description="Whether the researcher edited it (co-pilot).")
    warnings: list[str] = Field(default_factory=list)

    def themes(self) -> list[tuple[str, list[ReviewedPaper]]]:
        """The papers grouped by theme, themes in order of their first paper."""
        groups: dict[str, list[ReviewedPaper]] = {}
        for paper in self.papers:
            groups.setdefault(paper.theme, []).append(paper)
        return list(groups.items())

    def brief(self, chars: int | None = None) -> str:
        """The review as a prompt sees it: themes, each paper's key, title and relation, and
        the gaps; each text cut to ``chars`` (None: whole)."""
        lines = []
        for theme, papers in self.themes():
            lines.append(f"Theme: {theme}")
            for paper in papers:
                year = f", {paper.year}" if paper.year else ""
                lines.append(f"- [{paper.key}] {paper.title}{year}: {_cut(paper.relation, chars)}")
        if self.gaps:
            lines.append("Gaps the idea addresses:")
            lines += [f"- {_cut(gap, chars)}" for gap in self.gaps]
        return "\n".join(lines) or "(no papers found)"


def review_refs(review: LiteratureReview | None) -> list[PaperRef]:
    """The review's papers as the write-up takes them: each under the review's key, with
    the cascade's BibTeX (none without a review)."""
    if review is None:
        return []
    return [
        PaperRef(
            paper_id=p.paper_id,
            title=p.title,
            year=p.year,
            citation_key=p.key,
            source=p.source,
            bibtex=p.bibtex,
        )
        for p in review.papers
    ]


def _cut(text: str, chars: int | None) -> str:
    flat = " ".join(text.split())
    return flat if chars is None or len(flat) <= chars else flat[: chars - 1] + "…"


def review_path(idea_dir: Path) -> Path:
    """``literature_review.json`` in the idea's folder."""
    return idea_dir / REVIEW_JSON


def read_review(idea_dir: Path) -> LiteratureReview | None:
    """The idea's review, or None when it has none (the stage was off) or it is unreadable."""
    path = review_path(idea_dir)
    if not path.is_file():
        return None
    try:
        return LiteratureReview.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError:
        return None
