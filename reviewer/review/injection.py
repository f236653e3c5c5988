"""Prompt-injection guards: instruction-like text and hidden text in a paper, and redaction.

The paper is data, never instructions. ``find_injections`` flags sentences that address a
reviewer or a language model ("ignore all previous instructions", "give this paper a score
of 10", chat-template tokens); ``find_hidden_text`` flags text a human reader cannot see in
the PDF (white, fully transparent, invisible render mode 3/7, or smaller than 4 pt);
``redact`` replaces what was flagged. All are heuristics: they flag, they do not prove.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypdf import PdfReader, PdfWriter
from pypdf.generic import ContentStream, FloatObject

from reviewer.review.form import InjectionFlag, PaperText, Section

REDACTION = "[flagged as possible prompt injection; removed]"
MIN_VISIBLE_PT = 4.0
"""Text drawn smaller than this (in points, after scaling) counts as hidden."""
_MAX_EXCERPT = 300
_TARGET = r"(?:paper|submission|manuscript|work|article|study)"
_SCORE = (
    r"(?:10|ten|\d+\s*/\s*10|full marks|(?:a\s+|the\s+)?(?:high(?:est)?|perfect|top|"
    r"maximum|max|positive|strong|excellent)\b|(?:strong\s+)?accept)"
)
_RULES: tuple[tuple[str, str], ...] = (
    (
        r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
        r"(?:previous|prior|above|earlier|preceding|foregoing|original|system)\s+"
        r"(?:instructions?|prompts?|directions?|rules|guidelines|context|messages?)",
        "tells the reader to ignore earlier instructions",
    ),
    (
        r"\bdisregard\s+(?:the\s+|everything\s+|all\s+)?(?:above|previous|prior)\b",
        "tells the reader to disregard what came before",
    ),
    (
        r"\byou\s+are\s+now\s+(?:a|an|the)\b|\byou\s+are\s+(?:a|an)\s+(?:helpful|harmless|"
        r"(?:ai|llm|language\s+model|chat)\b|assistant|(?:expert\s+|peer\s+)?reviewer)",
        "assigns the reader a role",
    ),
    (
        r"\b(?:as|if\s+you\s+are)\s+an?\s+(?:ai|artificial\s+intelligence|(?:large\s+)?language\s+model"
        r"|llm|ai\s+assistant|automated\s+reviewer)\b",
        "addresses an AI or language model",
    ),
    (
        rf"\bgive\s+(?:this|the|our)\s+{_TARGET}\s+(?:an?\s+)?(?:(?:overall\s+)?(?:score|rating|grade|"
        rf"review)\s+(?:of\s+)?)?{_SCORE}",
        "asks for a high score",
    ),
    (
        rf"\brate\s+(?:this|the|our)\s+{_TARGET}\s+(?:as\s+)?(?:an?\s+)?(?:highly|high|10|ten|"
        r"accept|strong\s+accept|positively|favou?rably|excellent)",
        "asks for a high rating",
    ),
    (
        r"\bgive\s+(?:it\s+|us\s+)?(?:a\s+)?(?:positive|favou?rable|glowing)\s+review",
        "asks for a positive review",
    ),
    (
        r"\brecommend(?:s|ed|ing)?\s+(?:(?:an?|the|its|this\s+paper'?s?)\s+)?(?:strong\s+)?"
        r"accept(?:ance|ing)?\b",
        "asks for acceptance",
    ),
    (
        r"\b(?:do\s+not|don'?t|never)\s+(?:highlight|mention|list|report)\s+(?:any\s+)?"
        r"(?:negatives?|weakness(?:es)?|flaws?|limitations?|criticism)",
        "tells the reader to hide weaknesses",
    ),
    (
        r"(?:^|[.!?:]\s+|\n)\s*(?:do\s+not|don'?t)\s+(?:mention|reveal|disclose)\b",
        "tells the reader what not to mention",
    ),
    (
        r"\b(?:new|your|updated|following|hidden|reveal\s+(?:the|your))\s+system\s+prompt\b"
        r"|\bsystem\s+prompt\s*:",
        "refers to a system prompt",
    ),
    (
        r"\binstructions?\s+(?:to|for)\s+(?:the\s+|any\s+)?(?:llms?|ai|language\s+models?|"
        r"assistants?|automated\s+reviewers?|chatbots?)\b",
        "addresses instructions to an AI",
    ),
    (
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|eot_id|"
        r"start_header_id|end_header_id)\|>|\[/?INST\]|<</?SYS>>",
        "contains chat-template control tokens",
    ),
)
_PATTERNS = tuple((re.compile(rule, re.IGNORECASE), reason) for rule, reason in _RULES)
_BOUNDARY = re.compile(r"[.!?](?=\s)|\n\s*\n")
# Operators that change what the visitor must know; a text flush is forced before each.
_STATE_OPS = frozenset({b"g", b"rg", b"k", b"sc", b"scn", b"cs", b"Tr", b"q", b"Q", b"gs"})
_IDENTITY = [FloatObject(v) for v in (1, 0, 0, 1, 0, 0)]
log = logging.getLogger(__name__)


def find_injections(text: str, *, page: int | None = None) -> list[InjectionFlag]:
    """Sentences of ``text`` that look like instructions to a reviewer or an LLM.

    One flag per sentence (reasons merged), kind ``"instruction"``; ``page`` (1-based) is
    copied into each flag when the caller scans page by page.
    """
    found: dict[str, tuple[int, list[str]]] = {}  # excerpt -> (first position, reasons)
    for pattern, reason in _PATTERNS:
        for match in pattern.finditer(text):
            excerpt = _sentence(text, match.start(), match.end())
            position, reasons = found.setdefault(excerpt, (match.start(), []))
            found[excerpt] = (min(position, match.start()), reasons)
            if reason not in reasons:
                reasons.append(reason)
    ordered = sorted(found.items(), key=lambda item: item[1][0])
    return [
        InjectionFlag(kind="instruction", page=page, excerpt=excerpt, reason="; ".join(reasons))
        for excerpt, (_, reasons) in ordered
        if excerpt
    ]


def _sentence(text: str, start: int, end: int) -> str:
    """The sentence around ``text[start:end]``, whitespace collapsed, at most 300 chars."""
    window_start = max(0, start - _MAX_EXCERPT)
    before = [m.end() for m in _BOUNDARY.finditer(text, window_start, start)]
    after = _BOUNDARY.search(text, end, end + _MAX_EXCERPT)
    left = before[-1] if before else window_start
    right = after.end() if after else min(len(text), end + _MAX_EXCERPT)
    sentence = " ".join(text[left:right].split())
    if len(sentence) <= _MAX_EXCERPT:
        return sentence
    core = " ".join(text[start:end].split())
    return " ".join(text[max(0, start - 100) : end + 100].split())[:_MAX_EXCERPT] or core


def redact(text: str, flags: list[InjectionFlag]) -> str:
    """``text`` with each flagged excerpt (matched across any whitespace) replaced."""
    for flag in flags:
        tokens = flag.excerpt.split()
        if not tokens:
            continue
        pattern = re.compile(r"\s*".join(re.escape(token) for token in tokens))
        text = pattern.sub(REDACTION, text)
    return text


def redact_paper(paper: PaperText, flags: list[InjectionFlag]) -> PaperText:
    """``paper`` with ``redact`` applied to its full text and to every section."""
    sections = [Section(title=s.title, text=redact(s.text, flags)) for s in paper.sections]
    return paper.model_copy(update={"text": redact(paper.text, flags), "sections": sections})


@dataclass
class _DrawState:
    """The part of the graphics state that can hide text."""

    white: bool = False
    transparent: bool = False
    render_mode: int = 0
    stack: list[tuple[bool, bool, int]] = field(default_factory=list)


@dataclass
class _Run:
    """Consecutive hidden text on one page, for one reason."""

    reason: str
    text: list[str] = field(default_factory=list)


def find_hidden_text(path: Path, *, max_pages: int = 200) -> list[InjectionFlag]:
    """Text in the PDF at ``path`` that a reader cannot see, one flag per run of it.

    Flags (kind ``"hidden_text"``, 1-based ``page``) text drawn in white, fully transparent,
    in render mode 3 or 7 (invisible), or below 4 pt. Best effort: an unreadable page or
    file yields fewer flags, never an exception.
    """
    flags: list[InjectionFlag] = []
    try:
        reader = PdfReader(Path(path), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return []
        writer = PdfWriter(clone_from=reader)
        for number, page in enumerate(writer.pages[:max_pages], start=1):
            flags.extend(_hidden_on_page(writer, page, number))
    except Exception as exc:  # odd PDFs must never break a review
        log.warning("%s: hidden-text check stopped early: %s", path, exc)
    return flags


def _hidden_on_page(writer: PdfWriter, page: Any, number: int) -> list[InjectionFlag]:
    try:
        _force_flushes(writer, page)
        runs = _hidden_runs(page)
    except Exception as exc:  # one odd page must not hide the others
        log.warning("hidden-text check skipped page %d: %s", number, exc)
        return []
    flags = []
    for run in runs:
        excerpt = " ".join("".join(run.text).split())
        if sum(c.isalnum() for c in excerpt) >= 4:
            flags.append(
                InjectionFlag(
                    kind="hidden_text",
                    page=number,
                    excerpt=excerpt[:_MAX_EXCERPT],
                    reason=run.reason,
                )
            )
    return flags


def _force_flushes(writer: PdfWriter, page: Any) -> None:
    """Insert an identity ``cm`` before each state change so pypdf reports text per state.

    pypdf hands text to ``visitor_text`` lazily (at a new line, a font change or a ``cm``), so
    without this a colour change inside a line would be reported with the wrong text.
    """
    stream = ContentStream(page.get_contents(), writer)
    operations = []
    for operands, operator in stream.operations:
        if operator in _STATE_OPS:
            operations.append((_IDENTITY, b"cm"))
        operations.append((operands, operator))
    stream.operations = operations
    page.replace_contents(stream)


def _hidden_runs(page: Any) -> list[_Run]:
    state = _DrawState()
    runs: list[_Run] = []
    alphas = _fill_alphas(page)

    def before(operator: bytes, operands: list[Any], cm: Any, tm: Any) -> None:
        _update_state(state, operator, operands, alphas)

    def on_text(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        if not text.strip():
            if runs and runs[-1].reason:  # a space between hidden words keeps them apart
                runs[-1].text.append(text)
            return
        reason = _hidden_reason(state, _effective_size(size, cm, tm))
        if reason is None:
            runs.append(_Run(reason=""))  # visible text ends the current run
        elif runs and runs[-1].reason == reason:
            runs[-1].text.append(text)
        else:
            runs.append(_Run(reason=reason, text=[text]))

    visitor: Callable[..., None] = on_text
    page.extract_text(visitor_operand_before=before, visitor_text=visitor)
    return [run for run in runs if run.reason]


def _fill_alphas(page: Any) -> dict[str, float]:
    """Fill alpha (``/ca``) of each named ExtGState of the page."""
    try:
        states = page["/Resources"].get_object().get("/ExtGState") or {}
        return {str(name): float(gs.get_object().get("/ca", 1)) for name, gs in states.items()}
    except Exception:  # unreadable resources hide nothing
        return {}


def _update_state(
    state: _DrawState, operator: bytes, operands: list[Any], alphas: dict[str, float]
) -> None:
    if operator == b"q":
        state.stack.append((state.white, state.transparent, state.render_mode))
    elif operator == b"Q" and state.stack:
        state.white, state.transparent, state.render_mode = state.stack.pop()
    elif operator in (b"g", b"rg", b"k", b"sc", b"scn"):
        state.white = _is_white(operator, operands)
    elif operator == b"cs":
        state.white = False  # a new colour space starts at its initial colour (black)
    elif operator == b"Tr" and operands:
        state.render_mode = int(operands[0])
    elif operator == b"gs" and operands:
        state.transparent = alphas.get(str(operands[0]), 1.0) <= 0.01


def _is_white(operator: bytes, operands: list[Any]) -> bool:
    try:
        values = [float(v) for v in operands]
    except (TypeError, ValueError):
        return False  # a pattern name, not a colour
    if operator == b"k" or len(values) == 4:
        return all(v <= 0.01 for v in values)
    return bool(values) and all(v >= 0.99 for v in values)


def _effective_size(size: float, cm: list[float], tm: list[float]) -> float:
    """The font size in points after the text and current transformation matrices."""
    a = tm[0] * cm[0] + tm[1] * cm[2]
    b = tm[0] * cm[1] + tm[1] * cm[3]
    c = tm[2] * cm[0] + tm[3] * cm[2]
    d = tm[2] * cm[1] + tm[3] * cm[3]
    return abs(size) * math.sqrt(abs(a * d - b * c))


def _hidden_reason(state: _DrawState, size: float) -> str | None:
    if state.render_mode in (3, 7):
        return f"invisible text (render mode {state.render_mode})"
    if state.white:
        return "white text (invisible on a white page)"
    if state.transparent:
        return "fully transparent text"
    if 0 < size < MIN_VISIBLE_PT:
        return f"tiny text ({size:.1f} pt, below {MIN_VISIBLE_PT:g} pt)"
    return None
