"""The closest prior work: a few keyword queries built from the paper's title, abstract and
contribution sentences (no LLM), searched in the literature cascade, merged and ranked; the
paper itself is left out."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Literal
from urllib.parse import quote

from core.literature.bibtex import STOPWORDS
from core.literature.models import Literature, Paper
from reviewer.checks.models import PriorWork

PriorWorkStatus = Literal["done", "unchecked", "skipped"]
SELF_SIMILARITY = 0.9  # a result this close to the paper's own title is the paper itself
MAX_QUERIES = 4
QUERY_WORDS = 8
ABSTRACT_SENTENCES = 2
# Words that say nothing about a paper's topic, beyond the title stopwords of the index.
FILLER = frozenset(
    {
        *("this", "that", "these", "those", "which", "while", "where", "than", "then", "also"),
        *("such", "each", "both", "more", "most", "less", "very", "into", "over", "under"),
        *("between", "across", "through", "without", "within", "about", "after", "before"),
        *("be", "been", "being", "was", "were", "has", "have", "had", "it", "as", "or", "not"),
        *("but", "if", "so", "all", "any", "some", "other", "only", "well", "many", "much"),
        *("us", "they", "them", "he", "she", "his", "her", "i", "my", "one", "two", "three"),
        *("paper", "work", "study", "approach", "approaches", "method", "methods", "novel"),
        *("new", "propose", "proposes", "proposed", "present", "presents", "introduce"),
        *("introduces", "introducing", "show", "shows", "demonstrate", "demonstrates"),
        *("result", "results", "significant", "significantly", "based", "using", "use"),
        *("used", "uses", "achieve", "achieves", "achieving", "improve", "improves"),
        *("improved", "effective", "effectively", "however", "furthermore", "moreover"),
        *("additionally", "finally", "first", "second", "further", "may", "might"),
        *("will", "would", "could", "should", "must", "make", "makes", "made", "enable"),
        *("enables", "provide", "provides", "including", "include", "includes", "like"),
        *("allows", "allow", "various", "several", "different", "existing"),
        *("anonymous", "authors", "abstract", "address", "addresses", "addressing", "every"),
        *("remarkable", "demonstrated", "success", "implement", "implements", "incorporating"),
        *("investigate", "investigates", "challenge", "challenges", "enhance", "enhancing"),
        *("modifying", "problem", "problems", "crucial", "key", "important", "strong"),
        *("experiments", "experimental", "extensive", "here", "there", "its", "our", "ours"),
    }
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
_ABSTRACT_HEAD = re.compile(r"^\s*abstract\b[\s.:—-]*", re.IGNORECASE | re.MULTILINE)
_ABSTRACT_END = re.compile(
    r"^\s*(?:(?:1|I)\.?\s+introduction\b|introduction\s*$|keywords\b|index terms\b)",
    re.IGNORECASE | re.MULTILINE,
)
_CONTRIBUTION = re.compile(
    r"\b(?:(?:we|this paper|this work|our work|our paper)\s+(?:\w+ly\s+)?"
    r"(?:propose|present|introduce|develop|design|implement|study|investigate|address|explore"
    r"|show|demonstrate|find|extend|analy[sz]e)|our (?:main |key )?contributions?)",
    re.IGNORECASE,
)
ABSTRACT_CHARS = 3000


@dataclass
class _Candidate:
    """One paper found by one or more queries."""

    paper: Paper
    query: str
    queries: set[int] = field(default_factory=set)
    best_rank: int = 0


def closest_prior_work(
    title: str,
    abstract: str,
    literature: Literature | None,
    limit: int,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[PriorWork], PriorWorkStatus, list[str]]:
    """Up to ``limit`` papers closest to this one, with the status and notes of the search.

    ``unchecked``: no literature configured, or no source answered any query (said so, never
    guessed); ``skipped``: ``limit`` is 0 or there is nothing to search for. No query starts
    after ``deadline`` (a ``clock`` reading).
    """
    if limit <= 0:
        return [], "skipped", ["prior work not retrieved (checks.prior_work is 0)"]
    if literature is None:
        return [], "unchecked", ["prior work not retrieved: no literature source configured"]
    queries = build_queries(title, abstract)
    if not queries:
        return [], "skipped", ["prior work not retrieved: no title or abstract to search for"]
    candidates: dict[str, _Candidate] = {}
    answered, asked = False, 0
    for number, query in enumerate(queries):
        if deadline is not None and clock() >= deadline:
            break
        result = literature.search(query, limit=max(2 * limit, 10))
        asked += 1
        answered = answered or bool(result.answered_by)
        _merge(candidates, result.papers, number, query)
    notes = []
    if asked < len(queries):
        notes.append(
            f"prior work: {len(queries) - asked} of {len(queries)} queries not run "
            "(checks.time_budget_s was spent)"
        )
    if not answered:
        if asked:
            notes.append(f"prior work unchecked: no literature source answered its {asked} queries")
        return [], "unchecked", notes
    kept = [c for c in candidates.values() if not is_same_paper(c.paper.title, title)]
    ranked = sorted(kept, key=lambda c: (-len(c.queries), c.best_rank, min(c.queries)))
    return [_prior_work(c) for c in ranked[:limit]], "done", notes


def _merge(candidates: dict[str, _Candidate], papers: list[Paper], number: int, query: str) -> None:
    """Add one query's papers, deduplicated by normalised title."""
    for rank, paper in enumerate(papers):
        key = normal_title(paper.title)
        if not key:
            continue
        found = candidates.get(key)
        if found is None:
            candidates[key] = _Candidate(paper, query, {number}, rank)
            continue
        found.queries.add(number)
        found.best_rank = min(found.best_rank, rank)


def _prior_work(candidate: _Candidate) -> PriorWork:
    paper = candidate.paper
    return PriorWork(
        title=paper.title,
        authors=paper.authors,
        year=paper.year,
        venue=paper.venue,
        url=paper_url(paper),
        source=paper.source,
        query=candidate.query,
    )


# ----------------------------------------------------------------------------- queries


def build_queries(title: str, abstract: str) -> list[str]:
    """2 to 4 distinct keyword queries: the title, the abstract's opening, the contribution
    sentence, and the words the title and abstract use most (fewer when text is missing)."""
    sentences = split_sentences(abstract)
    later = sentences[ABSTRACT_SENTENCES:]
    contribution = next((s for s in later if _CONTRIBUTION.search(s)), "")
    candidates = [
        " ".join(keywords(title)[: QUERY_WORDS + 2]),
        _top_words(" ".join(sentences[:ABSTRACT_SENTENCES])),
        _top_words(contribution),
        _top_words(f"{title} {title} {abstract}"),
    ]
    queries: list[str] = []
    seen: list[set[str]] = []
    for query in candidates:
        words = set(query.split())
        if len(words) < 2 or any(words == other for other in seen):
            continue
        queries.append(query)
        seen.append(words)
    return queries[:MAX_QUERIES]


def keywords(text: str) -> list[str]:
    """Content words of ``text`` in order, lower-cased, stopwords and filler dropped."""
    words = [w.lower() for w in _WORD.findall(text)]
    return [w for w in words if len(w) > 2 and w not in STOPWORDS and w not in FILLER]


def _top_words(text: str) -> str:
    """The ``QUERY_WORDS`` most frequent content words, in order of first appearance."""
    words = keywords(text)
    counts = Counter(words)
    first = {w: i for i, w in reversed(list(enumerate(words)))}
    top = sorted(counts, key=lambda w: (-counts[w], first[w]))[:QUERY_WORDS]
    return " ".join(sorted(top, key=first.__getitem__))


def split_sentences(text: str) -> list[str]:
    """``text`` as sentences (a period followed by a capital ends one)."""
    flat = " ".join(text.split())
    return [s for s in _SENTENCE_END.split(flat) if s]


def abstract_of(pages: list[str]) -> str:
    """The abstract as extracted from the first pages: from an 'Abstract' heading to the
    introduction (or a cut at ``ABSTRACT_CHARS``); '' when there is no such heading."""
    text = "\n".join(pages[:2])
    head = _ABSTRACT_HEAD.search(text)
    if head is None:
        return ""
    rest = text[head.end() :]
    end = _ABSTRACT_END.search(rest)
    body = rest[: end.start()] if end else rest[:ABSTRACT_CHARS]
    return " ".join(re.sub(r"(\w)-\n(\w)", r"\1\2", body[:ABSTRACT_CHARS]).split())


# ----------------------------------------------------------------------------- identity


def normal_title(title: str) -> str:
    """Lower-case words of a title, for comparing titles across sources."""
    return " ".join(re.findall(r"\w+", title.lower()))


def is_same_paper(found: str, own: str) -> bool:
    """Whether a result's title is (almost) the paper's own title."""
    a, b = normal_title(found), normal_title(own)
    return bool(a and b) and SequenceMatcher(None, a, b).ratio() >= SELF_SIMILARITY


def paper_url(paper: Paper) -> str | None:
    """A link to the paper from its ids: DOI, arXiv, Semantic Scholar or OpenAlex."""
    ids = dict(paper.ids)
    prefix, _, local = paper.paper_id.partition(":")
    if prefix in ("s2", "openalex") and local:
        ids.setdefault(prefix, local)
    doi = ids.get("doi", "").removeprefix("https://doi.org/").removeprefix("doi:")
    if doi:
        return "https://doi.org/" + quote(doi, safe="/.:;-_")
    bases = (
        ("arxiv", "https://arxiv.org/abs/"),
        ("s2", "https://www.semanticscholar.org/paper/"),
        ("openalex", "https://openalex.org/"),
    )
    for name, base in bases:
        value = ids.get(name, "").removeprefix(base)
        if value:
            return base + quote(value, safe="/.-_")
    return None
