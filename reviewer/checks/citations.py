"""In-text citations that point at no bibliography entry, and citations LaTeX left unresolved.

Only the text outside the bibliography is read. A numbered bibliography is checked against
bracketed numbers ("[3]", "[2, 5]", "[1-4]"); an author-year one against "Smith et al.
(2020)", "Smith and Lee (2020)", "(Smith & Lee, 2020; Chen, 2021)": the family name and the
year must both occur in one entry's text (leniently, so that an entry the parser merged with
the next still answers for both). A lone "Name (2020)" counts only when some entry names
that name: otherwise it is too often no citation ("the film Murder (1991)"). "[?]" and
"(?)" are a \\cite whose key was not found. With no bibliography parsed, only the
unresolved ones are reported (nothing to compare with).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from reviewer.checks.bib_fields import YEAR, name_key
from reviewer.checks.bibliography import body_pages, hyphenated_words, join_lines
from reviewer.checks.models import BibEntry, Finding

EVIDENCE_CHARS = 100
"""Characters of context kept on each side of a citation in a finding's evidence."""
MAX_RANGE = 50  # "[1-400]" is no citation range
_NUMBERS = re.compile(
    r"\[\s*(\d{1,3}(?:\s*[-–—]\s*\d{1,3})?(?:\s*[,;]\s*\d{1,3}(?:\s*[-–—]\s*\d{1,3})?)*)\s*\]"
)
_NOT_A_CITATION_BEFORE = re.compile(r"(?:[∈=×≤≥<>^]|\brange|\binterval|\bbetween)\s*$", re.I)
_GROUPS = re.compile(r"(?<![\w\])])(?:\[([^\[\]]{1,80})\]|\(([^()]{1,160})\))")
_NAME = r"[^\W\d_][^\W\d_'’\-]*(?:[-'’][^\W\d_]+)*"
_PARTICLE = r"(?:\b(?:van|von|de|der|den|del|da|di|du|le|la)\s+)*"
_AUTHORS = (
    rf"(?P<name>{_PARTICLE}{_NAME})(?P<more>\s+et\s+al\.?|\s+(?:and|&)\s+{_PARTICLE}{_NAME})?"
)
_YEARS = r"(?P<years>(?:19|20)\d{2}[a-z]?(?:\s*[,;]\s*(?:19|20)\d{2}[a-z]?)*)"
_NARRATIVE = re.compile(rf"{_AUTHORS},?\s+\({_YEARS}\)")
_ITEM = re.compile(
    rf"^\s*(?:e\.g\.,?\s*|i\.e\.,?\s*|see(?:\s+also)?\s+|cf\.\s*)?{_AUTHORS},?\s+{_YEARS}\s*$"
)
_NOT_NAMES = {
    "in", "the", "table", "tables", "figure", "figures", "fig", "section", "sections", "eq",
    "equation", "appendix", "algorithm", "see", "since", "from", "until", "after", "before",
    "version", "release", "year", "years", "and", "or", "of", "for", "with", "as", "on", "at",
    "by", "to", "but", "if", "while", "when", "where", "here", "then", "this", "that",
    "these", "those", "our", "we", "it", "its", "both", "each", "all", "some", "also", "thus",
    "however", "recently", "later", "earlier", "circa", "between",
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "spring", "summer", "fall", "autumn", "winter",
}  # fmt: skip


@dataclass(frozen=True)
class _Cited:
    """One author-year citation: the family name as printed, and its years."""

    name: str
    years: list[int]
    text: str
    start: int
    end: int
    alone: bool
    """A narrative citation of one name ("Smith (2020)"): a capitalised word before a year in
    parentheses, which may be no citation at all ("Murder (1991)", a film)."""


def citation_findings(pages: list[str], entries: list[BibEntry]) -> list[Finding]:
    """Every dangling or unresolved in-text citation, with its page and context."""
    compounds = hyphenated_words(pages)
    labels = {int(e.label) for e in entries if e.label is not None and e.label.isdigit()}
    findings: list[Finding] = []
    for page_no, page in enumerate(body_pages(pages), start=1):
        text = join_lines(page.splitlines(), compounds)
        findings += _unresolved(text, page_no)
        if labels:
            findings += _dangling_numbers(text, page_no, labels)
        elif entries:
            findings += _dangling_author_year(text, page_no, entries)
    return findings


def _unresolved(text: str, page: int) -> list[Finding]:
    """A "?" where a citation should be: "[?]", "[?, 3]", "(?)", "(?; Smith, 2020)"."""
    found = []
    for group in _GROUPS.finditer(text):
        inside = group.group(1) if group.group(1) is not None else group.group(2)
        if "?" in [item.strip() for item in re.split(r"[,;]", inside)]:
            found.append(
                Finding(
                    check="citations",
                    kind="unresolved_reference",
                    page=page,
                    message=f"An unresolved citation {group.group(0)!r}: LaTeX found no "
                    "bibliography entry for the \\cite key, so the reference is missing.",
                    evidence=evidence(text, group.start(), group.end()),
                )
            )
    return found


def _dangling_numbers(text: str, page: int, labels: set[int]) -> list[Finding]:
    """Bracketed citation numbers with no entry of that number."""
    found, seen = [], set()
    for group in _NUMBERS.finditer(text):
        numbers = _citation_numbers(text, group)
        missing = [n for n in numbers if n not in labels]
        if not missing or (len(numbers) > 1 and len(missing) == len(numbers)):
            continue  # "[64, 128]" with no valid label at all is a list of values
        for number in missing:
            if (number, page) in seen:
                continue
            seen.add((number, page))
            found.append(
                Finding(
                    check="citations",
                    kind="dangling_citation",
                    page=page,
                    message=f"Citation [{number}] points at no bibliography entry (the "
                    f"bibliography numbers {_label_span(labels)}).",
                    evidence=evidence(text, group.start(), group.end()),
                )
            )
    return found


def _citation_numbers(text: str, group: re.Match[str]) -> list[int]:
    """The numbers a bracket cites, ranges expanded; [] when it is no citation ("[0, 1]",
    "x ∈ [2, 5]", "[1-400]")."""
    if _NOT_A_CITATION_BEFORE.search(text[max(0, group.start() - 12) : group.start()]):
        return []
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.group(1)):
        bounds = [int(x) for x in re.split(r"\s*[-–—]\s*", part)]
        if len(bounds) == 2 and not 0 < bounds[1] - bounds[0] <= MAX_RANGE:
            return []
        numbers += list(range(bounds[0], bounds[-1] + 1))
    return [] if 0 in numbers else numbers


def _label_span(labels: set[int]) -> str:
    low, high = min(labels), max(labels)
    return f"[{low}]–[{high}]" if len(labels) == high - low + 1 else f"{len(labels)} entries"


def _dangling_author_year(text: str, page: int, entries: list[BibEntry]) -> list[Finding]:
    """Author-year citations whose family name and year belong to no entry."""
    known = _entry_keys(entries)
    names = {name for name, _ in known}
    found, seen = [], set()
    for cited in _author_year_citations(text):
        keys = {name_key(cited.name), name_key(cited.name.split()[-1])}
        key = name_key(cited.name)
        if cited.alone and not keys & names:
            continue  # a lone capitalised word no entry mentions is likely no citation
        for year in cited.years:
            if any((k, year) in known for k in keys) or (key, year, page) in seen:
                continue
            seen.add((key, year, page))
            found.append(
                Finding(
                    check="citations",
                    kind="dangling_citation",
                    page=page,
                    message=f"Citation {cited.text!r} matches no bibliography entry (none by "
                    f"{cited.name} from {year}).",
                    evidence=evidence(text, cited.start, cited.end),
                )
            )
    return found


def _entry_keys(entries: list[BibEntry]) -> set[tuple[str, int]]:
    """(family name, year) pairs the bibliography can answer: any capitalised word and any
    year of the same entry's text, so that an entry merged with the next one (a line that
    should have closed it did not end in a full stop) still answers for both."""
    keys: set[tuple[str, int]] = set()
    for entry in entries:
        years = {int(y) for y in YEAR.findall(entry.raw)} | ({entry.year} if entry.year else set())
        words = [w for w in re.findall(_NAME, entry.raw) if w[0].isupper()]
        parts = [p for w in words for p in re.split(r"[-'’]", w) if p]  # "Ben-David" -> "David"
        names = {name_key(x) for x in [*entry.authors, *words, *parts]}
        keys |= {(name, year) for name in names for year in years if name}
    return keys


def _author_year_citations(text: str) -> Iterator[_Cited]:
    """Narrative ("Smith et al. (2020)") and parenthetical ("(Smith & Lee, 2020; ...)")."""
    for match in _NARRATIVE.finditer(text):
        name = _family(match.group("name"))
        if _is_name(name):
            alone = not match.group("more")
            yield _Cited(name, _years(match.group("years")), match.group(0), *match.span(), alone)
    for group in re.finditer(r"\(([^()]{3,300})\)", text):
        for item in group.group(1).split(";"):
            found = _ITEM.match(item)
            name = _family(found.group("name")) if found else ""
            if found and _is_name(name):
                cited = f"({item.strip()})"
                yield _Cited(name, _years(found.group("years")), cited, *group.span(), False)


def _family(name: str) -> str:
    """The family name without a possessive ("Angluin's" -> "Angluin")."""
    return re.sub(r"['’]s$", "", name)


def _is_name(word: str) -> bool:
    last = word.split()[-1]
    return last[0].isupper() and len(last) >= 2 and last.lower() not in _NOT_NAMES


def _years(text: str) -> list[int]:
    return [int(y) for y in re.findall(r"(?:19|20)\d{2}", text)]


def evidence(text: str, start: int, end: int, width: int = EVIDENCE_CHARS) -> str:
    """The words around ``text[start:end]``, about ``width`` characters on each side."""
    left, right = max(0, start - width), min(len(text), end + width)
    snippet = text[left:right]
    if left > 0:
        snippet = "…" + snippet.split(" ", 1)[-1]
    if right < len(text):
        snippet = snippet.rsplit(" ", 1)[0] + "…"
    return " ".join(snippet.split())
