"""What of a paper the reviewers are shown, within a token budget, and a record of what was cut.

Pure functions, no I/O. Tokens are estimated as ``ceil(chars / chars_per_token)``; the result
never exceeds the budget. When the paper is over budget, references and acknowledgements go
first; then sections are kept by priority (Abstract, Introduction, Method, Experiments,
Conclusion, then the rest, appendices last). Sections of the top priorities share the room
fairly: each is kept whole if it fits, and the longest are shortened to their beginning and
end around a ``[… N characters cut …]`` marker. The shown text keeps the paper's order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from reviewer.review.form import CutRecord, Excerpt, PaperText, Section
from reviewer.review.text_clean import FRONT_MATTER

SEPARATOR = "\n\n"
MIN_SHORTENED_CHARS = 400
"""A shortened section gets at least this many characters, or it is left out."""
_HEAD_SHARE = 2 / 3  # of a shortened section, the beginning gets this share, the end the rest
_DROP_FIRST = re.compile(r"reference|bibliograph|acknowledg|funding|author contributions", re.I)
# (pattern, tier, rank) in matching order: the first match classifies a section title. Tiers
# are filled in _TIERS order; within a tier a lower rank is kept first.
_CLASSES: tuple[tuple[re.Pattern[str], str, int], ...] = tuple(
    (re.compile(pattern), tier, rank)
    for pattern, tier, rank in (
        (r"(?i:appendi|supplementa)|^[A-H](?:\.\d+)*\.?\s", "appendix", 0),
        (r"(?i)related work|background|preliminar|prior work|literature", "other", 1),
        (r"(?i)abstract", "core", 0),
        (rf"^{re.escape(FRONT_MATTER)}$", "core", 1),
        (r"(?i)introduction|motivation", "core", 2),
        (r"(?i)method|approach|model|framework|algorithm|proposed|architecture", "core", 3),
        (r"(?i)experiment|result|evaluation|empirical|benchmark|ablation", "core", 4),
        (r"(?i)conclusion|discussion|limitation|summary|future work", "core", 5),
    )
)
_TIERS = ("core", "other", "appendix")
_PROTECTED_RANK = 1  # abstract and front matter: kept whole when they take at most half the room
_REASON_REFS = "references/acknowledgements are dropped first when the paper is over budget"
_REASON_DROP = "left out: over the context budget (lower priority than the sections kept)"
_REASON_SHORT = "shortened to fit the context budget (beginning and end kept)"


@dataclass
class _Part:
    """One section with its heading block, its place in the paper and its priority."""

    index: int
    section: Section
    heading: str
    tier: str
    rank: int

    @property
    def cost(self) -> int:
        """Characters this section takes in the shown text, separator included."""
        return len(self.heading) + len(self.section.text) + len(SEPARATOR)

    @property
    def whole(self) -> str:
        """The section as shown when it is kept whole."""
        return self.heading + self.section.text


@dataclass
class _Selection:
    """The blocks shown so far (by section index) and the cuts recorded so far."""

    shown: dict[int, str]
    cuts: list[tuple[int, CutRecord]]

    def cut(self, part: _Part, chars: int, reason: str) -> None:
        """Record that ``chars`` characters of ``part`` were left out, and why."""
        self.cuts.append(
            (part.index, CutRecord(section=part.section.title, chars=chars, reason=reason))
        )


def budget_excerpt(
    paper: PaperText, budget_tokens: int, *, chars_per_token: float = 3.5
) -> Excerpt:
    """The part of ``paper`` that fits in ``budget_tokens``, and what was cut, section by section.

    Raises ValueError for a budget below 1 token or a non-positive ``chars_per_token``.
    """
    if budget_tokens < 1 or chars_per_token <= 0:
        raise ValueError(
            f"budget_tokens must be >= 1 and chars_per_token > 0, got "
            f"{budget_tokens} and {chars_per_token}"
        )
    budget_chars = int(budget_tokens * chars_per_token)
    parts = [_part(i, s) for i, s in enumerate(_sections_of(paper))]
    selection = _Selection(shown={}, cuts=[])
    if sum(p.cost for p in parts) - len(SEPARATOR) <= budget_chars:
        selection.shown = {p.index: p.whole for p in parts}
    else:
        for part in parts:
            if part.tier == "dropped":
                selection.cut(part, len(part.section.text), _REASON_REFS)
        room = budget_chars + len(SEPARATOR)  # the last block carries no separator
        min_piece = min(MIN_SHORTENED_CHARS, budget_chars)
        for tier in _TIERS:
            members = [p for p in parts if p.tier == tier]
            room = _fill_tier(members, room, min_piece, selection)
    return _excerpt(selection, parts, budget_tokens, chars_per_token)


def _sections_of(paper: PaperText) -> list[Section]:
    if paper.sections:
        return list(paper.sections)
    return [Section(title=FRONT_MATTER, text=paper.text)]


def _part(index: int, section: Section) -> _Part:
    heading = "" if section.title == FRONT_MATTER else section.title + SEPARATOR
    tier, rank = _classify(section.title)
    return _Part(index, section, heading, tier, rank)


def _classify(title: str) -> tuple[str, int]:
    """(tier, rank) of a section title; references and the like are tier "dropped"."""
    if _DROP_FIRST.search(title):
        return "dropped", 0
    for pattern, tier, rank in _CLASSES:
        if pattern.search(title):
            return tier, rank
    return "other", 0


def _fill_tier(members: list[_Part], room: int, min_piece: int, selection: _Selection) -> int:
    """Keep ``members`` in ``room`` characters; return the room left.

    When all fit, all are kept whole. Otherwise the abstract and front matter are kept whole
    if each takes at most half the room, and every other member gets ``min(cost, cap)`` for the
    largest common cap that fits; while that cap is below ``min_piece``, the member of lowest
    priority is left out. A member that would get less than ``min_piece`` is left out too.
    """
    ranked = sorted(members, key=lambda p: (p.rank, p.index))
    for part in [p for p in ranked if p.tier == "core" and p.rank <= _PROTECTED_RANK]:
        if part.cost <= room // 2:  # the abstract is kept whole unless it is most of the room
            selection.shown[part.index] = part.whole
            room -= part.cost
            ranked.remove(part)
    cap = _water_level([p.cost for p in ranked], room)
    while cap is not None and cap < min_piece and len(ranked) > 1:
        dropped = ranked.pop()
        selection.cut(dropped, len(dropped.section.text), _REASON_DROP)
        cap = _water_level([p.cost for p in ranked], room)
    for part in ranked:
        allowed = part.cost if cap is None else min(part.cost, cap)
        fits = part.cost <= allowed or allowed >= min_piece
        block = _shorten(part, allowed, selection) if fits else None
        if block is None:
            selection.cut(part, len(part.section.text), _REASON_DROP)
            continue
        selection.shown[part.index] = block
        room -= len(block) + len(SEPARATOR)
    return room


def _water_level(costs: list[int], room: int) -> int | None:
    """None if ``costs`` fit in ``room``; else the largest cap with sum(min(c, cap)) <= room."""
    if sum(costs) <= room:
        return None
    spent = 0
    ordered = sorted(costs)
    for i, cost in enumerate(ordered):
        level = (room - spent) // (len(ordered) - i)
        if level < cost:
            return max(level, 0)
        spent += cost
    return max(ordered[-1], 0)  # not reached: the costs do not fit, so some level is below


def _shorten(part: _Part, allowed: int, selection: _Selection) -> str | None:
    """The block of ``part`` in ``allowed`` characters (separator included), or None."""
    if part.cost <= allowed:
        return part.whole
    body = part.section.text
    keep = allowed - len(SEPARATOR) - len(part.heading) - len(_marker(len(body)))
    if keep < 2:
        return None
    head_chars = math.ceil(keep * _HEAD_SHARE)
    head = _cut_back(body[:head_chars])
    tail = _cut_forward(body[len(body) - (keep - head_chars) :])
    removed = len(body) - len(head) - len(tail)
    selection.cut(part, removed, _REASON_SHORT)
    return part.heading + head + _marker(removed) + tail


def _marker(chars: int) -> str:
    return f"{SEPARATOR}[… {chars} characters cut …]{SEPARATOR}"


def _cut_back(text: str) -> str:
    """``text`` ending at a word boundary (unchanged when none is in its last 80 chars)."""
    space = text.rfind(" ", max(0, len(text) - 80))
    return text[:space].rstrip() if space > 0 else text


def _cut_forward(text: str) -> str:
    """``text`` starting at a word boundary (unchanged when none is in its first 80 chars)."""
    space = text.find(" ", 0, 80)
    return text[space + 1 :].lstrip() if space >= 0 else text


def _excerpt(
    selection: _Selection, parts: list[_Part], budget_tokens: int, chars_per_token: float
) -> Excerpt:
    blocks = [selection.shown[i] for i in sorted(selection.shown)]
    text = SEPARATOR.join(b for b in blocks if b)
    return Excerpt(
        text=text,
        budget_tokens=budget_tokens,
        estimated_tokens=math.ceil(len(text) / chars_per_token),
        kept_sections=[p.section.title for p in parts if p.index in selection.shown],
        cut=[record for _, record in sorted(selection.cuts, key=lambda c: c[0])],
    )
