"""Records of the write-up stage (``paper/writeup.json``) and the model's structured replies."""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from gateway.profiles import OutputProfile

SectionName = Literal[
    "abstract",
    "introduction",
    "related_work",
    "background",
    "method",
    "experimental_setup",
    "results",
    "conclusion",
]
IssueKind = Literal[
    "unknown_citation",
    "invented_number",
    "missing_figure_reference",
    "latex_syntax",
    "empty",
]
CLAIM = "The claim, quoted or paraphrased."


class Issue(BaseModel):
    """One problem the deterministic checklist found in a section."""

    model_config = ConfigDict(extra="forbid")

    kind: IssueKind
    detail: str


class SectionRecord(BaseModel):
    """One section: its final LaTeX body and what it took to get there."""

    model_config = ConfigDict(extra="forbid")

    name: SectionName
    title: str
    text: str = Field("", description="The section body as written into paper.tex.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    rounds: int = Field(
        0, description="Model passes after the first draft (fix, compile, shorten)."
    )
    citations: list[str] = Field(default_factory=list, description="BibTeX keys cited in it.")
    issues_found: list[Issue] = Field(
        default_factory=list, description="Checklist before refinement."
    )
    warnings: list[str] = Field(
        default_factory=list, description="What is left or was done by code."
    )
    fallback: bool = Field(False, description="Rendered as escaped plain text to make it compile.")


class CompileAttempt(BaseModel):
    """One compile of paper.tex."""

    model_config = ConfigDict(extra="forbid")

    index: int
    ok: bool
    seconds: float
    errors: list[str] = Field(default_factory=list)
    lint: list[str] = Field(default_factory=list, description="chktex warnings (when it failed).")
    sections_blamed: list[str] = Field(default_factory=list)
    action: str = Field("", description="What followed: done, fix, fallback, shorten, give up.")


class CitationRecord(BaseModel):
    """A reference in references.bib and where it came from."""

    model_config = ConfigDict(extra="forbid")

    key: str
    paper_id: str
    title: str
    source: str = Field(description="The literature source, or 'template' for the template's .bib.")
    query: str = ""
    section: str = ""
    hint: str = Field("", description="The sentence (and claim) the citation supports.")


class WriteupRecord(BaseModel):
    """Everything the write-up stage did for one idea (``paper/writeup.json``)."""

    model_config = ConfigDict(extra="forbid")

    idea_name: str
    title: str
    status: Literal["ok", "failed"]
    engine: Literal["latex", "weasyprint"]
    pdf: str | None = Field(None, description="paper.pdf relative to the idea folder.")
    pages: int | None = None
    content_pages: int | None = Field(None, description="Pages before the references.")
    page_limit: int
    sections: list[SectionRecord]
    citations: list[CitationRecord] = Field(default_factory=list)
    citation_rounds: int = 0
    compile_attempts: list[CompileAttempt] = Field(default_factory=list)
    figures: list[str] = Field(default_factory=list, description="Figure files in paper/.")
    tables: int = 0
    warnings: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list, description="What stopped a failed write-up.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    feedback: str | None = None
    review: str | None = None


class CitationQuery(BaseModel):
    """A claim in the draft that needs support, and what to search for."""

    model_config = ConfigDict(extra="forbid")

    section: SectionName
    claim: str = Field(description=CLAIM)
    # A guard rail in every profile: the prompt asks for a few keywords, and a longer query
    # only makes a worse literature search.
    query: str = Field(min_length=2, max_length=120, description="A literature search query.")


class CitationQueries(BaseModel):
    """The citation model's queries for one round; ``done`` when nothing more needs support."""

    model_config = ConfigDict(extra="forbid")

    # Both required: a grammar-constrained model may otherwise answer with an empty object.
    queries: list[CitationQuery]
    done: bool


@functools.cache
def citation_queries(profile: OutputProfile) -> type[CitationQueries]:
    """The queries reply with ``profile``'s bounds: what a citation model's reply must meet.

    Code keeps ``writing.max_citation_queries`` of them; the schema only stops runaway lists.
    """
    claim: Any = (str, Field(max_length=profile.citation_sentence_chars, description=CLAIM))
    query: Any = create_model(
        "CitationQuery", __base__=CitationQuery, __doc__=CitationQuery.__doc__, claim=claim
    )
    queries: Any = (list[query], Field(max_length=profile.citation_queries_per_reply))
    return create_model(
        "CitationQueries",
        __base__=CitationQueries,
        __doc__=CitationQueries.__doc__,
        queries=queries,
    )
