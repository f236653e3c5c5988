"""Each bibliography entry looked up in the literature cascade, and its verdict.

An entry is searched by its title (its raw text when it has none) and matched to a result by
DOI or arXiv id, else by title similarity. A match whose year, first author or venue differs
is a ``mismatch``; no close result from a source that answered is ``not_found`` (possibly
fabricated). When no source answers, the entry is ``unchecked``, never ``not_found``: a
verdict of absence needs someone to have been asked. Lookups run ``checks.lookup_workers``
at once, within ``checks.time_budget_s`` for the whole bibliography.

Thresholds, measured on the 51 entries of the six sample papers (`../shared/data/papers`):

- ``TITLE_MATCH = 0.85`` (difflib ratio of normalised titles). Every entry's parsed title
  normalises to the published one (ratio 1.0, since case, hyphens and accents are folded),
  while the closest pair of distinct titles among them scores 0.55 and the closest of the
  350 ICLR 2022 titles in the calibration set to any of them 0.64 (see the report of #20).
- ``YEAR_TOLERANCE = 1``: a preprint and its proceedings are a year apart as a rule (the
  samples cite Kingma & Welling as ICLR 2014; Semantic Scholar dates it 2013); a difference
  of two years or more is reported.
- Venues are compared only when both name one of a few well-known venues, each under all its
  spellings ("NeurIPS", "Advances in Neural Information Processing Systems"); preprints and
  anything else are never called different.
"""

from __future__ import annotations

import difflib
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from core.literature.models import Literature, Paper, SearchResult
from core.settings import ChecksSettings
from reviewer.checks.bib_fields import ascii_fold, name_key, title_key
from reviewer.checks.models import BibEntry, Finding, MatchedPaper, ReferenceCheck

TITLE_MATCH = 0.85
YEAR_TOLERANCE = 1
SEARCH_LIMIT = 5
MAX_QUERY_CHARS = 300
_VENUES: dict[str, tuple[str, ...]] = {
    "NeurIPS": ("neurips", "nips", "neural information processing systems"),
    "ICML": ("icml", "international conference on machine learning"),
    "ICLR": ("iclr", "international conference on learning representations"),
    "CVPR": ("cvpr", "computer vision and pattern recognition"),
    "ICCV": ("iccv", "international conference on computer vision"),
    "ECCV": ("eccv", "european conference on computer vision"),
    "ACL": ("acl", "annual meeting of the association for computational linguistics"),
    "EMNLP": ("emnlp", "empirical methods in natural language processing"),
    "NAACL": ("naacl", "north american chapter of the association for computational"),
    "AAAI": ("aaai",),
    "IJCAI": ("ijcai",),
    "AISTATS": ("aistats", "artificial intelligence and statistics"),
    "JMLR": ("jmlr", "journal of machine learning research", "j mach learn res"),
    "TMLR": ("tmlr", "transactions on machine learning research"),
    "KDD": ("kdd", "knowledge discovery and data mining"),
    "UAI": ("uai", "uncertainty in artificial intelligence"),
}


def verify_references(
    entries: list[BibEntry],
    literature: Literature | None,
    settings: ChecksSettings,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> list[ReferenceCheck]:
    """A verdict for every entry, in the bibliography's order."""
    verdicts: dict[int, ReferenceCheck] = {}
    todo: dict[int, BibEntry] = {}
    for position, entry in enumerate(entries):
        reason = _not_looked_up(position, entry, literature, settings)
        if reason:
            verdicts[position] = _unchecked(entry, reason)
        else:
            todo[position] = entry
    if todo and literature is not None:
        looked_up = _look_up_all(list(todo.values()), literature, settings, clock)
        verdicts.update(zip(todo, looked_up, strict=True))
    return [verdicts[i] for i in range(len(entries))]


def _not_looked_up(
    position: int, entry: BibEntry, literature: Literature | None, settings: ChecksSettings
) -> str | None:
    """Why this entry is not looked up at all, or None."""
    if literature is None:
        return "no literature source is configured, so the entry was not looked up"
    if not settings.verify_references:
        return "reference lookup is off (checks.verify_references = false)"
    if position >= settings.max_references:
        return f"beyond checks.max_references ({settings.max_references} entries looked up)"
    if not entry.title and not entry.doi and not entry.arxiv:
        return "could not parse a title (and no DOI or arXiv id) from the entry"
    return None


def _look_up_all(
    entries: list[BibEntry],
    literature: Literature,
    settings: ChecksSettings,
    clock: Callable[[], float],
) -> list[ReferenceCheck]:
    """Every entry looked up, ``lookup_workers`` at once; what has no answer when the time
    budget is spent is unchecked (lookups still running are abandoned, not waited for)."""
    budget = settings.time_budget_s
    deadline = clock() + budget
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=settings.lookup_workers, thread_name_prefix="refs")
    futures: list[Future[ReferenceCheck]] = [
        pool.submit(_look_up_in_time, e, literature, deadline, clock, stop) for e in entries
    ]
    try:
        wait(futures, timeout=budget)
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
    late = f"no answer within checks.time_budget_s ({budget:g} s)"
    return [
        f.result() if f.done() and not f.cancelled() else _unchecked(e, late)
        for e, f in zip(entries, futures, strict=True)
    ]


def _look_up_in_time(
    entry: BibEntry,
    literature: Literature,
    deadline: float,
    clock: Callable[[], float],
    stop: threading.Event,
) -> ReferenceCheck:
    if stop.is_set() or clock() >= deadline:
        return _unchecked(entry, "the time budget (checks.time_budget_s) was spent before it")
    try:
        result = literature.search(query_for(entry), SEARCH_LIMIT)
    except Exception as exc:  # the Literature contract says never; one entry must not end all
        return _unchecked(entry, f"the lookup failed: {type(exc).__name__}: {exc}")
    return judge(entry, result)


def query_for(entry: BibEntry) -> str:
    """What an entry is searched by: its title, else its raw text (shortened)."""
    return entry.title or entry.raw[:MAX_QUERY_CHARS]


def judge(entry: BibEntry, result: SearchResult) -> ReferenceCheck:
    """The verdict on one entry from one search's result."""
    answered: list[str] = list(dict.fromkeys(result.answered_by))
    if not answered:
        errors = "; ".join(o.error or f"{o.source} failed" for o in result.outcomes)
        return _unchecked(entry, f"no source answered ({errors or 'no source was asked'})")
    best = _best(entry, result.papers)
    if best is None or best[0] < TITLE_MATCH:
        return _not_found(entry, answered, best[1] if best else None)
    score, paper = best
    found = differences(entry, paper)
    how = "same DOI or arXiv id" if score > 1.0 else f"title similarity {min(score, 1.0):.2f}"
    return ReferenceCheck(
        entry=entry,
        status="mismatch" if found else "verified",
        differences=found,
        match=matched_paper(paper),
        answered_by=answered,
        reason=f"{how} with {paper.source}'s {paper.title!r}",
    )


def _best(entry: BibEntry, papers: list[Paper]) -> tuple[float, Paper] | None:
    """The result that matches best: among those that match at all, the one with the fewest
    differences (a source may hold both the preprint and the proceedings), then the most
    similar; when none matches, the most similar. None when there are no results."""
    ranked = []
    for position, paper in enumerate(papers):
        score = _score(entry, paper)
        matches = score >= TITLE_MATCH
        fewer = -len(differences(entry, paper)) if matches else 0
        ranked.append(((matches, fewer, score, -position), score, paper))
    if not ranked:
        return None
    _, score, paper = max(ranked, key=lambda r: r[0])
    return score, paper


def _not_found(entry: BibEntry, answered: list[str], closest: Paper | None) -> ReferenceCheck:
    if not entry.title:  # nothing to compare a result with: say so rather than guess
        return _unchecked(
            entry, "could not parse a title, and no result carried the entry's DOI or arXiv id"
        )
    best = (
        f"closest: {closest.title!r}, similarity {title_similarity(entry.title, closest.title):.2f}"
        if closest
        else "no results"
    )
    return ReferenceCheck(
        entry=entry,
        status="not_found",
        answered_by=answered,
        reason=f"{', '.join(answered)} answered, but no result matches the title ({best})",
    )


def _unchecked(entry: BibEntry, reason: str) -> ReferenceCheck:
    return ReferenceCheck(entry=entry, status="unchecked", reason=reason)


def _score(entry: BibEntry, paper: Paper) -> float:
    """2.0 for the same DOI or arXiv id, else the title similarity (0..1)."""
    if _same_id(entry, paper):
        return 2.0
    return title_similarity(entry.title, paper.title) if entry.title else 0.0


def _same_id(entry: BibEntry, paper: Paper) -> bool:
    doi = (paper.ids.get("doi") or "").lower()
    arxiv = paper.ids.get("arxiv") or ""
    if doi.startswith("10.48550/arxiv."):  # arXiv's own DOI names the arXiv id
        arxiv = arxiv or doi.removeprefix("10.48550/arxiv.")
    if entry.doi and doi and entry.doi.lower() == doi:
        return True
    return bool(entry.arxiv and arxiv and _bare_arxiv(entry.arxiv) == _bare_arxiv(arxiv))


def _bare_arxiv(arxiv_id: str) -> str:
    return re.sub(r"v\d+$", "", arxiv_id.lower())


def title_similarity(left: str, right: str) -> float:
    """difflib's ratio of the normalised titles (case, accents, hyphens, punctuation)."""
    a, b = title_key(left), title_key(right)
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() if a and b else 0.0


def differences(entry: BibEntry, paper: Paper) -> list[str]:
    """What the paper says and the source does not: year (beyond one year), first author,
    venue (well-known venues only)."""
    found = []
    if entry.year and paper.year and abs(entry.year - paper.year) > YEAR_TOLERANCE:
        found.append(f"year: {entry.year} in the paper, {paper.year} found")
    if entry.authors and paper.authors and not _same_person(entry.authors[0], paper.authors[0]):
        found.append(f"first author: {entry.authors[0]} in the paper, {paper.authors[0]} found")
    ours, theirs = known_venue(entry.venue), known_venue(paper.venue)
    if ours and theirs and ours != theirs:
        found.append(f"venue: {entry.venue} in the paper, {paper.venue} found")
    return found


def _same_person(family: str, full_name: str) -> bool:
    """Whether ``family`` is the family name in ``full_name`` (any of its words, or its
    last words run together: "van der Maaten", "Sohl-Dickstein")."""
    wanted = name_key(family)
    words = [name_key(w) for w in re.split(r"[\s,]+", full_name) if name_key(w)]
    tails = {"".join(words[i:]) for i in range(len(words))}
    return bool(wanted) and (wanted in words or wanted in tails)


def known_venue(venue: str | None) -> str | None:
    """The well-known venue ``venue`` names, or None (unknown, a preprint, or several)."""
    if not venue:
        return None
    text = " " + " ".join(re.findall(r"[a-z]+", ascii_fold(venue).lower())) + " "
    if "arxiv" in text or "preprint" in text or "workshop" in text:
        return None
    hits = {name for name, spellings in _VENUES.items() if any(f" {s} " in text for s in spellings)}
    return hits.pop() if len(hits) == 1 else None


def matched_paper(paper: Paper) -> MatchedPaper:
    """The result an entry was matched to, with a link."""
    return MatchedPaper(
        paper_id=paper.paper_id,
        title=paper.title,
        authors=paper.authors,
        year=paper.year,
        venue=paper.venue,
        url=paper_url(paper),
        source=paper.source,
    )


def paper_url(paper: Paper) -> str | None:
    """A link to the paper: its DOI, its arXiv page, else its page at the source."""
    ids = paper.ids
    if ids.get("doi"):
        return f"https://doi.org/{ids['doi']}"
    if ids.get("arxiv"):
        return f"https://arxiv.org/abs/{ids['arxiv']}"
    if ids.get("openreview"):
        return f"https://openreview.net/forum?id={ids['openreview']}"
    if ids.get("s2"):
        return f"https://www.semanticscholar.org/paper/{ids['s2']}"
    if ids.get("openalex"):
        return f"https://openalex.org/{ids['openalex']}"
    return None


def reference_findings(checks: list[ReferenceCheck]) -> list[Finding]:
    """``not_found`` and ``mismatch`` verdicts as findings; ``unchecked`` is no finding."""
    return [_finding(c) for c in checks if c.status in ("not_found", "mismatch")]


def _finding(check: ReferenceCheck) -> Finding:
    entry = check.entry
    name = f"[{entry.label}]" if entry.label else f"#{entry.index + 1}"
    title = entry.title or entry.raw[:80]
    if check.status == "not_found":
        return Finding(
            check="references",
            kind="reference_not_found",
            page=entry.page,
            message=f"Reference {name} ({title!r}) was not found by "
            f"{', '.join(check.answered_by)}: it may not exist.",
            evidence=entry.raw,
        )
    match = check.match
    found = f" | found: {match.title} ({match.year}) {match.url or ''}".rstrip() if match else ""
    return Finding(
        check="references",
        kind="reference_mismatch",
        page=entry.page,
        message=f"Reference {name} ({title!r}) differs from the published record: "
        f"{'; '.join(check.differences)}.",
        evidence=entry.raw + found,
    )
