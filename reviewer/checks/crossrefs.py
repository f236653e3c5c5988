"""References to figures, tables, sections, equations, algorithms and appendices that the
paper does not have, and LaTeX's "??" where a ``\\ref`` did not resolve.

What exists is read from the paper itself: captions ("Figure 3: ..."), numbered headings
("3 Method", "3.2 Setup", "A Appendix"), equation tags ("(4)" at the end of a line) and
algorithm headers. The check is conservative where extraction can miss a target: a kind
with no caption at all is not checked (figures can be images without a text caption), and
only numbers beyond the largest one seen are flagged ("Figure 7" when captions go to 3).
"??" is always flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reviewer.checks.layout import (
    Heading,
    Line,
    SectionKind,
    algorithm_numbers,
    captions,
    equation_tags,
    find_headings,
    paper_lines,
    section_kinds,
    snippet,
)
from reviewer.checks.models import Finding

EVIDENCE_CHARS = 100
MIN_NUMBERED_SECTIONS = 3  # fewer numbered headings than this: the numbering is not trusted

_LIST = r"((?:\s*(?:,|and|&|or|–|-|to)\s*\(?{item}\)?)*)"
_INT = r"\d{1,3}"
_MENTIONS = {
    "figure": re.compile(
        rf"\b(Figures?|Figs?\.)\s*~?\s*({_INT})[a-z]?\b(?!\.\d)"
        + _LIST.format(item=_INT + r"[a-z]?")
    ),
    "table": re.compile(
        rf"\b(Tables?|Tabs?\.)\s*~?\s*({_INT})\b(?!\.\d)" + _LIST.format(item=_INT)
    ),
    "algorithm": re.compile(rf"\b(Algorithms?|Alg\.)\s*~?\s*({_INT})\b" + _LIST.format(item=_INT)),
    "equation": re.compile(
        rf"\b(Equations?|Eqs?\.|Eqns?\.)\s*~?\s*\(?({_INT})\)?(?!\.\d|\d)" + _LIST.format(item=_INT)
    ),
    "section": re.compile(
        r"\b(Sections?|Secs?\.|§)\s*~?\s*(\d{1,2}(?:\.\d{1,2})*)\b(?!\.\d)"
        + _LIST.format(item=r"\d{1,2}(?:\.\d{1,2})*")
    ),
    "appendix": re.compile(
        r"\b(Appendix|Appendices|App\.)\s*~?\s*([A-H])(?![\w’'])(?:\.\d+)*"
        + _LIST.format(item=r"[A-H](?![\w’'])")
    ),
}
_UNRESOLVED = re.compile(
    r"(?:\b(Figures?|Figs?\.|Tables?|Sections?|Secs?\.|Equations?|Eqs?\.|Appendix"
    r"|Algorithms?|Lines?|Theorems?|Lemmas?)\s*~?\s*\(?\s*)?(?<![^\s(\[~])\?\?(?!\?)"
)
# Another paper's figure or section: "their Figure 3", "(Smith et al., 2020, Section 7)",
# "Section 4 of [12]", "Table 8 in their paper".
_OTHER_PAPER_BEFORE = re.compile(
    r"(?:\b(?:their|its|his|her)|\d{4}[a-z]?\)?,|et al\.?,?)\s*(?:see\s+)?$", re.I
)
_OTHER_PAPER_AFTER = re.compile(
    r"^\s+(?:of|in)\s+(?:\[|\(|[A-Z][\w-]+\s+(?:et al|and|&|\(|\[|\d{4})"
    r"|(?:the|their|this|that)\s+(?:\w+\s+)?(?:paper|article|work|book))"
)


@dataclass
class Targets:
    """What the paper has: the largest caption number per kind (None: no caption seen, so
    not checked), the largest numbered section, the last appendix letter."""

    largest: dict[str, int | None] = field(default_factory=dict)
    sections: int | None = None
    appendix: str | None = None

    def missing(self, kind: str, target: str) -> str | None:
        """Why ``target`` (a number, "3.2" or a letter) does not exist, or None if it may."""
        if kind == "section":
            return self._missing_section(target)
        if kind == "appendix":
            beyond = self.appendix is not None and target > self.appendix
            return f"the appendices go up to {self.appendix}" if beyond else None
        largest = self.largest.get(kind)
        if largest is None or int(target) <= largest:
            return None
        seen = "numbered equations" if kind == "equation" else f"{kind} captions"
        return f"the {seen} go up to {largest}"

    def _missing_section(self, target: str) -> str | None:
        """Only the top level is checked ("Section 9", "Section 9.2"): a subsection heading
        is too easily lost in extraction (wrapped, run into its paragraph)."""
        top = int(target.split(".")[0])
        if self.sections is None or top <= self.sections:
            return None
        return f"the numbered sections go up to {self.sections}"


def _numbered_sections(headings: list[Heading]) -> int | None:
    """The largest top-level section number, when there are enough to trust."""
    tops = [int(h.number) for h in headings if h.number.isdigit()]
    return max(tops) if len(tops) >= MIN_NUMBERED_SECTIONS else None


def _last_appendix(headings: list[Heading]) -> str | None:
    """The last appendix letter, when the lettered headings are clearly appendices: two of
    them, or one with a subsection ("A.1"); a single "A ..." line may be a reference title
    ("A Survey of ...") read as a heading."""
    letters = [h.number for h in headings if h.number.isalpha() and len(h.number) == 1]
    subsections = [h.number for h in headings if h.number[:1].isalpha() and h.depth]
    if len(letters) >= 2 or (letters and subsections):
        return max(letters)
    return None


def find_targets(lines: list[Line], headings: list[Heading]) -> Targets:
    """What the paper's captions, headings and equation tags say exists."""
    found = {
        "figure": captions(lines, ("Figure", "Fig.")),
        "table": captions(lines, ("Table", "Tab.")),
        "algorithm": algorithm_numbers(lines),
        "equation": equation_tags(lines),
    }
    return Targets(
        largest={kind: max(numbers) if numbers else None for kind, numbers in found.items()},
        sections=_numbered_sections(headings),
        appendix=_last_appendix(headings),
    )


def page_texts(lines: list[Line], kinds: list[SectionKind]) -> dict[int, str]:
    """Each page's text outside the references, lines joined by spaces."""
    texts: dict[int, list[str]] = {}
    for line, kind in zip(lines, kinds, strict=True):
        if kind != "references":
            texts.setdefault(line.page, []).append(line.text)
    return {page: " ".join(parts) for page, parts in texts.items()}


def _targets_of(match: re.Match[str]) -> list[str]:
    """The numbers (or letters) one mention names: "Figures 2, 3 and 5" -> 2, 3, 5."""
    listed = re.findall(r"\d{1,3}(?:\.\d{1,2})*|\b[A-H]\b", match[3] or "")
    return [match[2], *listed]


def _other_papers(text: str, match: re.Match[str]) -> bool:
    """Whether the mention is of another paper's figure or section ("their Figure 3",
    "Section 4 of Smith et al.")."""
    before = text[max(0, match.start() - 12) : match.start()]
    return bool(_OTHER_PAPER_BEFORE.search(before) or _OTHER_PAPER_AFTER.match(text[match.end() :]))


def _missing(
    page: int, text: str, match: re.Match[str], kind: str, target: str, why: str
) -> Finding:
    article = "an" if kind[0] in "aeiou" else "a"
    return Finding(
        check="cross_refs",
        kind="missing_target",
        page=page,
        message=f"'{match[1]} {target}' refers to {article} {kind} the paper does not have "
        f"({why}).",
        evidence=snippet(text, match.start(), match.end(), EVIDENCE_CHARS),
    )


def missing_targets(page: int, text: str, targets: Targets) -> list[Finding]:
    """Mentions on one page of targets the paper does not have, one per target."""
    found: dict[tuple[str, str], Finding] = {}
    for kind, pattern in _MENTIONS.items():
        for match in pattern.finditer(text):
            if _other_papers(text, match):
                continue
            for target in _targets_of(match):
                why = targets.missing(kind, target)
                if why and (kind, target) not in found:
                    found[(kind, target)] = _missing(page, text, match, kind, target, why)
    return list(found.values())


def unresolved_references(page: int, text: str) -> list[Finding]:
    """Every "??" on one page: a ``\\ref`` (or ``\\eqref``) whose label LaTeX never saw."""
    findings = []
    for match in _UNRESOLVED.finditer(text):
        what = f"'{match[1]} ??'" if match[1] else "'??'"
        findings.append(
            Finding(
                check="cross_refs",
                kind="unresolved_reference",
                page=page,
                message=f"{what} in the text: a reference LaTeX could not resolve (its label "
                "does not exist).",
                evidence=snippet(text, match.start(), match.end(), EVIDENCE_CHARS),
            )
        )
    return findings


def cross_ref_findings(pages: list[str]) -> list[Finding]:
    """References to missing figures, tables, sections, equations, algorithms or appendices
    (``missing_target``) and LaTeX's "??" (``unresolved_reference``), each with its page
    and the text around it. The references list is not read."""
    lines = paper_lines(pages)
    headings = find_headings(lines)
    kinds = section_kinds(lines, headings)
    targets = find_targets(lines, headings)
    findings: list[Finding] = []
    for page, text in sorted(page_texts(lines, kinds).items()):
        findings += unresolved_references(page, text)
        findings += missing_targets(page, text, targets)
    return findings
