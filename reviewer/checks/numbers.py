"""Numbers the text claims that the paper's own tables do not support.

The claims are the results a paper states in its abstract, introduction, results,
discussion and conclusion: "improves accuracy by 4.2%", "reaches 0.93", "a 12% reduction",
"from 0.81 to 0.85", "2.3x faster". A claim is supported when a table value equals it at
its printed precision (85% = 0.85), or when a difference, a relative change or a ratio of
two values of one table column or row does (a mean, for claims about averages). What is
not a result is left alone: integers without a unit (years, counts, steps, sizes), section
and figure numbers, versions, settings ("learning rate 0.001", "weight of 0.1"), thresholds
("to reach 99% accuracy"), bounds ("over 90%"), ranges, and other papers' numbers.

Precision matters more than recall: a paper without a table gets no finding at all (its
claims cannot be checked; the caller says so), and every rule above errs towards silence.
The write-up's own check (``scientist.writeup.checks.number_is_allowed``) matches numbers
against the results the pipeline measured; this one has only the paper.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

from reviewer.checks.layout import (
    Heading,
    Line,
    SectionKind,
    caption_line,
    find_headings,
    paper_lines,
    section_kinds,
    snippet,
)
from reviewer.checks.models import Finding
from reviewer.checks.tables import (
    Candidates,
    Cell,
    Interval,
    Table,
    find_tables,
    mean_candidates,
    pair_candidates,
    parse_number,
    row_blocks,
    unread_tables,
)

ClaimKind = Literal["value", "percent", "points", "factor"]
Change = Literal["none", "up", "down", "either"]
APPROXIMATE = 0.05  # "approximately 40%" is supported by anything within 5%
MAX_EVIDENCE = 300

_CLAIM = re.compile(
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(\s?(?:%|percent\b|percentage points?\b|points?\b|pp\b|×|x\b|-fold\b|fold\b|times\b))?"
)
_REFERENCE_WORDS = (
    r"(?:Tables?|Tab\.|Figures?|Figs?\.|(?:Sub)?[Ss]ections?|(?:Sub)?[Ss]ecs?\.?|§|Eqs?\.|Eqns?\."
    r"|Equations?|Appendix|Appx?\.?|Algorithms?|Alg\.|Theorems?|Lemmas?|Corollary|Definitions?"
    r"|Propositions?|Assumptions?|Remarks?|Claims?|Properties|Property|Conditions?|Examples?"
    r"|Problems?|Cases?|Settings?|Experiments?|Exp\.|Tasks?|Rounds?|Levels?|Phases?|Parts?"
    r"|Chapters?|Rows?|Columns?|Lines?|Items?|Runs?|Steps?|Stages?|Layers?|Epochs?|Iterations?"
    r"|Versions?|version|v|Python|PyTorch|CUDA|TensorFlow|JAX|GPT|Llama|LLaMA|Qwen|Gemma)"
)
_AFTER_REFERENCE = re.compile(
    _REFERENCE_WORDS + r"[\s~(]*(?:[\d.]+[a-z]?\)?\s*(?:,|and|&|or|to|–|-)\s*)*\(?$"
)
_OPERATOR = re.compile(r"[<>≤≥=±]\s*$")
_BOUND = re.compile(
    r"\b(?:more|less|greater|fewer|higher|lower|better|worse|larger|smaller) than\s*$"
    r"|\b(?:over|under|above|below|beyond|within|exceeds?|exceeding|at least|at most)\s*$",
    re.I,
)
_APPROXIMATE = re.compile(
    r"(?:approximately|approx\.|about|around|roughly|nearly|almost|some|~|≈|∼)\s*$", re.I
)
_THRESHOLD = re.compile(
    r"\b(?:to|until|before|of|when)\s+(?:reach|reaching|achieve|achieving|attain|attaining|hit)"
    r"\s*$|\bsteps to\s*$|\bthreshold(?: of)?\s*$|\btarget(?: of)?\s*$",
    re.I,
)
_NOT_RESULT_AFTER = re.compile(
    r"^\s*(?:probability|of (?:the )?(?:training|data|dataset|samples|examples|tokens|parameters"
    r"|time|cases|runs)|confidence|CI\b|quantile|percentile|split|dropout|masking|noise)",
    re.I,
)
_COMPARATIVE_AFTER = re.compile(
    r"^\s*(?:faster|slower|more|less|fewer|larger|smaller|higher|lower|speed-?up|improvement"
    r"|reduction|increase|decrease|better|worse|cheaper)",
    re.I,
)
_SETTING_BEFORE = re.compile(
    r"(?:learning rates?|\blr\b|batch size|weight decay|dropout|warm-?up|momentum|temperature"
    r"|decay rate|\bbetas?\b|epsilon|weight of|weighted (?:at|by)|coefficient|threshold|seeds?"
    r"|probabilit(?:y|ies)|ratio of|split|radius|window|kernel|stride|horizon|budget|lambda"
    r"|alpha|gamma|sigma|[αβγλτσηϵε])[^.;,]{0,25}$|\bset(?:s|ting)?\b[^.;]{0,60}$",
    re.I,
)
_FIGURE_MENTION = re.compile(r"\b(?:Figs?\.|Figures?)\s*~?\s*\d")
_NOT_RESULT_UNIT = re.compile(
    r"^\s*(?:hours?|hrs?|days?|minutes?|mins?|[KMGT]i?B|GHz|[GT]?FLOPs|parameters|params"
    r"|billion|million|thousand|[KMB]\b)",
)
_HYPOTHETICAL = re.compile(
    r"\b(?:hypothes\w*|expect\w*|aims?|goal|could|might|would|predict\w*|anticipat\w*|hope)\b",
    re.I,
)
_OTHER_WORK = re.compile(
    r"\bet al\.|\[\d+(?:\s*[,–-]\s*\d+)*\]|\b[A-Z][A-Za-z-]+,? \(?(?:19|20)\d\d[a-z]?\)"
)
_AVERAGE = re.compile(r"\b(?:average|averaged|mean|on average)\b", re.I)
_RESULT_WORDS = re.compile(
    r"reduc|improv|outperform|achiev|increas|decreas|gain|better|worse|faster|slower|speed-?up",
    re.I,
)
_HEDGE = r"(?:up to|about|approximately|roughly|nearly|almost|over|around|~|≈)?\s*"
_CHANGE_NOUNS = (
    r"reduction|decrease|drop|decline|cut|improvement|gain|increase|rise|boost|speed-?up"
    r"|advantage|margin|gap|difference|slowdown|acceleration"
)
_CHANGE_BEFORE = re.compile(
    rf"\bby\s+{_HEDGE}\(?$|\b(?:{_CHANGE_NOUNS})s?\b[^.;:]{{0,50}}?\bof\s+{_HEDGE}\(?$"
    rf"|\b(?:{_CHANGE_NOUNS})s?\s*\(\s*{_HEDGE}$",
    re.I,
)
_CHANGE_AFTER = re.compile(
    r"^\s*(?:relative\s+|absolute\s+)?(?:reduction|decrease|drop|decline|cut|lower|less|fewer"
    r"|smaller|shorter|faster|improvement|gain|increase|rise|higher|more|larger|longer|slower"
    r"|better|worse|boost|speed-?up|advantage|margin|gap|difference)\b",
    re.I,
)
_POINTS_METRIC = re.compile(
    r"\b(?:accura\w*|precision|recall|F1|AUC|errors?|success|rates?|win\w*|scores?|points?)\b",
    re.I,
)
_DOWN = re.compile(r"\b(?:reduc|decreas|drop|declin|cut|fewer|lower)\w*", re.I)
_UP = re.compile(r"\b(?:increas|rise|rising|rose|higher|larger|longer)\w*", re.I)
_NUMERIC_TOKEN = re.compile(r"\d|^[^\w\s.,;:()\[\]'\"“”’]+$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z“\"])|\s*•\s*")


@dataclass(frozen=True)
class Passage:
    """Consecutive lines of one section, joined, with the page where each line starts."""

    section: str
    text: str
    starts: list[tuple[int, int]]

    def page_at(self, offset: int) -> int:
        """The page of the character at ``offset``."""
        page = self.starts[0][1]
        for start, line_page in self.starts:
            if start > offset:
                break
            page = line_page
        return page


@dataclass(frozen=True)
class Claim:
    """A number the text states as a result."""

    literal: str
    value: float
    unit: float
    kind: ClaimKind
    change: Change
    approximate: bool
    averaged: bool
    page: int
    sentence: str
    section: str

    def interval(self) -> Interval:
        """The values this claim may stand for: its rounding or truncation, wider if hedged."""
        if self.approximate:
            slack = max(self.unit, abs(self.value) * APPROXIMATE)
            return (self.value - slack, self.value + slack)
        return (self.value - self.unit / 2, self.value + self.unit)


class Support:
    """The values a paper's tables support, for checking claims against them, and the
    numbers it states elsewhere (settings, table headers), which a claim may repeat as
    printed (exactly: "15%" for "(15%)", never "1.1" for "1")."""

    def __init__(self, tables: list[Table], stated: list[Cell]) -> None:
        self.tables = tables
        self.plain = Candidates()
        for table in tables:
            self.plain.extend(pair_candidates(table))
        literals = [*stated, *(cell for table in tables for cell in table.literals)]
        self.stated = {cell.value for cell in literals}
        self._averaged: Candidates | None = None

    def averaged(self) -> Candidates:
        """With the means added (computed on the first claim about an average)."""
        if self._averaged is None:
            self._averaged = Candidates()
            self._averaged.extend(self.plain)
            for table in self.tables:
                self._averaged.extend(mean_candidates(table))
        return self._averaged

    def covers(self, claim: Claim) -> bool:
        """Whether a table value or combination of the kind the claim may be matches it."""
        if claim.value in self.stated or (
            claim.kind == "percent" and claim.value / 100 in self.stated
        ):
            return True
        candidates = self.averaged() if claim.averaged else self.plain
        low, high = claim.interval()
        for family, scale in _families(claim, candidates):
            lo, hi = low * scale, high * scale
            if any(c_low <= hi and c_high >= lo for c_low, c_high in family):
                return True
        return False


def _families(claim: Claim, found: Candidates) -> list[tuple[list[Interval], float]]:
    """Which candidates a claim is compared with, and at which scale. A value ("0.93",
    "97.0%") is compared with values, as printed or scaled (97.0% = 0.970, 0.85 = 85.0); a
    change ("by 4.2%", "a 12% reduction") with differences and with the relative changes its
    wording allows; a factor ("2.3x") with ratios; percentage points with differences."""
    if claim.kind == "factor":
        return [(found.ratios, 1.0), (found.values, 1.0)]
    if claim.kind == "points":
        return [(found.differences, 1.0), (found.fraction_differences, 0.01)]
    percent = claim.kind == "percent"
    families = [(found.values, 1.0), (found.fractions, 0.01) if percent else (found.values, 100.0)]
    if claim.change == "none":
        return families
    families += [(found.differences, 1.0)]  # a difference of two percentages, or of values
    if not percent:
        families += [(found.differences, 100.0)]
    if _POINTS_METRIC.search(claim.sentence):  # "improves accuracy by 4.2%": points
        families += [(found.fraction_differences, 0.01)]
    if percent or claim.value >= 1:  # a decimal here is a percentage that lost its '%'
        if claim.change in ("up", "either"):
            families.append((found.increases, 1.0))
        if claim.change in ("down", "either"):
            families.append((found.decreases, 1.0))
    return families


def number_findings(pages: list[str]) -> list[Finding]:
    """Numeric claims in the abstract, introduction, results, discussion and conclusion that
    no table value (or difference, relative change, ratio or mean of table values) supports.
    No table, no finding: the claims cannot be checked; nor when a table's rows cannot be
    read (an image, a layout the text lost), since a claim may come from that table."""
    lines = paper_lines(pages)
    headings = find_headings(lines)
    kinds = section_kinds(lines, headings)
    tables = find_tables(lines, kinds)
    if not tables or unread_tables(lines, tables):
        return []
    skip = set().union(*(table.lines for table in tables)) | figure_caption_lines(lines)
    skip |= {i for block in row_blocks(lines, kinds) for i, _ in block}
    literals = setup_numbers(passages(lines, kinds, headings, skip, "setup"))
    support = Support(tables, literals)
    findings: dict[tuple[str, str], Finding] = {}
    for passage in passages(lines, kinds, headings, skip, "claims"):
        for claim in claims_in(passage):
            if not support.covers(claim):
                findings.setdefault((claim.literal, claim.sentence), _finding(claim))
    return list(findings.values())


def _finding(claim: Claim) -> Finding:
    unit = {"percent": "%", "points": " points", "factor": "x"}.get(claim.kind, "")
    return Finding(
        check="numbers",
        kind="unsupported_number",
        page=claim.page,
        message=(
            f"{claim.section} reports {claim.literal}{unit}, which no table value, nor any "
            "difference, relative change or ratio of table values, supports."
        ),
        evidence=_evidence(claim),
    )


def _evidence(claim: Claim) -> str:
    sentence = claim.sentence
    if len(sentence) <= MAX_EVIDENCE:
        return sentence
    at = sentence.find(claim.literal)
    return snippet(sentence, max(at, 0), max(at, 0) + len(claim.literal), MAX_EVIDENCE)


def figure_caption_lines(lines: list[Line]) -> set[int]:
    """Lines of figure captions ("Figure 3: ..." up to the line that ends with a full stop)."""
    found: set[int] = set()
    for index, line in enumerate(lines):
        if caption_line(line.text) != "Figure":
            continue
        end = index
        while end < min(len(lines) - 1, index + 3) and not lines[end].text.endswith("."):
            end += 1
        found.update(range(index, end + 1))
    return found


def _section_name(heading: Heading | None) -> str:
    if heading is None or heading.title.lower() == "abstract":
        return "The abstract"
    title = heading.title if not heading.title.isupper() else heading.title.title()
    return f"Section {heading.number} ({title})" if heading.number else f"Section '{title}'"


def passages(
    lines: list[Line],
    kinds: list[SectionKind],
    headings: list[Heading],
    skip: set[int],
    kind: SectionKind,
) -> Iterator[Passage]:
    """The runs of lines of sections of ``kind``, one passage per heading, ``skip`` left out."""
    by_line = {heading.index: heading for heading in headings}
    current: Heading | None = None
    parts: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        if index in by_line:
            yield from _passage(parts, current)
            current, parts = by_line[index], []
        elif kinds[index] == kind and index not in skip:
            parts.append((line.page, line.text))
    yield from _passage(parts, current)


def _passage(parts: list[tuple[int, str]], heading: Heading | None) -> Iterator[Passage]:
    if not parts:
        return
    text, starts = "", []
    for page, line in parts:
        if text.endswith("-") and line[:1].islower() and text[-2:-1].isalpha():
            text = text[:-1]
        elif text:
            text += " "
        starts.append((len(text), page))
        text += line
    yield Passage(_section_name(heading), text, starts)


def sentences(passage: Passage) -> Iterator[tuple[int, str]]:
    """(offset, sentence) for each sentence of ``passage``."""
    offset = 0
    for part in _SENTENCE_END.split(passage.text):
        start = passage.text.index(part, offset)
        offset = start + len(part)
        yield start, part


def setup_numbers(setup: Iterator[Passage]) -> list[Cell]:
    """Numbers the method and setup state as settings (sentences that report no result):
    a claim that repeats one ("combined augmentation at 15%") is no result to check."""
    found = []
    for passage in setup:
        for _, sentence in sentences(passage):
            if _RESULT_WORDS.search(sentence):
                continue
            for match in _CLAIM.finditer(sentence):
                cell = parse_number(match[1])
                if cell is not None and ("." in match[1] or match[2]):
                    found.append(cell)
    return found


def claims_in(passage: Passage) -> Iterator[Claim]:
    """The numbers ``passage`` states as results."""
    for offset, sentence in sentences(passage):
        if (
            _OTHER_WORK.search(sentence)
            or _HYPOTHETICAL.search(sentence)
            or _FIGURE_MENTION.search(sentence)  # values read off a plot, not a table
            or caption_line(sentence)
            or _number_debris(sentence)
        ):
            continue
        found = []
        for match in _CLAIM.finditer(sentence):
            claim = _claim(passage, sentence, match, passage.page_at(offset + match.start()))
            if claim is not None:
                found.append(claim)
        yield from _shared_changes(found)


def _shared_changes(claims: list[Claim]) -> list[Claim]:
    """Claims of one sentence: a number listed with a change of its kind is a change too
    ("reductions of 6.2% for circle and 3.1% for moons")."""
    changing = {claim.kind for claim in claims if claim.change != "none"}
    return [
        replace(claim, change="either")
        if claim.change == "none" and claim.kind in changing
        else claim
        for claim in claims
    ]


def _change(sentence: str, match: re.Match[str]) -> Change:
    """Whether the number at ``match`` is a change and which way its wording says it goes."""
    before, after = sentence[: match.start()], sentence[match.end() :]
    local = _CHANGE_AFTER.match(after)
    if not local and not _CHANGE_BEFORE.search(before[-80:]):
        return "none"
    words = local[0] if local else re.split(r"[;:•]", before[-80:])[-1]
    down, up = bool(_DOWN.search(words)), bool(_UP.search(words))
    return "down" if down and not up else "up" if up and not down else "either"


def _claim(passage: Passage, sentence: str, match: re.Match[str], page: int) -> Claim | None:
    literal, unit_text = match[1], (match[2] or "").strip()
    before, after = sentence[: match.start()], sentence[match.end() :]
    cell = parse_number(literal)
    if cell is None or not _is_result_number(literal, unit_text, before, after):
        return None
    return Claim(
        literal=literal,
        value=cell.value,
        unit=cell.unit,
        kind=_kind(unit_text),
        change=_change(sentence, match),
        approximate=bool(_APPROXIMATE.search(before[-20:])),
        averaged=bool(_AVERAGE.search(sentence)),
        page=page,
        sentence=sentence.strip(),
        section=passage.section,
    )


def _kind(unit: str) -> ClaimKind:
    if unit in {"%", "percent"}:
        return "percent"
    if unit.startswith(("percentage", "pp", "point")):
        return "points"
    return "factor" if unit else "value"


def _number_debris(sentence: str) -> bool:
    """Whether a "sentence" is mostly numbers: a table or a plot's axis the extraction ran
    into the prose (six numeric tokens or more, a quarter of the tokens or more)."""
    tokens = sentence.split()
    numeric = sum(bool(_NUMERIC_TOKEN.search(token)) for token in tokens)
    return numeric >= 6 and numeric >= len(tokens) / 4


def _among_numbers(before: str, after: str) -> bool:
    """Whether the number sits among other numbers and symbols, as in a table row, a plot's
    axis or a list of settings, rather than in a sentence: three of the three tokens before
    and after it hold a digit or are symbols."""
    near = [*before.split()[-3:], *after.split()[:3]]
    return sum(bool(_NUMERIC_TOKEN.search(token)) for token in near) >= 3


def _is_result_number(literal: str, unit: str, before: str, after: str) -> bool:
    """Whether the number reads as a result: a decimal, a percentage or a factor, not glued
    to a word or another number, not a reference, a setting, a threshold, a bound or a range."""
    previous = before[-1:] if before else " "
    if previous.isalnum() or previous in "._/:^\\-−–,'’":
        return False
    if re.match(r"^\s?[-–]\s?\d", after):
        return False  # a range such as 0.1–0.3
    if not unit and (after[:1].isalnum() or re.match(r"^(?:\.\d|-[A-Za-z])", after)):
        return False
    if unit in {"×", "x"} and re.match(r"^\s?\d", after):
        return False  # a size such as 5×5
    factor = unit in {"×", "x", "fold", "-fold", "times"}
    if factor and "." not in literal and not _COMPARATIVE_AFTER.match(after):
        return False
    if (not unit or unit.startswith("point")) and "." not in literal:
        return False  # a count ("20 epochs", "100 points"), a year, a size
    recent = before[-60:]
    return not (
        _among_numbers(before, after)
        or _NOT_RESULT_UNIT.match(after)
        or _AFTER_REFERENCE.search(recent)
        or _OPERATOR.search(recent)
        or _BOUND.search(recent)
        or _THRESHOLD.search(recent)
        or _SETTING_BEFORE.search(recent)
        or _NOT_RESULT_AFTER.match(after)
    )
