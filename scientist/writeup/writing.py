"""Model calls of the writer role (draft, checklist fix, compile fix, shorten) and the
deterministic enforcement applied to every reply before it enters the paper."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from core.settings import BudgetSettings
from gateway import Gateway, Ledger, LedgerEntry
from gateway.ledger import RUN_BUDGET, BudgetNames
from gateway.profiles import OutputProfile
from gateway.prompts import render
from scientist.ideas.models import Idea
from scientist.writeup.checks import (
    CheckContext,
    drop_invented_sentences,
    run_checklist,
    strip_bad_refs,
)
from scientist.writeup.citations import restore_citations
from scientist.writeup.deps import WriteupDeps
from scientist.writeup.latex import clean_model_latex, keep_known_cites, plain_to_latex
from scientist.writeup.models import CitationRecord, Issue, SectionRecord
from scientist.writeup.sections import SECTION_BY_NAME, SectionSpec

PROMPTS = Path(__file__).parent / "prompts"


class Usage(BaseModel):
    """Tokens and calls of one piece of work."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0


class _TeeLedger(Ledger):
    """Records into its own list and the run's ledger; budgets are the run's."""

    def __init__(self, parent: Ledger) -> None:
        super().__init__(None)
        self._parent = parent

    def record(self, entry: LedgerEntry) -> None:
        super().record(entry)
        self._parent.record(entry)

    def check_budget(
        self,
        budget: BudgetSettings,
        *,
        tokens: int,
        cost_usd: float,
        names: BudgetNames = RUN_BUDGET,
    ) -> None:
        self._parent.check_budget(budget, tokens=tokens, cost_usd=cost_usd, names=names)


def writer_profile(deps: WriteupDeps) -> OutputProfile:
    """The output profile of the writer model: its output cap, length targets, shown context."""
    return deps.settings.profile(deps.settings.llm.models.writer)


def ask_writer(deps: WriteupDeps, user: str) -> tuple[str, Usage]:
    """One writer call with the shared system prompt; its text and its token use."""
    ledger = _TeeLedger(deps.gateway.ledger)
    gateway: Gateway = deps.gateway.with_ledger(ledger)
    messages = [
        {"role": "system", "content": render(PROMPTS, "writer_system.j2")},
        {"role": "user", "content": user},
    ]
    cap = writer_profile(deps).section_max_tokens
    text = gateway.complete(messages, role="writer", max_tokens=cap)
    totals = ledger.totals()
    usage = Usage(
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        calls=totals.calls,
    )
    return text, usage


def add_usage(record: SectionRecord, usage: Usage) -> SectionRecord:
    """``record`` with ``usage`` added."""
    return record.model_copy(
        update={
            "prompt_tokens": record.prompt_tokens + usage.prompt_tokens,
            "completion_tokens": record.completion_tokens + usage.completion_tokens,
            "calls": record.calls + usage.calls,
        }
    )


def written_text(
    sections: dict[str, SectionRecord], names: Sequence[str], chars: int | None
) -> str:
    """Earlier sections for the prompt (in ``names`` order), each cut to ``chars`` (None: whole).

    The embedded model's profile cuts them because its prompt time adds up; a capable writer
    sees them whole, so the paper reads as one.
    """
    parts = []
    for name in names:
        record = sections.get(name)
        if record and record.text.strip():
            body = record.text.strip()
            cut = body if chars is None or len(body) <= chars else body[:chars] + " […]"
            parts.append(f"### {record.title}\n{cut}")
    return "\n\n".join(parts) or "(none yet)"


def target_words(spec: SectionSpec, profile: OutputProfile) -> int:
    """The section's length target: its base target times the profile's scale."""
    return round(spec.words * profile.section_words_scale)


def draft_prompt(context: str, spec: SectionSpec, written: str, previous: str, words: int) -> str:
    """The user message that asks for one section of about ``words`` words."""
    return render(
        PROMPTS,
        "section_user.j2",
        context=context,
        written=written,
        section_title=spec.title,
        instructions=render(PROMPTS, f"section_{spec.name}.j2"),
        words=words,
        previous=previous,
    )


def fix_prompt(context: str, spec: SectionSpec, text: str, issues: list[Issue]) -> str:
    """The user message that asks to fix what the checklist found."""
    listed = "\n".join(f"- {issue.kind}: {issue.detail}" for issue in issues)
    return render(
        PROMPTS, "fix_user.j2", context=context, section_title=spec.title, text=text, issues=listed
    )


def compile_fix_prompt(context: str, spec: SectionSpec, text: str, errors: list[str]) -> str:
    """The user message that asks to fix compiler errors in one section."""
    listed = "\n".join(f"- {line}" for line in errors)
    return render(
        PROMPTS,
        "compile_fix_user.j2",
        context=context,
        section_title=spec.title,
        text=text,
        errors=listed,
    )


def shorten_prompt(context: str, spec: SectionSpec, text: str, words: int) -> str:
    """The user message that asks for a shorter section."""
    return render(
        PROMPTS,
        "shorten_user.j2",
        context=context,
        section_title=spec.title,
        text=text,
        words=words,
    )


def fallback_text(name: str, idea: Idea) -> str:
    """A minimal body from the idea itself, for a section the model left empty."""
    if name in ("method", "experimental_setup"):
        return plain_to_latex(idea.Experiment)
    if name == "results":
        return "Table~\\ref{tab:results} lists the measured results."
    return plain_to_latex(f"This section concerns: {idea.Title}.")


def ensure_references(text: str, ctx: CheckContext, descriptions: dict[str, str]) -> str:
    """Results text that refers to the results table and to every figure (added by code)."""
    additions = []
    if ctx.table_labels and not re.search(r"\\ref\{tab:results\}", text):
        additions.append("Table~\\ref{tab:results} lists the measured means and standard errors.")
    for label in ctx.figure_labels:
        if f"\\ref{{{label}}}" not in text:
            note = descriptions.get(label, "").strip().rstrip(".")
            shows = f": {plain_to_latex(note)}." if note else "."
            additions.append(f"Figure~\\ref{{{label}}} shows the corresponding plot{shows}")
    return (text.rstrip() + "\n\n" + " ".join(additions)).strip() if additions else text


def clean(record: SectionRecord, raw: str) -> SectionRecord:
    """``record`` with a model reply as its text: fences, headings and danger removed, escaped."""
    text, notes = clean_model_latex(raw, SECTION_BY_NAME[record.name].title)
    return record.model_copy(update={"text": text, "warnings": [*record.warnings, *notes]})


def enforce(
    record: SectionRecord,
    ctx: CheckContext,
    idea: Idea,
    descriptions: dict[str, str],
    citations: Sequence[CitationRecord] = (),
) -> SectionRecord:
    """Enforce what must hold whatever the model did, with a warning for each change.

    Unknown citation keys and references to missing labels are stripped, sentences with
    numbers not in the results are removed, an empty section gets a minimal body from the
    idea, citations placed earlier that a rewrite dropped are put back, and the results
    section refers to its table and to every figure.
    """
    warnings: list[str] = []
    text, dropped = keep_known_cites(record.text, ctx.known_keys)
    if dropped:
        warnings.append(f"removed unknown citation keys: {', '.join(sorted(set(dropped)))}")
    labels = set(ctx.figure_labels) | set(ctx.table_labels) | ctx.other_labels
    text = strip_bad_refs(text, labels)
    text, removed = drop_invented_sentences(text, ctx)
    warnings += [
        f"removed a sentence with numbers not in the results: {s[:120]!r}" for s in removed
    ]
    if not text.strip():
        text = fallback_text(record.name, idea)
        warnings.append("empty after the checks; wrote a minimal body from the idea")
    known = [c for c in citations if c.key in ctx.known_keys]
    text = restore_citations(text, record.name, known)
    if record.name == "results":
        text = ensure_references(text, ctx, descriptions)
    return record.model_copy(update={"text": text, "warnings": [*record.warnings, *warnings]})


def checklist(record: SectionRecord, ctx: CheckContext) -> list[Issue]:
    """The deterministic checklist of one section."""
    return run_checklist(record.name, record.text, ctx)
