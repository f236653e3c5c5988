"""What the reviewer's checks find: bibliography entries and their verdicts, findings with
their evidence and page, and the closest prior work. Every check reads the paper's own
page texts (data, never instructions) and the literature cascade; none calls an LLM, and
none sets a score."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ReferenceStatus = Literal["verified", "mismatch", "not_found", "unchecked"]
CheckName = Literal["references", "citations", "numbers", "cross_refs"]
FindingKind = Literal[
    "reference_not_found",  # no source that answered knows the entry: possibly fabricated
    "reference_mismatch",  # found, but the year, authors or venue differ
    "dangling_citation",  # an in-text citation that points at no bibliography entry
    "unsupported_number",  # a numeric claim no table value (or simple combination) supports
    "missing_target",  # "Figure 7" / "Table 3" / "Section 9" / "Eq. (4)" that does not exist
    "unresolved_reference",  # LaTeX's "??": a \ref or \cite that did not resolve
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BibEntry(_Record):
    """One entry of the paper's bibliography, as parsed from its text."""

    index: int = Field(description="0-based position in the bibliography.")
    label: str | None = Field(
        None, description="The entry's own label when numbered ('12' for '[12]'), else None."
    )
    raw: str = Field(description="The entry's text as extracted, one line.")
    title: str | None = None
    authors: list[str] = Field(default_factory=list, description="Family names, in order.")
    year: int | None = None
    venue: str | None = None
    doi: str | None = None
    arxiv: str | None = None
    page: int = Field(description="1-based page the entry starts on.")


class MatchedPaper(_Record):
    """The paper a source returned for an entry."""

    paper_id: str
    title: str
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    url: str | None = None
    source: str


class ReferenceCheck(_Record):
    """One entry's verdict. ``unchecked`` means no source could answer (down, out of time,
    over ``checks.max_references``), said so and never guessed."""

    entry: BibEntry
    status: ReferenceStatus
    differences: list[str] = Field(
        default_factory=list,
        description="For mismatch: what differs, e.g. 'year: 2019 in the paper, 2021 found'.",
    )
    match: MatchedPaper | None = None
    answered_by: list[str] = Field(default_factory=list, description="Sources that answered.")
    reason: str | None = Field(None, description="Why unchecked, or how it was matched.")


class Finding(_Record):
    """One problem a check found, with the text that shows it and where."""

    check: CheckName
    kind: FindingKind
    page: int | None = Field(None, description="1-based page; None when not known.")
    message: str = Field(description="One sentence a reader understands without the evidence.")
    evidence: str = Field(description="The paper's own words (or the lookup) that show it.")


class PriorWork(_Record):
    """A paper the cascade returned as close to this one (the paper itself excluded)."""

    title: str
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    url: str | None = None
    source: str
    query: str = Field(description="The query that found it.")


class ChecksReport(_Record):
    """Everything the checks found for one paper."""

    source: str = Field(description="The PDF's path or an id.")
    title: str = ""
    pages: int = 0
    references: list[ReferenceCheck] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    prior_work: list[PriorWork] = Field(default_factory=list)
    prior_work_status: Literal["done", "unchecked", "skipped"] = "skipped"
    notes: list[str] = Field(
        default_factory=list, description="What was not checked and why (said, never guessed)."
    )
    seconds: float = 0.0

    def reference_counts(self) -> dict[str, int]:
        """How many entries ended with each status."""
        counts = {"verified": 0, "mismatch": 0, "not_found": 0, "unchecked": 0}
        for check in self.references:
            counts[check.status] += 1
        return counts
