"""A paper's bibliography as entries, from its page texts.

A reference list starts after each "References"/"Bibliography" heading (or, without one, at
a "[1]" line that a "[2]" line follows) and ends at the next such heading, an appendix
heading or the last page; what runs on after its last entry (a table, an appendix without a
heading) is cut off, and a "list" whose entries mostly lack a year is none.
Numbered styles ("[12] ...", "12. ...") start an entry at each label; author-year styles
(natbib, plainnat, ICLR: no label, the hanging indent lost in the text) start one at a line
that begins with a capital after a line that closes an entry: it ends in a full stop and
the entry so far has its year. An entry's page is the page it starts on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from reviewer.checks.bib_fields import YEAR, parse_fields
from reviewer.checks.models import BibEntry

_HEADING = re.compile(
    r"^\s*(?:\d+\.?\s+|[A-Z]\.?\s+)?(?:(?:appendix|supplementary|additional)\s+)?"
    r"(?:references|bibliography|literature cited|works cited|reference list)"
    r"(?:\s+(?:for|of|in)\s+(?:the\s+)?(?:appendix|appendices|supplementary material|"
    r"supplement))?\s*$",
    re.I,
)
_APPENDIX = re.compile(
    r"^\s*(?:appendix|appendices|supplementary material|supplemental material|"
    r"technical appendices|neurips paper checklist|checklist)\b",
    re.I,
)
_LETTER_HEADING = re.compile(r"^[A-H](?P<dot>(?:\.\d+)*\.?)\s+(?P<title>\S.{2,70})$")
_BRACKET_LABEL = re.compile(r"^\s*\[([^\[\]]{1,40})\]\s*")
_DOT_LABEL = re.compile(r"^\s*(\d{1,3})\.\s+(?=\S)")
_SMALL_WORDS = {"a", "an", "and", "for", "in", "of", "on", "the", "to", "with", "via", "vs"}
_NOT_A_START = re.compile(r"^(?:In\b|URL\b|doi\b|arXiv\b|ArXiv\b|pp\.|volume\b|Vol\.|\S*/)")
_BACKREF = r"(?:[A-H](?:\.\d+)*|\d+(?:\.\d+)*)"
_BACKREF_END = re.compile(rf"\.\s+{_BACKREF}(?:,\s*{_BACKREF})*$")
"""An entry's last sentence, then the pages or sections that cite it, as hyperref's backref
adds them ("2016. 3, 5", "Springer, 2019. A.2, F")."""
_URL_TAIL = re.compile(r"(?:https?:(?://\S*)?|\bwww\.\S*|\b10\.\d{4,9}/\S*)$")
MIN_ENTRY_WORDS = 4
"""An author-year piece shorter than this ("PMLR, 2020.") is the tail of the entry before."""
MAX_ENTRY_LINES = 15
"""A last "entry" longer than this is where the reference list ended and other text ran on."""


@dataclass(frozen=True)
class BibLine:
    """One line of the paper: its 1-based page, its index on that page and its text."""

    page: int
    index: int
    text: str


def parse_bibliography(pages: list[str]) -> list[BibEntry]:
    """The entries of the paper's bibliography, in order; [] when none is found. A paper with
    several reference lists (the appendix's own) gets the entries of all of them."""
    compounds = hyphenated_words(pages)
    entries: list[BibEntry] = []
    for section in bibliography_sections(pages):
        for group in section.groups:
            entries.append(_entry(len(entries), group, compounds, section.dotted))
    return entries


@dataclass(frozen=True)
class BibSection:
    """One reference list: its heading line (None when found by its "[1]"), its entries'
    lines, and whether it is numbered "1.", "2." (rather than "[1]" or not at all)."""

    heading: BibLine | None
    groups: list[list[BibLine]]
    dotted: bool


def bibliography_sections(pages: list[str]) -> list[BibSection]:
    """Every reference list of the paper: after each heading, up to the next heading or an
    appendix heading; a list whose entries mostly lack a year is no reference list."""
    lines = _all_lines(pages)
    starts = _starts(lines)
    sections = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] - 1 if k + 1 < len(starts) else len(lines)
        body = [
            x
            for x in lines[start : _end(lines, start, stop)]
            if not re.fullmatch(r"\d{1,3}", x.text)
        ]
        groups = _trim_tail(_split_entries(body)) if body else []
        if _looks_like_references(groups):
            heading = lines[start - 1] if start and _HEADING.match(lines[start - 1].text) else None
            sections.append(BibSection(heading, groups, _dot_numbered(body)))
    return sections


def body_pages(pages: list[str]) -> list[str]:
    """``pages`` without the reference lists' lines and headings: the text that cites."""
    skipped: set[tuple[int, int]] = set()
    for section in bibliography_sections(pages):
        if section.heading is not None:
            skipped.add((section.heading.page, section.heading.index))
        skipped |= {(x.page, x.index) for group in section.groups for x in group}
    kept: dict[int, list[str]] = {i + 1: [] for i in range(len(pages))}
    for line in _all_lines(pages):
        if (line.page, line.index) not in skipped:
            kept[line.page].append(line.text)
    return ["\n".join(kept[i + 1]) for i in range(len(pages))]


def _all_lines(pages: list[str]) -> list[BibLine]:
    return [
        BibLine(page_no, index, text.strip())
        for page_no, page in enumerate(pages, start=1)
        for index, text in enumerate(page.splitlines())
        if text.strip()
    ]


def _starts(lines: list[BibLine]) -> list[int]:
    """Index of each reference list's first line: after each heading; without a heading, at
    the last "[1]" line that a "[2]" line follows."""
    headings = [i + 1 for i, x in enumerate(lines) if _HEADING.match(x.text)]
    if headings:
        return headings
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].text.startswith("[1]") and any(
            x.text.startswith("[2]") for x in lines[i + 1 : i + 40]
        ):
            return [i]
    return []


def _end(lines: list[BibLine], start: int, stop: int) -> int:
    """Index just after a reference list's last line: an appendix heading ends it."""
    for i in range(start + 1, stop):
        if _ends_bibliography(lines[i].text, lines[i - 1].text):
            return i
    return stop


def _looks_like_references(groups: list[list[BibLine]]) -> bool:
    with_year = sum(1 for group in groups if _has_year(" ".join(x.text for x in group)))
    return bool(groups) and with_year * 2 >= len(groups)


def _has_year(text: str) -> bool:
    return bool(YEAR.search(re.sub(r"\S*(?:arxiv|abs/|doi|https?:)\S*", " ", text, flags=re.I)))


def _trim_tail(groups: list[list[BibLine]]) -> list[list[BibLine]]:
    """The list without what ran on after its last entry (a table, an appendix without a
    heading): trailing "entries" with no year or too long to be one are dropped, the head
    of a long one kept up to the line that closes an entry."""
    groups = list(groups)
    while groups:
        last = groups[-1]
        if len(last) <= MAX_ENTRY_LINES and _has_year(" ".join(x.text for x in last)):
            break
        groups.pop()
        if len(last) > MAX_ENTRY_LINES:
            head = next(
                (last[:end] for end in range(1, len(last)) if _closes_entry(last[:end])), None
            )
            if head:
                groups.append(head)
                break
    return groups


def _closes_entry(group: list[BibLine]) -> bool:
    """Whether the entry so far is complete: it ends in a full stop (or in back-references
    after one) and has its year."""
    last = " ".join(x.text for x in group[-2:]).rstrip()  # back-references may wrap
    closed = last.endswith(".") or bool(_BACKREF_END.search(last))
    return closed and _has_year(" ".join(x.text for x in group))


def _ends_bibliography(line: str, previous: str) -> bool:
    if _APPENDIX.match(line) and len(line) < 80:
        return True
    heading = _LETTER_HEADING.match(line)
    if not heading or line.rstrip().endswith((".", ",")):
        return False
    title = heading.group("title")
    words = re.findall(r"[^\W\d_][\w'’\-]*", title)
    if not words or len(words) > 9:
        return False
    if title.isupper() and any(len(w) >= 3 for w in words):
        return True  # "A ADDITIONAL RESULTS" (ICLR)
    if heading.group("dot") == ".":
        return False  # "A. Smith and B. Lee" begins an entry
    capitalised = all(w[0].isupper() or w.lower() in _SMALL_WORDS for w in words)
    return capitalised and previous.rstrip().endswith(".")  # "A Additional Results"


def _split_entries(lines: list[BibLine]) -> list[list[BibLine]]:
    """Lines grouped per entry, by labels when the list is numbered, else by author-year
    boundaries."""
    first = _BRACKET_LABEL.match(lines[0].text) if lines else None
    if first and first.group(1).strip().isdigit():
        return _split_at(lines, _next_bracket_number)
    if first:  # alpha labels ("[HJA20]"): every bracketed line starts one
        return _split_at(lines, lambda x, _: bool(_BRACKET_LABEL.match(x.text)))
    if _dot_numbered(lines):
        return _split_at(lines, _next_dot_label)
    return _merge_tails(_split_at(lines, _author_year_start))


def _next_bracket_number(line: BibLine, group: list[BibLine]) -> bool:
    """A "[n]" line starts an entry when n follows the current entry's number, so that a
    wrapped line starting with a bracket ("[cs.LG]") stays in its entry."""
    label = _BRACKET_LABEL.match(line.text)
    current = _BRACKET_LABEL.match(group[0].text)
    if not label or not current or not label.group(1).strip().isdigit():
        return False
    return int(label.group(1)) == int(current.group(1)) + 1


def _split_at(
    lines: list[BibLine], starts: Callable[[BibLine, list[BibLine]], bool]
) -> list[list[BibLine]]:
    groups: list[list[BibLine]] = []
    for line in lines:
        if not groups or starts(line, groups[-1]):
            groups.append([line])
        else:
            groups[-1].append(line)
    return groups


def _dot_numbered(lines: list[BibLine]) -> bool:
    """Whether the list runs "1. ...", "2. ..." (LNCS, some journals)."""
    first = _DOT_LABEL.match(lines[0].text) if lines else None
    return bool(first and first.group(1) == "1") and any(
        (m := _DOT_LABEL.match(x.text)) is not None and m.group(1) == "2" for x in lines[1:]
    )


def _next_dot_label(line: BibLine, group: list[BibLine]) -> bool:
    label = _DOT_LABEL.match(line.text)
    current = _DOT_LABEL.match(group[0].text)
    return bool(label and current and int(label.group(1)) == int(current.group(1)) + 1)


def _author_year_start(line: BibLine, group: list[BibLine]) -> bool:
    """A new author-year entry: the entry so far is complete and this line begins like an
    author list."""
    first = line.text.lstrip()
    starts = bool(first) and first[0].isupper() and not _NOT_A_START.match(first)
    return starts and _closes_entry(group)


def _merge_tails(groups: list[list[BibLine]]) -> list[list[BibLine]]:
    """A piece too short to be an entry ("PMLR, 2020.") joins the entry before it."""
    merged: list[list[BibLine]] = []
    for group in groups:
        words = " ".join(x.text for x in group).split()
        if merged and len(words) < MIN_ENTRY_WORDS:
            merged[-1].extend(group)
        else:
            merged.append(group)
    return merged


def hyphenated_words(pages: list[str]) -> set[str]:
    """Hyphenated compounds the paper prints whole ("diffusion-based"), lower case."""
    return {w.lower() for w in re.findall(r"[A-Za-z]+-[A-Za-z]+", "\n".join(pages))}


def join_lines(texts: list[str], compounds: set[str]) -> str:
    """Lines of one entry as one line: a word cut by a line-end hyphen is joined (the hyphen
    kept for a compound the paper prints elsewhere, or before a capital); a URL or DOI cut
    at a line end is joined without a space."""
    out = ""
    for text in texts:
        text = text.strip()
        if not out:
            out = text
            continue
        head = re.search(r"([A-Za-z]+)-$", out)
        tail = re.match(r"[A-Za-z]+", text)
        if _continues_url(out, text):
            out += text
        elif head and tail:
            keep = f"{head.group(1)}-{tail.group(0)}".lower() in compounds or text[0].isupper()
            out = (out if keep else out[:-1]) + text
        else:
            out += " " + text
    return out


def _continues_url(left: str, right: str) -> bool:
    """Whether ``right`` goes on with a URL or DOI that ``left`` ends with ("https:" +
    "//arxiv.org/...", "proceedings.neurips." + "cc/paper/..."); a year is not its tail."""
    if not right or not _URL_TAIL.search(left):
        return False
    if left.endswith(":"):
        return right.startswith("//")
    first = right.split(None, 1)[0]
    if re.fullmatch(r"(?:19|20)\d{2}[a-z]?[.,;]?", first):
        return False
    return left[-1] in "/._-=?&#" and ("/" in first or bool(re.match(r"[a-z0-9]", first)))


def _entry(index: int, group: list[BibLine], compounds: set[str], dotted: bool) -> BibEntry:
    raw = join_lines([x.text for x in group], compounds)
    label: str | None = None
    body = raw
    bracket = _BRACKET_LABEL.match(raw)
    dot = _DOT_LABEL.match(raw)
    if bracket:
        label, body = bracket.group(1).strip(), raw[bracket.end() :]
    elif dot and dotted:
        label, body = dot.group(1), raw[dot.end() :]
    fields = parse_fields(body)
    return BibEntry(
        index=index,
        label=label if label is not None and label.isdigit() else None,
        raw=raw,
        title=fields.title,
        authors=fields.authors,
        year=fields.year,
        venue=fields.venue,
        doi=fields.doi,
        arxiv=fields.arxiv,
        page=group[0].page,
    )
