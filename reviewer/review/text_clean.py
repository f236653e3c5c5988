"""Clean extracted paper text and split it into sections. Pure functions, no I/O.

Input is a list of lines (from a PDF's pages or from plain text), where ``""`` is a
paragraph break. Output is a list of blocks (headings, paragraphs, table rows) from which
``pdf_text`` builds a :class:`~reviewer.review.form.PaperText`. Headings open a new section at the
top level only ("1 Introduction", "Abstract", "REFERENCES", "A Appendix"); subsection headings
("2.1 Method") stay inside their section's text as their own paragraph.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from reviewer.review.form import Section

FRONT_MATTER = "Front matter"
_TOP_ZONE, _BOTTOM_ZONE = 5, 3
_PAGE_NUMBER = re.compile(
    r"^(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$|^[-–—]\s*\d{1,4}\s*[-–—]$|^[ivxlc]{1,6}$",
    re.I,
)
_KEYWORD = re.compile(
    r"^(?:abstract|introduction|related\s+work|background|preliminar(?:y|ies)|method(?:s|ology)?"
    r"|approach|model|experiments?|experimental\s+(?:setup|results|evaluation)|results|evaluation"
    r"|discussion|conclusions?|limitations|future\s+work|references|bibliography"
    r"|acknowledge?ments?|appendix|appendices|supplementary\s+material|ethics\s+statement"
    r"|reproducibility\s+statement|broader\s+impacts?)(?:\s+(?:and|&)\s+[a-z][a-z ]{2,40})?$",
    re.I,
)
_BACK_MATTER = re.compile(r"^(?:references|bibliography|appendix|appendices|supplementary)", re.I)
_NUMBERED = re.compile(r"^(\d{1,2})((?:\.\d{1,2}){0,3})\.?\s+(\S.*)$")
_LETTERED = re.compile(r"^([A-H])((?:\.\d{1,2}){0,3})\.?\s+(\S.*)$")
_NUMBER_PREFIX = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*|[A-H]|[IVX]{1,4})\.?\s+")
_ALL_CAPS = re.compile(r"[A-Z][A-Z\-&' ]+")
_SENTENCE_END = re.compile(r"[.!?:][\"')\]]?$")
_BULLET = re.compile(r"^(?:[•◦▪‣·∙]|[-–*]\s)")
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")
_LIGATURES = str.maketrans(
    {
        "ﬀ": "ff",
        "ﬁ": "fi",
        "ﬂ": "fl",
        "ﬃ": "ffi",
        "ﬄ": "ffl",
        "\u00a0": " ",
        "\u00ad": "",
        "\t": " ",
    }
)
# First parts of hyphenated compounds: "state-of-|the-art" keeps its hyphen.
_COMPOUND_HEADS = frozenset(
    {
        "self",
        "non",
        "well",
        "state",
        "of",
        "the",
        "high",
        "low",
        "long",
        "short",
        "large",
        "small",
        "cross",
        "co",
        "semi",
        "all",
        "first",
        "second",
        "third",
        "zero",
        "few",
        "one",
        "two",
        "three",
        "four",
        "five",
        "end",
        "real",
        "fine",
        "data",
        "task",
        "model",
        "human",
    }
)
CONNECTORS = frozenset(
    {
        "a",
        "an",
        "and",
        "at",
        "by",
        "for",
        "from",
        "in",
        "of",
        "on",
        "the",
        "to",
        "via",
        "with",
        "without",
    }
)

BlockKind = Literal["section", "subsection", "paragraph", "table"]


@dataclass
class Block:
    """One heading, paragraph or table (rows joined by newlines) of the cleaned text."""

    kind: BlockKind
    text: str


@dataclass
class _Numbering:
    """What the heading detector has seen so far (to reject out-of-sequence numbers)."""

    top: int | None = None
    letter: str | None = None
    seen_heading: bool = False
    back_matter: bool = False


@dataclass
class _Vocabulary:
    """Words of the document, to decide whether a line-break hyphen joins a word."""

    words: set[str] = field(default_factory=set)
    hyphenated: set[str] = field(default_factory=set)


def normalise_line(line: str) -> str:
    """One line with ligatures expanded, soft hyphens dropped and whitespace collapsed."""
    return " ".join(line.translate(_LIGATURES).split())


def is_page_number(line: str) -> bool:
    """Whether ``line`` is a bare page number ("7", "Page 7 of 9", "- 7 -", "vii")."""
    return bool(_PAGE_NUMBER.match(line.strip()))


def _line_key(line: str) -> str:
    """A line for header matching: lower case, digits and spacing ignored."""
    return " ".join(re.sub(r"\d+", "#", line.lower()).split())


def _repeated(zones: list[list[str]], threshold: int) -> set[str]:
    counts = Counter(key for zone in zones for key in {_line_key(x) for x in zone})
    return {key for key, n in counts.items() if n >= threshold}


def strip_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Drop running headers/footers and bare page numbers at the top and bottom of pages.

    A header or footer is a line (digits ignored) found in the top five or bottom three
    lines of at least half of the pages (and of two pages at least).
    """
    pages = [[x for x in page if x.strip()] for page in pages]
    threshold = max(2, math.ceil(len(pages) / 2))
    top = _repeated([p[:_TOP_ZONE] for p in pages], threshold) if len(pages) > 1 else set()
    bottom = _repeated([p[-_BOTTOM_ZONE:] for p in pages], threshold) if len(pages) > 1 else set()
    cleaned = []
    for page in pages:
        start, end = 0, len(page)
        while start < min(end, _TOP_ZONE) and (
            _line_key(page[start]) in top or is_page_number(page[start])
        ):
            start += 1
        while end > max(start, len(page) - _BOTTOM_ZONE) and (
            _line_key(page[end - 1]) in bottom or is_page_number(page[end - 1])
        ):
            end -= 1
        cleaned.append(page[start:end])
    return cleaned


def strip_markdown(lines: Iterable[str]) -> list[str]:
    """Remove markdown debris from converted text: bold markers, table rules, lone numbers."""
    out = [line.replace("**", "").replace("__", "") for line in lines]
    out = ["" if re.fullmatch(r"\|?[\s:|-]*-{3,}[\s:|-]*\|?", x.strip()) else x for x in out]
    keep = []
    for i, line in enumerate(out):
        before = out[i - 1].strip() if i else ""
        after = out[i + 1].strip() if i + 1 < len(out) else ""
        if is_page_number(line) and not before and not after:
            continue
        keep.append(line)
    return keep


def title_like(title: str) -> bool:
    """Whether ``title`` could be a heading or paper title: short, capitalised, mostly letters."""
    words = title.split()
    if not 1 <= len(words) <= 14 or len(title) > 90 or not title[0].isupper():
        return False
    if title[-1] in ".,;" or ". " in title or re.search(r"\s\d+$", title):
        return False
    long_words = [w for w in words if len(w) >= 4]
    if len(words) >= 8 and sum(w[0].islower() for w in long_words) > len(long_words) / 2:
        return False  # a long line in sentence case is body text, not a heading
    letters = sum(c.isalpha() for c in title)
    return letters >= 3 and letters >= 0.6 * len(title.replace(" ", ""))


def _bare(line: str) -> str:
    """A candidate heading without markdown marks ('## ', '**', '_') and a trailing colon."""
    return line.lstrip("#").strip().strip("*_").strip().rstrip(":").strip()


def _numbered(s: str, state: _Numbering) -> BlockKind | None:
    m = _NUMBERED.match(s)
    if not m or not title_like(m[3]):
        return None
    top, depth = int(m[1]), m[2].count(".")
    if depth:
        return "subsection" if state.top == top else None
    if (state.top is None and top <= 3) or (state.top is not None and top == state.top + 1):
        state.top = top
        return "section"
    return None


def _lettered(s: str, state: _Numbering) -> BlockKind | None:
    m = _LETTERED.match(s)
    if not state.back_matter or not m or not title_like(m[3]):
        return None
    letter, depth = m[1], m[2].count(".")
    if depth:
        return "subsection" if state.letter == letter else None
    follows = state.letter is not None and ord(letter) == ord(state.letter) + 1
    if letter == "A" or follows:
        state.letter = letter
        return "section"
    return None


def _keyword(s: str, state: _Numbering) -> BlockKind | None:
    name = _NUMBER_PREFIX.sub("", s)
    if not _KEYWORD.match(name) or not title_like(name):
        return None
    number = _NUMBERED.match(s)
    if number and number[2]:
        return "subsection"
    if number:
        state.top = int(number[1])
    state.back_matter = state.back_matter or bool(_BACK_MATTER.match(name))
    return "section"


def _all_caps(s: str, state: _Numbering) -> BlockKind | None:
    words = s.split()
    long_words = sum(len(w) >= 3 for w in words)
    if state.seen_heading and _ALL_CAPS.fullmatch(s) and len(words) <= 8 and long_words >= 2:
        return "section"
    return None


def classify_heading(line: str, state: _Numbering) -> tuple[BlockKind, str] | None:
    """(``"section"`` or ``"subsection"``, heading text) when ``line`` is a heading, else None."""
    s = _bare(line)
    if not s or len(s) > 100:
        return None
    for rule in (_keyword, _numbered, _lettered, _all_caps):
        kind = rule(s, state)
        if kind:
            state.seen_heading = True
            return kind, s
    return None


def build_vocabulary(lines: Iterable[str]) -> _Vocabulary:
    """The lower-cased words and hyphenated words of the document."""
    vocab = _Vocabulary()
    for line in lines:
        for token in _WORD.findall(line):
            (vocab.hyphenated if "-" in token else vocab.words).add(token.lower())
    return vocab


def join_hyphenated(left: str, right: str, vocab: _Vocabulary) -> str:
    """Join ``left`` (ending in "-") with ``right`` across a line break.

    The hyphen goes ("gener-" + "alization" -> "generalization") when the joined word occurs
    elsewhere in the document, or, failing that, when nothing marks it as a compound (a
    capitalised or non-letter continuation, a known compound head like "state-of-").
    """
    head = re.search(r"([A-Za-z]+)-$", left)
    tail = re.match(r"[A-Za-z]+", right)
    if not head or not tail:
        return left + right
    first, second = head[1], tail[0]
    joined = (first + second).lower()
    if joined in vocab.words:
        return left[:-1] + right
    compound = f"{first}-{second}".lower() in vocab.hyphenated or first.lower() in _COMPOUND_HEADS
    capital = second[0].isupper() and not second.isupper()
    return left + right if compound or capital else left[:-1] + right


def _typical_width(lines: list[str]) -> float:
    lengths = sorted(len(x) for x in lines if len(x) > 20)
    return float(lengths[int(0.8 * (len(lengths) - 1))]) if lengths else 80.0


def to_blocks(lines: list[str]) -> list[Block]:
    """Headings, paragraphs (lines reflowed, hyphenation joined) and tables, in order."""
    lines = [normalise_line(x) for x in lines]
    width, vocab, state = _typical_width(lines), build_vocabulary(lines), _Numbering()
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(Block("paragraph", " ".join(para)))
            para.clear()

    for line in lines:
        heading = classify_heading(line, state) if line else None
        if not line or heading or line.startswith("|") or _BULLET.match(line):
            flush()
        if heading:
            blocks.append(Block(heading[0], heading[1]))
        elif line.startswith("|"):
            _add_table_row(blocks, line)
        elif line:
            _add_line(para, line, vocab)
            if _SENTENCE_END.search(line) and len(line) < 0.85 * width:
                flush()
    flush()
    return blocks


def _add_table_row(blocks: list[Block], row: str) -> None:
    if blocks and blocks[-1].kind == "table":
        blocks[-1].text += "\n" + row
    else:
        blocks.append(Block("table", row))


def _add_line(para: list[str], line: str, vocab: _Vocabulary) -> None:
    """Append ``line`` to the paragraph; a trailing "word-" is joined without a space."""
    if para and re.search(r"[A-Za-z]-$", para[-1]):
        para[-1] = join_hyphenated(para[-1], line, vocab)
    else:
        para.append(line)


def to_sections(blocks: list[Block]) -> list[Section]:
    """Top-level sections; text before the first heading is the "Front matter" section."""
    sections: list[Section] = []
    title, body = FRONT_MATTER, list[str]()
    for block in blocks:
        if block.kind == "section":
            if body or title != FRONT_MATTER:
                sections.append(Section(title=title, text="\n\n".join(body)))
            title, body = block.text, []
        else:
            body.append(block.text)
    if body or title != FRONT_MATTER:
        sections.append(Section(title=title, text="\n\n".join(body)))
    return sections


def render(sections: list[Section]) -> str:
    """The full text: each section's heading (none for front matter) and its paragraphs."""
    parts = [s.text if s.title == FRONT_MATTER else f"{s.title}\n\n{s.text}" for s in sections]
    return "\n\n".join(p.strip() for p in parts if p.strip())


def is_heading(line: str) -> bool:
    """Whether ``line`` reads as a section heading on its own (no numbering context)."""
    return classify_heading(line, _Numbering()) is not None
