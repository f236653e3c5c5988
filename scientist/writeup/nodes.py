"""The write-up graph's nodes. Each takes the state (or a section task) and the runtime
context (``WriteupDeps``) and returns a partial update or a ``Command`` naming where next."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from core.literature.bibtex import BibEntry, parse_bib
from gateway.errors import StructuredOutputError
from scientist.writeup.assemble import (
    copy_support_files,
    read_template,
    template_path,
)
from scientist.writeup.citations import (
    CITABLE,
    REVIEW_QUERY,
    add_reference,
    add_related,
    place_cite,
    propose_queries,
    search_all,
    select_papers,
)
from scientist.writeup.context import check_context, figure_descriptions, prompt_context
from scientist.writeup.deps import WriteupDeps
from scientist.writeup.latex import cite_keys
from scientist.writeup.models import CitationRecord, SectionRecord
from scientist.writeup.results import collect_figures, results_tables
from scientist.writeup.sections import (
    SECTION_BY_NAME,
    SECTION_NAMES,
    WRITE_ORDER,
    ready_sections,
)
from scientist.writeup.state import SectionTask, WriteupState
from scientist.writeup.writing import (
    add_usage,
    ask_writer,
    checklist,
    clean,
    draft_prompt,
    enforce,
    fix_prompt,
    target_words,
    writer_profile,
    written_text,
)


def prepare(state: WriteupState, runtime: Runtime[WriteupDeps]) -> dict[str, Any]:
    """Preflight (toolchain, template compiles) before any model call; then paper/ is set up:
    style files and figures copied in, results tables built, template references loaded, and
    the papers of the idea's literature review, then those the novelty check found relevant,
    added (Related Work cites them; the review's papers keep the review's keys)."""
    deps = runtime.context
    idea_dir = Path(state["idea_dir"])
    template = template_path(idea_dir)
    deps.notify("preflight", detail=f"{deps.compiler.engine}: checking the toolchain and template")
    deps.compiler.preflight(template.parent, template.name, deps.settings.writing.compile_timeout_s)
    paper_dir = idea_dir / "paper"
    paper_dir.mkdir(parents=True, exist_ok=True)
    parsed = read_template(template)
    copy_support_files(parsed, paper_dir)
    figures = collect_figures(state["record"], idea_dir, paper_dir)
    citations = [
        CitationRecord(
            key=e.key, paper_id=f"template:{e.key}", title=e.field("title"), source="template"
        )
        for e in parsed.bib
    ]
    entries = {e.key: e for e in parsed.bib}
    review = state.get("review_papers", [])
    warnings = add_related(review, deps.literature, entries, citations, query=REVIEW_QUERY)
    warnings += add_related(state.get("related", []), deps.literature, entries, citations)
    if not figures:
        warnings.append("no figures found in experiments.json or the idea folder")
    return {
        "paper_dir": str(paper_dir),
        "template_path": str(template),
        "figures": figures,
        "tables": results_tables(state["record"]),
        "previous": previous_sections(paper_dir) if state.get("review") else {},
        "bib": {key: entry.text for key, entry in entries.items()},
        "citations": citations,
        "sections": {},
        "started": time.perf_counter(),
        "warnings": warnings,
    }


def previous_sections(paper_dir: Path) -> dict[str, str]:
    """Section texts of an earlier write-up in this folder (revised when a review is given)."""
    path = paper_dir / "writeup.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {s["name"]: s["text"] for s in data.get("sections", [])}
    except (json.JSONDecodeError, KeyError, TypeError):
        return {}


def schedule(state: WriteupState) -> dict[str, Any]:
    """A join point: after each wave of sections, decide the next (see ``next_sections``)."""
    return {}


def next_sections(state: WriteupState) -> list[Send] | str:
    """The next wave of sections whose prerequisites are written, in parallel; else cite."""
    ready = ready_sections(set(state.get("sections", {})))
    if not ready:
        return "cite"
    return [Send("write_section", {**state, "task": spec.name}) for spec in ready]


def write_section(task: SectionTask, runtime: Runtime[WriteupDeps]) -> dict[str, Any]:
    """Draft one section from the shared context and the sections written so far."""
    deps = runtime.context
    spec = SECTION_BY_NAME[task["task"]]
    sections = task.get("sections", {})
    profile = writer_profile(deps)
    names = [n for n in WRITE_ORDER if n in sections]
    written = written_text(sections, names, profile.earlier_section_chars)
    previous = task.get("previous", {}).get(spec.name, "")
    words = target_words(spec, profile)
    raw, usage = ask_writer(
        deps, draft_prompt(prompt_context(task), spec, written, previous, words)
    )
    record = clean(SectionRecord(name=spec.name, title=spec.title), raw)
    deps.notify("written", spec.name)
    return {"sections": {spec.name: add_usage(record, usage)}}


def _refine_sends(state: Mapping[str, Any]) -> list[Send]:
    return [Send("refine_section", {**state, "task": name}) for name in SECTION_NAMES]


def cite(
    state: WriteupState, runtime: Runtime[WriteupDeps]
) -> Command[Literal["cite", "refine_section"]]:
    """One citation round (queries → literature → picks by id → BibTeX + \\cite); loop or go on."""
    deps = runtime.context
    number = state.get("citation_round", 0) + 1
    if number > deps.settings.writing.citation_rounds:
        return Command(goto=_refine_sends(state))
    deps.notify("citations", detail=f"round {number}/{deps.settings.writing.citation_rounds}")
    update, done = citation_round(state, deps, number)
    update["citation_round"] = number
    if done or number >= deps.settings.writing.citation_rounds:
        return Command(update=update, goto=_refine_sends({**state, **update}))
    return Command(update=update, goto="cite")


def citation_round(
    state: WriteupState, deps: WriteupDeps, number: int
) -> tuple[dict[str, Any], bool]:
    """Queries, search, selection and placement; returns the update and whether to stop."""
    sections = dict(state["sections"])
    entries = {k: parse_bib(v)[0] for k, v in state.get("bib", {}).items() if parse_bib(v)}
    title = state["idea"].Title
    try:
        proposal = propose_queries(deps, title, sections, entries, number)
    except StructuredOutputError as exc:
        return {"warnings": [f"citation round {number}: no valid queries ({exc})"[:400]]}, True
    if not proposal.queries:
        return {}, True
    found, warnings = search_all(deps, proposal.queries)
    try:
        picks = select_papers(deps, title, found)
    except StructuredOutputError as exc:
        return {
            "warnings": [*warnings, f"citation round {number}: no valid selection ({exc})"[:400]]
        }, False
    papers = {p.paper_id: (p, f.query) for f in found for p in f.papers}
    records = list(state.get("citations", []))
    for pick in picks:
        paper, query = papers[pick["paper_id"]]
        section = pick["section"] if pick["section"] in CITABLE else "introduction"
        hint = f"{pick['sentence']} {query.claim}"
        key = add_reference(paper, entries, records, query.query, section, hint)
        if key is None or section not in sections:
            continue
        sections[section] = sections[section].model_copy(
            update={"text": place_cite(sections[section].text, key, hint)}
        )
    update = {
        "sections": sections,
        "bib": {k: e.text for k, e in entries.items()},
        "citations": records,
        "warnings": warnings,
    }
    return update, proposal.done


def refine_section(task: SectionTask, runtime: Runtime[WriteupDeps]) -> dict[str, Any]:
    """Run the checklist; if it finds anything, ask the writer to fix it (bounded); then
    enforce by code what must hold whatever the model did."""
    deps = runtime.context
    spec = SECTION_BY_NAME[task["task"]]
    ctx = check_context(task)
    record = task["sections"][spec.name]
    issues = checklist(record, ctx)
    record = record.model_copy(update={"issues_found": issues})
    for _ in range(deps.settings.writing.refine_rounds):
        if not issues:
            break
        prompt = fix_prompt(prompt_context(task), spec, record.text, issues)
        raw, usage = ask_writer(deps, prompt)
        record = add_usage(clean(record, raw), usage)
        record = record.model_copy(update={"rounds": record.rounds + 1})
        issues = checklist(record, ctx)
    citations = task.get("citations", [])
    record = enforce(record, ctx, task["idea"], figure_descriptions(task), citations)
    left = [f"{i.kind}: {i.detail}" for i in checklist(record, ctx) if i.kind == "latex_syntax"]
    record = record.model_copy(update={"warnings": [*record.warnings, *left]})
    deps.notify("refined", spec.name)
    return {"sections": {spec.name: record}}


def cited_entries(state: WriteupState) -> list[BibEntry]:
    """The bibliography entries the sections cite, in order of first citation."""
    keys: list[str] = []
    for name in SECTION_NAMES:
        record = state["sections"].get(name)
        for key in cite_keys(record.text) if record else []:
            if key in state.get("bib", {}) and key not in keys:
                keys.append(key)
    return [parse_bib(state["bib"][k])[0] for k in keys if parse_bib(state["bib"][k])]
