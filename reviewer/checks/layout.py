"""Where things are in a paper's page texts: lines with their page, the numbered headings
and the kind of section each opens (claims, setup, other), captions, equation tags and the
references list. The numbers and cross-reference checks read the paper through these.

The heading rules follow ``reviewer.review.text_clean`` (numbered headings in sequence, one
numbering style, lettered appendices after the references), reimplemented here because the
checks sit below ``reviewer.review`` in the import layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SectionKind = Literal["claims", "setup", "other", "references"]

_NUMBERED = re.compile(r"^(\d{1,2})((?:\.\d{1,2}){0,3})(\.?)\s+(\S.*)$")
_LETTERED = re.compile(r"^(?:appendix\s+)?([A-H])((?:\.\d{1,2}){0,3})[.:]?\s+(\S.*)$", re.I)
_KEYWORD = re.compile(
    r"^(abstract|references|bibliography|acknowledge?ments?|appendix|appendices"
    r"|supplementary material|introduction|related work|background|methods?|methodology"
    r"|experiments|experimental setup|results|experimental results|discussion"
    r"|conclusions?|limitations)$",
    re.I,
)
_NAMED_NUMBER = re.compile(r"\s[A-Z][A-Za-z]+\s\d{1,2}$")  # "Proof of Lemma 1", not "Ours 0.85"
_BACK_MATTER = re.compile(r"^(references|bibliography)$", re.I)
_CAPTION = re.compile(r"^(Figure|Fig\.|Table|Tab\.)\s*(\d{1,3})\s*[:.|]")
_INLINE_CAPTION = re.compile(r"(?:^|\s)(Figure|Fig\.|Table|Tab\.)\s*(\d{1,3})\s*:")
_ALGORITHM = re.compile(r"^Algorithm\s+(\d{1,3})\b")
_EQUATION_TAG = re.compile(r"\((\d{1,3})\)")
_EQUATION_MENTION = re.compile(  # "Eq. (12)", "Eqs. (3) and (4)": a reference, not a tag
    r"(?:Eqs?\.|Eqns?\.|Equations?)\s*~?\s*(?:\(\d{1,3}\)\s*(?:,|and|&|or|–|-|to)\s*)*$"
)

# What a heading's title says about the numbers under it. Checked in this order: setup words
# win over claim words ("Experimental setup"), claim words over method words ("Training
# dynamics analysis" is results).
_SETUP_FIRST = re.compile(
    r"set-?up|implementation|hyper-?param|configuration|details|protocol|metrics?\b", re.I
)
_RELATED = re.compile(
    r"related|prior work|literature|acknowledg|ethic|impact|reproducibility|background"
    r"|preliminar|problem|notation|formulation",
    re.I,
)
_CLAIMS = re.compile(
    r"abstract|introduction|result|experiment|evaluation|discussion|conclusion|summary"
    r"|analysis|ablation|finding|comparison|limitation|performance|benchmark",
    re.I,
)
_SETUP = re.compile(r"method|approach|dataset|\bdata\b|model|architecture|training|algorithm", re.I)


@dataclass(frozen=True)
class Line:
    """One non-empty line of the paper, whitespace collapsed, with its 1-based page."""

    page: int
    text: str


@dataclass(frozen=True)
class Heading:
    """A heading: its line, its number ("3", "3.2", "A", "" when unnumbered) and title."""

    index: int
    number: str
    title: str

    @property
    def top(self) -> str:
        """The top-level part of the number ("3" for "3.2")."""
        return self.number.split(".")[0]

    @property
    def depth(self) -> int:
        """0 for a section, 1 for a subsection, and so on."""
        return self.number.count(".")


@dataclass
class _State:
    top: int | None = None
    dotted: bool | None = None
    letter: str | None = None
    back_matter: bool = False
    appendix: bool = False


def paper_lines(pages: list[str]) -> list[Line]:
    """Every non-empty line of ``pages`` with its page number."""
    return [
        Line(number, " ".join(text.split()))
        for number, page in enumerate(pages, 1)
        for text in page.splitlines()
        if text.strip()
    ]


def title_like(title: str) -> bool:
    """Whether ``title`` reads as a heading's title: short, capitalised, mostly letters."""
    words = title.split()
    if not 1 <= len(words) <= 12 or len(title) > 90 or not title[0].isupper():
        return False
    ends_in_number = re.search(r"\s[\d.]+$", title) and not _NAMED_NUMBER.search(title)
    if title[-1] in ".,;:" or ends_in_number:
        return False
    long_words = [w for w in words if len(w) >= 4]
    if len(words) >= 8 and sum(w[0].islower() for w in long_words) > len(long_words) / 2:
        return False
    letters = sum(c.isalpha() for c in title)
    return letters >= 3 and letters >= 0.6 * len(title.replace(" ", ""))


def _numbered(text: str, state: _State) -> tuple[str, str] | None:
    match = _NUMBERED.match(text)
    if not match or not title_like(match[4]):
        return None
    top, rest, dot = int(match[1]), match[2], bool(match[3])
    if rest:
        return (f"{top}{rest}", match[4]) if state.top == top and not state.appendix else None
    # In sequence, allowing one heading the extraction lost ("3" between "2" and "4").
    follows = (state.top is None and top <= 2) or (
        state.top is not None and state.top < top <= state.top + 2
    )
    if not follows or (state.dotted is not None and dot != state.dotted):
        return None
    state.top, state.dotted = top, dot
    return str(top), match[4]


def _lettered(text: str, state: _State) -> tuple[str, str] | None:
    match = _LETTERED.match(text)
    if not (state.back_matter or state.appendix) or not match or not title_like(match[3]):
        return None
    letter, rest = match[1].upper(), match[2]
    if rest:
        return (f"{letter}{rest}", match[3]) if state.letter == letter else None
    # Appendix letters go up, but extraction can lose one ("A", then "C"); "B. Smith" (an
    # author in the references) is not a heading, "B PROOFS" is.
    follows = state.letter is None or letter > state.letter
    if follows and (letter == "A" or text[1:2] == " " or text.lower().startswith("appendix")):
        state.letter, state.appendix = letter, True
        return letter, match[3]
    return None


def _keyword(text: str, state: _State) -> tuple[str, str] | None:
    match = _KEYWORD.match(text)
    if not match or not text[0].isupper():
        return None
    state.back_matter = state.back_matter or bool(_BACK_MATTER.match(match[1]))
    state.appendix = state.appendix or match[1].lower().startswith(("append", "supplement"))
    return "", match[1]


def find_headings(lines: list[Line]) -> list[Heading]:
    """The paper's headings, in order: numbered ones only in sequence ("1", "2", "2.1", "3";
    a list item "4." inside section 2 is not one), keyword ones (Abstract, References,
    Appendix) and lettered appendices after the references."""
    state = _State()
    headings = []
    for index, line in enumerate(lines):
        for rule in (_keyword, _numbered, _lettered):
            found = rule(line.text, state)
            if found:
                headings.append(Heading(index, found[0], found[1]))
                break
    return headings


def _title_kind(title: str) -> SectionKind | None:
    if _SETUP_FIRST.search(title):
        return "setup"
    if _RELATED.search(title):
        return "other"
    if _CLAIMS.search(title):
        return "claims"
    if _SETUP.search(title):
        return "setup"
    return None


def _heading_kind(heading: Heading, parent: Heading | None) -> SectionKind:
    """A section's kind from its title; a subsection's title decides only when it says
    something and its section is not related work or background (whose subsections are
    other people's work whatever they are called)."""
    if _BACK_MATTER.match(heading.title):
        return "references"
    if heading.number[:1].isalpha() or heading.title.lower().startswith(("append", "supplem")):
        return "other"
    kind = _title_kind(heading.title)
    if not heading.depth or parent is None:
        return kind or "other"
    parent_kind = _heading_kind(parent, None)
    if _RELATED.search(parent.title) and not _SETUP_FIRST.search(parent.title):
        return parent_kind
    return kind or parent_kind


def _front_end(lines: list[Line], headings: list[Heading]) -> tuple[int, int | None]:
    """Where the front matter ends (the first heading after the abstract) and where the
    "Abstract" heading is, if there is one."""
    abstract = next((h.index for h in headings if h.title.lower() == "abstract"), None)
    body = next((h.index for h in headings if h.title.lower() != "abstract"), None)
    if body is None:
        body = max((i + 1 for i, line in enumerate(lines) if line.page == 1), default=0)
    return body, abstract


def section_kinds(lines: list[Line], headings: list[Heading]) -> list[SectionKind]:
    """For each line, the kind of section it sits in: ``claims`` (abstract, introduction,
    results, discussion, conclusion), ``setup`` (method, setup, data), ``references`` or
    ``other`` (related work, background, appendices, titles that say nothing). The abstract
    runs from its heading (or, without one, from the top of page 1) to the first heading."""
    kinds: list[SectionKind] = ["other"] * len(lines)
    body, abstract = _front_end(lines, headings)
    for i in range(body):
        if (abstract is not None and i > abstract) or (abstract is None and lines[i].page == 1):
            kinds[i] = "claims"
    top: Heading | None = None
    body_headings = [h for h in headings if h.index >= body]
    nexts: list[Heading | None] = [*body_headings[1:], None] if body_headings else []
    for heading, following in zip(body_headings, nexts, strict=True):
        kind = _heading_kind(heading, top)
        if heading.depth == 0:
            top = heading
        end = following.index if following else len(lines)
        for i in range(heading.index + 1, end):
            kinds[i] = kind
    return kinds


def captions(lines: list[Line], names: tuple[str, ...]) -> list[int]:
    """Numbers of the captions whose label is one of ``names`` (e.g. ``("Figure", "Fig.")``):
    "Figure 3: ..." anywhere in a line (two columns can put one mid-line) or "Figure 3. ..."
    at its start. Every line counts, the references too: an appendix the headings missed
    still has its captions."""
    found = []
    for line in lines:
        matches = [*_INLINE_CAPTION.finditer(line.text)]
        start = _CAPTION.match(line.text)
        matches += [start] if start else []
        found += [int(match[2]) for match in matches if match[1] in names]
    return found


def caption_line(text: str) -> str | None:
    """ "Figure" or "Table" when ``text`` starts a caption, else None."""
    match = _CAPTION.match(text)
    if not match:
        return None
    return "Table" if match[1].startswith("Tab") else "Figure"


def algorithm_numbers(lines: list[Line]) -> list[int]:
    """Numbers of lines that open with "Algorithm N" (the float's own header line)."""
    return [int(match[1]) for line in lines if (match := _ALGORITHM.match(line.text))]


def equation_tags(lines: list[Line]) -> list[int]:
    """Every "(N)" of the paper but those of "Eq. (N)": displayed equations' tags, wherever
    the extraction put them (a list item "(2)" counts too, which only makes the equation
    check more lenient)."""
    return [
        int(match[1])
        for line in lines
        for match in _EQUATION_TAG.finditer(line.text)
        if not _EQUATION_MENTION.search(line.text[: match.start()])
    ]


def snippet(text: str, start: int, end: int, width: int = 100) -> str:
    """About ``width`` characters of ``text`` around ``text[start:end]``, cut at spaces."""
    pad = max(0, (width - (end - start)) // 2)
    left, right = max(0, start - pad), min(len(text), end + pad)
    if left > 0 and " " in text[left:start]:
        left = text.index(" ", left) + 1
    if right < len(text) and " " in text[end:right]:
        right = text.rindex(" ", end, right)
    prefix = "…" if left > 0 else ""
    suffix = "…" if right < len(text) else ""
    return f"{prefix}{text[left:right].strip()}{suffix}"
