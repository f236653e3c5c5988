"""The write-up graph's state: typed, with reducers where parallel branches write."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from scientist.experiments.models import ExperimentRecord
from scientist.ideas.models import Idea
from scientist.ideas.records import PaperRef
from scientist.plan.models import ExperimentPlan
from scientist.writeup.models import CitationRecord, CompileAttempt, SectionRecord, WriteupRecord
from scientist.writeup.results import FigureInfo, TableInfo


def merge_sections(
    left: dict[str, SectionRecord], right: dict[str, SectionRecord]
) -> dict[str, SectionRecord]:
    """Sections written or revised in parallel branches, merged by name."""
    return {**left, **right}


class WriteupInput(TypedDict, total=False):
    """What the write-up starts from."""

    idea: Idea
    idea_dir: str
    record: ExperimentRecord
    feedback: str | None
    review: str | None
    related: list[PaperRef]
    review_papers: list[PaperRef]
    plan: ExperimentPlan | None


class WriteupState(WriteupInput, total=False):
    """Everything the graph accumulates."""

    paper_dir: str
    template_path: str
    figures: list[FigureInfo]
    tables: list[TableInfo]
    previous: dict[str, str]
    sections: Annotated[dict[str, SectionRecord], merge_sections]
    bib: dict[str, str]
    citations: list[CitationRecord]
    citation_round: int
    attempts: list[CompileAttempt]
    blamed: list[str]
    fix_round: int
    fallback_stage: int
    shorten_round: int
    pages: int
    content_pages: int
    warnings: Annotated[list[str], operator.add]
    errors: list[str]
    started: float
    result: WriteupRecord


class SectionTask(WriteupState, total=False):
    """What one section branch receives through ``Send``: the state and its section's name."""

    task: str
