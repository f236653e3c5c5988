"""What every prompt shares (idea, results, figures, notes, guidance) and what checks use."""

from __future__ import annotations

import re
from pathlib import Path

from core.literature.bibtex import parse_bib
from gateway.prompts import render
from scientist.writeup.checks import CheckContext, numbers_in
from scientist.writeup.results import figures_text, result_values, results_text
from scientist.writeup.state import WriteupState

PROMPTS = Path(__file__).parent / "prompts"


def guidance_text(state: WriteupState) -> str:
    """A human's co-pilot feedback and a reviewer's comments, when given."""
    parts = []
    if state.get("feedback"):
        parts.append(f"Feedback from the author (follow it):\n{state['feedback']}")
    if state.get("review"):
        parts.append(
            f"A reviewer's comments on the previous draft (address them):\n{state['review']}"
        )
    return "\n\n".join(parts)


def bibliography_lines(state: WriteupState) -> str:
    """Citation keys the writer may use, with titles."""
    lines = []
    for key, text in state.get("bib", {}).items():
        entries = parse_bib(text)
        lines.append(f"{key}: {entries[0].field('title') if entries else ''}")
    return "\n".join(lines) or "(none yet; citations are added later)"


def prompt_context(state: WriteupState) -> str:
    """The shared prefix of every writer prompt."""
    idea, record = state["idea"], state["record"]
    return render(
        PROMPTS,
        "context.j2",
        title=idea.Title,
        experiment=idea.Experiment,
        results=results_text(record),
        figures=figures_text(state.get("figures", [])),
        notes=record.notes.strip() or "(none)",
        bibliography=bibliography_lines(state),
        plan=plan.brief() if (plan := state.get("plan")) is not None else "",
        guidance=guidance_text(state),
    )


def _template_text(state: WriteupState) -> str:
    path = state.get("template_path")
    return Path(path).read_text(encoding="utf-8") if path else ""


def template_labels(state: WriteupState) -> set[str]:
    """Labels the template itself defines (sections)."""
    return set(re.findall(r"\\label\{([^}]*)\}", _template_text(state)))


def template_commands(state: WriteupState) -> set[str]:
    """Commands the template's preamble defines (\\newcommand, \\def, math operators)."""
    pattern = r"\\(?:newcommand|renewcommand|providecommand|DeclareMathOperator)\*?\{?\\(\w+)"
    text = _template_text(state)
    return set(re.findall(pattern, text)) | set(re.findall(r"\\def\\(\w+)", text))


def check_context(state: WriteupState) -> CheckContext:
    """Known keys, allowed numbers and labels for the checklist."""
    idea, record = state["idea"], state["record"]
    figures = state.get("figures", [])
    texts = [idea.Title, idea.Experiment, record.notes, *(f.description for f in figures)]
    values, literals = numbers_in(texts)
    return CheckContext(
        known_keys=set(state.get("bib", {})),
        allowed_numbers=result_values(record) + values,
        allowed_literals=literals,
        figure_labels=[f.label for f in figures],
        table_labels=[t.label for t in state.get("tables", [])],
        other_labels=template_labels(state),
        extra_commands=template_commands(state),
    )


def figure_descriptions(state: WriteupState) -> dict[str, str]:
    """Figure label → its note."""
    return {f.label: f.description for f in state.get("figures", [])}
