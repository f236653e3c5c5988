"""Each bibliography entry looked up in the literature cascade, and its verdict.

An entry is searched by its title (its raw text when it has none) and matched to a result by
DOI or arXiv id, else by title similarity. A match whose year, first author or venue differs
is a ``mismatch``; no close result from a source that answered is ``not_found`` (possibly
fabricated). When no source answers, the entry is ``unchecked``, never ``not_found``: a
verdict of absence needs someone to have been asked. Lookups run ``checks.lookup_workers``
at once, within ``checks.time_budget_s`` for the whole bibliography.

Thresholds, measured on the 49 entries of the six sample papers (`../shared/data/papers`):

- ``TITLE_MATCH = 0.85`` (difflib ratio of normalised titles). Every entry's parsed title
  normalises to the published one (ratio 1.0: case, hyphens and accents are folded), while
  the closest pair of distinct titles among them scores 0.62, and the closest of the 350
  ICLR 2022 titles of the calibration set to any of them 0.67. Among 10,794 distinct titles
  parsed from the calibration papers' bibliographies (1,500 compared with all), 73 pairs
  score 0.85 or more: 37 are one paper written two ways (spacing, plurals, a version's new
  title: "EMNIST: an extension of MNIST..." / "EMNIST: extending MNIST...", 0.90; the
  lowest 0.857), 36 are distinct papers (0.85 to 0.96, e.g. "Learning to learn (without)
  gradient descent by gradient descent", 0.92). A higher threshold would call real
  references not found, the costlier error; a distinct paper taken for the cited one
  usually still differs in first author or year and is reported as a mismatch. Between
  several matching results, a near-exact title (``NEAR_EXACT``) wins.
- ``YEAR_TOLERANCE = 1``: a preprint and its proceedings are a year apart as a rule (the
  samples cite Kingma & Welling as ICLR 2014; Semantic Scholar dates it 2013). Beyond that,
  an entry that cites a preprint may carry the preprint's year: the samples cite Loshchilov &
  Hutter as arXiv:1711.05101, 2017, published at ICLR 2019; the arXiv id dates the preprint
  (17 -> 2017), so that is no mismatch. Any other difference is reported.
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
from reviewer.checks.prior_work import paper_url

TITLE_MATCH = 0.85
NEAR_EXACT = 0.95
"""A title this close is the same paper written otherwise (spacing, a plural, a typo)."""
YEAR_TOLERANCE = 1
PREPRINT_LEAD = 3
"""Years a publication may follow the preprint that one side dates it by."""
MIN_CONTAINED_WORDS = 4
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
    """Every entry looked up, ``lookup_workers`` at once. An entry whose turn comes after
    ``clock`` passed the deadline is not looked up; after ``time_budget_s`` of waiting (real
    seconds), lookups still running are abandoned, not waited for: both are unchecked."""
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
        return _unchecked(entry, "checks.time_budget_s was spent before its turn came")
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
    """The result that matches best: a near-exact title (or the same id) before a fuzzier
    one, then the fewest differences (a source may hold both the preprint and the
    proceedings), then the most similar; when none matches, the most similar. None when
    there are no results."""
    ranked = []
    for position, paper in enumerate(papers):
        score = _score(entry, paper)
        matches = score >= TITLE_MATCH
        fewer = -len(differences(entry, paper)) if matches else 0
        ranked.append(((matches, score >= NEAR_EXACT, fewer, score, -position), score, paper))
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
    """2.0 for the same DOI or arXiv id, else the title similarity (0..1). An entry whose
    author list was not recognised may have a title with the names in it: a result whose
    whole title (four words or more) occurs in the entry's text, outside its venue, matches."""
    if _same_id(entry, paper):
        return 2.0
    score = title_similarity(entry.title, paper.title) if entry.title else 0.0
    if not entry.authors and _title_in_text(paper.title, entry):
        return max(score, TITLE_MATCH)
    return score


def _title_in_text(title: str, entry: BibEntry) -> bool:
    wanted = title_key(title)
    if len(wanted.split()) < MIN_CONTAINED_WORDS:
        return False
    return f" {wanted} " in f" {title_key(entry.raw)} " and wanted not in title_key(
        entry.venue or ""
    )


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
    if entry.year and paper.year and not years_agree(entry, paper):
        found.append(f"year: {entry.year} in the paper, {paper.year} found")
    if entry.authors and paper.authors and not _same_person(entry.authors[0], paper.authors[0]):
        found.append(f"first author: {entry.authors[0]} in the paper, {paper.authors[0]} found")
    ours, theirs = known_venue(entry.venue), known_venue(paper.venue)
    if ours and theirs and ours != theirs:
        found.append(f"venue: {entry.venue} in the paper, {paper.venue} found")
    return found


def years_agree(entry: BibEntry, paper: Paper) -> bool:
    """Whether the entry's year fits the record's: within a year of it, or the year of the
    preprint the entry cites (its arXiv id's "YYMM", or a preprint venue up to
    ``PREPRINT_LEAD`` years before the publication), or that of a publication which followed
    the preprint the source returned."""
    year, found = entry.year, paper.year
    if year is None or found is None or abs(year - found) <= YEAR_TOLERANCE:
        return True
    posted = arxiv_year(entry.arxiv) if entry.arxiv else None
    if posted is not None and abs(year - posted) <= YEAR_TOLERANCE and posted <= found:
        return True
    if _is_preprint(entry.venue):
        return 0 < found - year <= PREPRINT_LEAD
    return _is_preprint(paper.venue) and 0 < year - found <= PREPRINT_LEAD


def arxiv_year(arxiv_id: str) -> int | None:
    """The year an arXiv id was assigned ("1711.05101" -> 2017, "cs/0501001" -> 2005)."""
    found = re.match(r"(?:[a-z\-]+(?:\.[A-Z]{2})?/)?(\d{2})(\d{2})", arxiv_id)
    if not found or not 1 <= int(found.group(2)) <= 12:
        return None
    yy = int(found.group(1))
    return 1900 + yy if yy >= 91 else 2000 + yy


def _is_preprint(venue: str | None) -> bool:
    return bool(venue) and bool(re.search(r"arxiv|preprint|corr\b", venue or "", re.I))


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
