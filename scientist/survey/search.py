"""Searching the cascade for a review: every query's papers, deduplicated, ranked and keyed.

Papers are the same when their normalised titles match or they share an id (the source's
id, a DOI, an arXiv id…). Ranking is reciprocal rank fusion over the queries: a paper that
several queries return near the top ranks first. Each kept paper gets a citation key that
no entry of the template's own bibliography uses, so the key the review shows is the key
the write-up's references.bib holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.literature.bibtex import ascii_word, parse_bib, unique_key, with_key
from core.literature.models import Literature, Paper
from gateway.errors import AutoscholarError
from scientist.survey.models import OTHER_THEME, ReviewedPaper, SearchRecord

# The usual constant of reciprocal rank fusion (Cormack et al., 2009): it damps the weight
# of the very first ranks so that agreement between queries counts more than one top hit.
RRF_K = 60
_FILECONTENTS = re.compile(
    r"\\begin\{filecontents\*?\}(?:\[[^\]]*\])?\{([^}]*)\}(.*?)\\end\{filecontents\*?\}",
    re.DOTALL,
)


@dataclass
class Pooled:
    """A distinct paper found by one or more queries, with its fused score."""

    paper: Paper
    queries: list[str] = field(default_factory=list)
    score: float = 0.0


def title_key(title: str) -> str:
    """A title as compared for duplicates: ASCII letters and digits, lower case."""
    return ascii_word(title)


def identities(paper: Paper) -> set[str]:
    """Every name a paper goes by: its normalised title and each of its ids."""
    names = {f"id:{paper.paper_id.lower()}"}
    names |= {f"{kind}:{value.strip().lower()}" for kind, value in paper.ids.items() if value}
    title = title_key(paper.title)
    if title:
        names.add(f"title:{title}")
    return names


def search_queries(
    literature: Literature, queries: Iterable[str], limit: int
) -> tuple[list[SearchRecord], list[list[Paper]]]:
    """Each query's record and papers; a failed search is recorded, never raised."""
    records: list[SearchRecord] = []
    results: list[list[Paper]] = []
    for query in queries:
        try:
            result = literature.search(query, limit)
        except AutoscholarError as exc:
            records.append(SearchRecord(query=query, error=str(exc)[:300]))
            results.append([])
            continue
        records.append(
            SearchRecord(
                query=query,
                paper_ids=[p.paper_id for p in result.papers],
                sources_answered=result.answered_by,
            )
        )
        results.append(list(result.papers))
    return records, results


def pool(queries: list[str], results: list[list[Paper]]) -> list[Pooled]:
    """The distinct papers over all results (the first record of each kept), best first."""
    pooled: list[Pooled] = []
    by_name: dict[str, Pooled] = {}
    for query, papers in zip(queries, results, strict=True):
        for rank, paper in enumerate(papers, start=1):
            names = identities(paper)
            entry = next((by_name[n] for n in names if n in by_name), None)
            if entry is None:
                entry = Pooled(paper=paper)
                pooled.append(entry)
            by_name.update(dict.fromkeys(names, entry))
            if query not in entry.queries:
                entry.queries.append(query)
                entry.score += 1.0 / (RRF_K + rank)
    order = {id(entry): index for index, entry in enumerate(pooled)}
    return sorted(
        pooled,
        key=lambda e: (-e.score, -(e.paper.citation_count or 0), order[id(e)]),
    )


def template_keys(template_dir: Path) -> set[str]:
    """Keys of the template's own bibliography (``filecontents`` blocks of
    latex/template.tex and latex/*.bib): the write-up puts these in references.bib first."""
    latex = template_dir / "latex"
    keys: set[str] = set()
    tex = latex / "template.tex"
    if tex.is_file():
        for match in _FILECONTENTS.finditer(tex.read_text(encoding="utf-8", errors="replace")):
            keys |= {e.key for e in parse_bib(match.group(2), source=str(tex))}
    for bib in sorted(latex.glob("*.bib")) if latex.is_dir() else []:
        keys |= {e.key for e in parse_bib(bib.read_text(encoding="utf-8", errors="replace"))}
    return keys


def reviewed(entry: Pooled, taken: set[str]) -> ReviewedPaper | None:
    """The paper under a key not in ``taken`` (which it joins), its BibTeX re-keyed; None
    when the cascade gave it no usable BibTeX (it could not be cited)."""
    paper = entry.paper
    key = unique_key(paper.citation_key, taken)
    bib = with_key(paper.bibtex, key) if paper.bibtex.strip() else None
    if bib is None:
        return None
    taken.add(key)
    return ReviewedPaper(
        key=key,
        paper_id=paper.paper_id,
        title=paper.title,
        authors=list(paper.authors),
        year=paper.year,
        venue=paper.venue,
        abstract=paper.abstract,
        bibtex=bib.text,
        source=paper.source,
        queries=list(entry.queries),
        score=round(entry.score, 6),
        theme=OTHER_THEME,
    )


def keep(pooled: list[Pooled], count: int, taken: set[str]) -> tuple[list[ReviewedPaper], int]:
    """The ``count`` best papers that can be cited, and how many were passed over for want
    of BibTeX."""
    kept: list[ReviewedPaper] = []
    skipped = 0
    for entry in pooled:
        if len(kept) == count:
            break
        paper = reviewed(entry, taken)
        if paper is None:
            skipped += 1
        else:
            kept.append(paper)
    return kept, skipped
