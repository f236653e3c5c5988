"""Citation rounds: the model proposes queries, the literature answers, the model picks papers
by id (an enum of the ids returned), and code adds their BibTeX and places the \\cite."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from core.literature.bibtex import BibEntry, unique_key, with_key
from core.literature.models import Literature, Paper
from gateway.errors import AutoscholarError
from gateway.profiles import OutputProfile
from gateway.prompts import render
from scientist.ideas.records import PaperRef
from scientist.writeup.checks import sentences
from scientist.writeup.deps import WriteupDeps
from scientist.writeup.models import (
    CitationQueries,
    CitationQuery,
    CitationRecord,
    SectionRecord,
    citation_queries,
)
from scientist.writeup.sections import SECTION_NAMES

PROMPTS = Path(__file__).parent / "prompts"
CITABLE: tuple[str, ...] = tuple(n for n in SECTION_NAMES if n != "abstract")
_WORD = re.compile(r"[a-z0-9]+")
NOVELTY_QUERY = "novelty check"
"""The ``query`` of a reference added because the idea's novelty check found it relevant."""
REVIEW_QUERY = "literature review"
"""The ``query`` of a reference added from the idea's literature review (its key is the one
literature_review.json shows)."""
RELATED_QUERIES = (NOVELTY_QUERY, REVIEW_QUERY)


class Found(BaseModel):
    """A query and the papers the literature returned for it."""

    query: CitationQuery
    papers: list[Paper] = Field(default_factory=list)


def _messages(user: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": render(PROMPTS, "citations_system.j2")},
        {"role": "user", "content": user},
    ]


def citation_profile(deps: WriteupDeps) -> OutputProfile:
    """The output profile of the citations model: picks, shown text and reply bounds."""
    return deps.settings.profile(deps.settings.llm.models.citations)


def draft_text(sections: dict[str, SectionRecord], chars: int | None) -> str:
    """The draft as the citation model sees it: each section cut to ``chars`` (None: whole)."""
    parts = []
    for name in SECTION_NAMES:
        record = sections.get(name)
        if record is not None and record.text.strip():
            parts.append(f"### {record.title} ({name})\n{record.text.strip()[:chars]}")
    return "\n\n".join(parts)


def bibliography_text(entries: dict[str, BibEntry]) -> str:
    """Known references as ``key: title`` lines."""
    return "\n".join(f"{k}: {e.field('title')}" for k, e in entries.items()) or "(empty)"


def propose_queries(
    deps: WriteupDeps,
    title: str,
    sections: dict[str, SectionRecord],
    entries: dict[str, BibEntry],
    round_number: int,
) -> CitationQueries:
    """Claims that need support and a search query for each."""
    limit = deps.settings.writing.max_citation_queries
    profile = citation_profile(deps)
    user = render(
        PROMPTS,
        "citation_queries.j2",
        title=title,
        paper=draft_text(sections, profile.citation_draft_chars),
        bibliography=bibliography_text(entries),
        round=round_number,
        total=deps.settings.writing.citation_rounds,
        max_queries=limit,
    )
    reply = deps.gateway.complete(
        _messages(user),
        role="citations",
        schema=citation_queries(profile),
        max_tokens=profile.citation_max_tokens,
    )
    # The plain record classes: what the round keeps is one class whatever profile asked.
    kept = CitationQueries.model_validate(reply.model_dump())
    return kept.model_copy(update={"queries": kept.queries[:limit]})


def search_all(deps: WriteupDeps, queries: list[CitationQuery]) -> tuple[list[Found], list[str]]:
    """Each query's papers from the literature layer; failures become warnings."""
    found, warnings = [], []
    for query in queries:
        try:
            result = deps.literature.search(query.query, deps.settings.literature.max_results)
        except AutoscholarError as exc:
            warnings.append(f"literature search {query.query!r} failed: {exc}")
            continue
        papers = [p for p in result.papers if p.bibtex.strip()]
        found.append(Found(query=query, papers=papers))
    return found, warnings


def selection_schema(ids: list[str], profile: OutputProfile) -> type[BaseModel]:
    """A pick schema whose paper_id is an enum of the ids the search returned, with at most
    ``profile.citation_picks`` picks."""
    # Literal over run-time values: the grammar then only lets the model name returned ids.
    paper_id: Any = Literal[tuple(ids)]
    section: Any = Literal[CITABLE]
    pick = create_model(
        "CitationPick",
        paper_id=(paper_id, Field(description="Id of a returned paper.")),
        section=(section, Field(description="Section that cites it.")),
        sentence=(
            str,
            Field(
                max_length=profile.citation_sentence_chars,
                description="The sentence it supports, quoted.",
            ),
        ),
    )
    picks: Any = list[pick]
    return create_model(
        "CitationSelection",
        # Required: no empty-object answers.
        picks=(picks, Field(max_length=profile.citation_picks)),
    )


def candidates_text(found: list[Found], abstract_chars: int | None) -> str:
    """Queries with their returned papers (id, title, year, authors, and the abstract cut to
    ``abstract_chars``; None: whole)."""
    blocks = []
    for item in found:
        lines = [f"Claim ({item.query.section}): {item.query.claim}", f"Query: {item.query.query}"]
        for paper in item.papers:
            authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
            abstract = (paper.abstract or "")[:abstract_chars]
            lines.append(
                f"- id {paper.paper_id}: {paper.title} ({paper.year or 'n.d.'}; "
                f"{authors}). {abstract}"
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def select_papers(deps: WriteupDeps, title: str, found: list[Found]) -> list[dict[str, Any]]:
    """The model's picks among the returned papers: dicts with paper_id, section, sentence."""
    ids = list(dict.fromkeys(p.paper_id for item in found for p in item.papers))
    if not ids:
        return []
    profile = citation_profile(deps)
    user = render(
        PROMPTS,
        "citation_select.j2",
        title=title,
        candidates=candidates_text(found, profile.citation_abstract_chars),
        max_picks=profile.citation_picks,
    )
    reply = deps.gateway.complete(
        _messages(user),
        role="citations",
        schema=selection_schema(ids, profile),
        max_tokens=profile.citation_max_tokens,
    )
    return [pick.model_dump() for pick in getattr(reply, "picks", [])]


def add_reference(
    paper: Paper,
    entries: dict[str, BibEntry],
    sources: list[CitationRecord],
    query: str,
    section: str,
    hint: str = "",
) -> str | None:
    """The key of ``paper`` in the bibliography, adding its BibTeX under a unique key."""
    for record in sources:
        if record.paper_id == paper.paper_id:
            return record.key
    key = unique_key(paper.citation_key, set(entries))
    entry = with_key(paper.bibtex, key)
    if entry is None:
        return None
    entries[key] = entry
    sources.append(
        CitationRecord(
            key=key,
            paper_id=paper.paper_id,
            title=paper.title,
            source=paper.source,
            query=query,
            section=section,
            hint=hint,
        )
    )
    return key


def related_paper(ref: PaperRef, literature: Literature) -> Paper | None:
    """The paper behind a novelty-check reference, with the literature layer's BibTeX: the
    entry recorded in ideas.json, else the literature layer's copy (None if it has none)."""
    if ref.bibtex.strip():
        return Paper(
            paper_id=ref.paper_id,
            title=ref.title,
            year=ref.year,
            bibtex=ref.bibtex,
            citation_key=ref.citation_key,
            source=ref.source,
        )
    try:
        return literature.paper(ref.paper_id)
    except AutoscholarError:
        return None


def add_related(
    refs: Sequence[PaperRef],
    literature: Literature,
    entries: dict[str, BibEntry],
    sources: list[CitationRecord],
    query: str = NOVELTY_QUERY,
) -> list[str]:
    """Put the papers the novelty check found relevant (or, with ``query=REVIEW_QUERY``, the
    literature review's papers) in the bibliography, each to be cited in Related Work (by
    code, see ``restore_citations``); warnings for any left out."""
    warnings = []
    for ref in refs:
        paper = related_paper(ref, literature)
        key = None
        if paper is not None and paper.bibtex.strip():
            key = add_reference(paper, entries, sources, query, "related_work", paper.title)
        if key is None:
            warnings.append(f"{query} paper {ref.paper_id} has no BibTeX entry; not cited")
    return warnings


def _overlap(hint: str, sentence: str) -> float:
    words = set(_WORD.findall(hint.lower()))
    if not words:
        return 0.0
    return len(words & set(_WORD.findall(sentence.lower()))) / len(words)


def is_cited(text: str, key: str) -> bool:
    """Whether ``text`` already cites ``key``."""
    return bool(re.search(r"\\cite[a-z]*\{[^}]*\b" + re.escape(key) + r"\b", text))


def fits_a_sentence(text: str, hint: str) -> bool:
    """Whether some sentence of ``text`` shares at least half the words of ``hint``."""
    return any(_overlap(hint, s) >= 0.5 for s in sentences(text))


def place_cite(text: str, key: str, hint: str) -> str:
    """Add ``\\cite{key}`` at the end of the sentence best matching ``hint`` (else the first)."""
    if is_cited(text, key):
        return text
    candidates = [s.strip() for s in sentences(text) if s.strip()]
    if not candidates:
        return (text + f" \\cite{{{key}}}").strip()
    best = max(candidates, key=lambda s: _overlap(hint, s))
    target = best if _overlap(hint, best) >= 0.5 else candidates[0]
    start = text.find(target)
    end = start + len(target)
    if end > start and text[end - 1] in ".!?":
        end -= 1
    return text[:end] + f"~\\cite{{{key}}}" + text[end:]


def restore_citations(text: str, section: str, citations: Sequence[CitationRecord]) -> str:
    """Put back the citations placed in ``section`` that a model rewrite dropped, and cite the
    novelty check's and the literature review's papers there (``cite_related``)."""
    related = [c for c in citations if c.section == section and c.query in RELATED_QUERIES]
    for record in citations:
        if record.section == section and record.source != "template" and record not in related:
            text = place_cite(text, record.key, record.hint)
    return cite_related(text, related)


def cite_related(text: str, records: Sequence[CitationRecord]) -> str:
    """Cite each novelty-check paper not cited yet: after the sentence its title fits, else in
    one closing sentence, so Related Work cites them whatever the model wrote."""
    rest: list[str] = []
    for record in records:
        if is_cited(text, record.key):
            continue
        if fits_a_sentence(text, record.hint):
            text = place_cite(text, record.key, record.hint)
        else:
            rest.append(record.key)
    if not rest:
        return text
    closing = f"Closely related prior work includes~\\cite{{{','.join(rest)}}}."
    return f"{text.rstrip()}\n\n{closing}".strip()
