"""Nodes after the sections are final: assemble and compile, fix from the log (bounded),
fall back to a conservative rendering, shorten to the page limit, and record the result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from core.literature.bibtex import bib_text
from scientist.writeup.assemble import (
    BIB_NAME,
    TEX_NAME,
    assemble,
    read_template,
    section_at,
    section_lines,
)
from scientist.writeup.citations import restore_citations
from scientist.writeup.compile import CompileResult, LintWarning, count_pages
from scientist.writeup.context import check_context, figure_descriptions, prompt_context
from scientist.writeup.deps import WriteupDeps
from scientist.writeup.latex import cite_keys, conservative
from scientist.writeup.models import CompileAttempt, SectionRecord, WriteupRecord
from scientist.writeup.nodes import cited_entries
from scientist.writeup.results import figure_latex
from scientist.writeup.sections import SECTION_BY_NAME, SECTION_NAMES
from scientist.writeup.state import WriteupState
from scientist.writeup.writing import (
    add_usage,
    ask_writer,
    checklist,
    clean,
    compile_fix_prompt,
    enforce,
    ensure_references,
    shorten_prompt,
)

MIN_WORDS_TO_SHORTEN = 120
SECTIONS_SHORTENED = 4
CompileNext = Literal["fix_compile", "fallback", "shorten", "finish"]


def write_sources(state: WriteupState) -> Path:
    """paper.tex and references.bib (only cited entries) in paper/; returns paper.tex."""
    paper_dir = Path(state["paper_dir"])
    entries = cited_entries(state)
    template = read_template(Path(state["template_path"]))
    bodies = {name: record.text for name, record in state["sections"].items()}
    floats = [t.latex for t in state.get("tables", [])]
    floats += [figure_latex(f) for f in state.get("figures", [])]
    tex = assemble(
        template, state["idea"].Title, bodies, {"results": "\n\n".join(floats)}, cited=bool(entries)
    )
    (paper_dir / BIB_NAME).write_text(bib_text(entries), encoding="utf-8")
    (paper_dir / TEX_NAME).write_text(tex, encoding="utf-8")
    return paper_dir / TEX_NAME


def blame(state: WriteupState, result: CompileResult, tex: str) -> list[str]:
    """Sections the errors point at; else those the checklist still flags for syntax."""
    spans = section_lines(tex)
    named = [section_at(spans, error.line) for error in result.errors]
    blamed = list(dict.fromkeys(n for n in named if n))
    if blamed:
        return blamed
    ctx = check_context(state)
    return [
        name
        for name in SECTION_NAMES
        if any(i.kind == "latex_syntax" for i in checklist(state["sections"][name], ctx))
    ]


def compile_paper(state: WriteupState, runtime: Runtime[WriteupDeps]) -> Command[CompileNext]:
    """Assemble and compile; route to a fix round, the fallback, shortening, or the end."""
    deps = runtime.context
    settings = deps.settings.writing
    tex_path = write_sources(state)
    attempts = list(state.get("attempts", []))
    deps.notify("compile", detail=f"attempt {len(attempts) + 1}")
    result = deps.compiler.compile(tex_path.parent, tex_path.name, settings.compile_timeout_s)
    attempt = CompileAttempt(
        index=len(attempts) + 1,
        ok=result.ok,
        seconds=round(result.seconds, 2),
        errors=[e.render() for e in result.errors],
    )
    if result.ok and result.pdf is not None:
        pages, content = count_pages(result.pdf)
        over = content > settings.page_limit
        go: CompileNext = (
            "shorten"
            if over and state.get("shorten_round", 0) < settings.shorten_rounds
            else "finish"
        )
        attempt.action = "shorten" if go == "shorten" else "done"
        update = {"attempts": [*attempts, attempt], "pages": pages, "content_pages": content}
        return Command(update=update, goto=go)
    tex = tex_path.read_text(encoding="utf-8")
    blamed = blame(state, result, tex)
    lint = deps.compiler.lint(tex_path.parent, tex_path.name)
    attempt.sections_blamed = blamed
    attempt.lint = [f"line {w.line}: {w.message}" for w in _lint_in(lint, tex, blamed)][
        : settings.max_log_lines
    ]
    if blamed and state.get("fix_round", 0) < settings.fix_rounds:
        attempt.action = "fix"
        goto: CompileNext = "fix_compile"
    elif state.get("fallback_stage", 0) < 2:
        attempt.action = "fallback"
        goto = "fallback"
    else:
        attempt.action = "give up"
        goto = "finish"
    return Command(update={"attempts": [*attempts, attempt], "blamed": blamed}, goto=goto)


def _lint_in(warnings: list[LintWarning], tex: str, sections: list[str]) -> list[LintWarning]:
    spans = section_lines(tex)
    return [w for w in warnings if section_at(spans, w.line) in sections]


def fix_compile(state: WriteupState, runtime: Runtime[WriteupDeps]) -> dict[str, Any]:
    """One fix round: each blamed section goes to the writer with its log lines and chktex
    warnings; the reply is cleaned and enforced like any other."""
    deps = runtime.context
    attempt = state["attempts"][-1]
    ctx, context = check_context(state), prompt_context(state)
    updated: dict[str, SectionRecord] = {}
    for name in state.get("blamed", []):
        spec, record = SECTION_BY_NAME[name], state["sections"][name]
        # All errors, not just those inside the section: a runaway argument is reported far
        # from its cause (often at \\end{document}).
        lines = [*attempt.errors, *attempt.lint]
        lines = lines[: deps.settings.writing.max_log_lines]
        deps.notify("fix", name, detail=f"round {state.get('fix_round', 0) + 1}")
        raw, usage = ask_writer(deps, compile_fix_prompt(context, spec, record.text, lines))
        fixed = add_usage(clean(record, raw), usage)
        fixed = fixed.model_copy(update={"rounds": fixed.rounds + 1})
        updated[name] = enforce(
            fixed, ctx, state["idea"], figure_descriptions(state), state.get("citations", [])
        )
    return {"sections": updated, "fix_round": state.get("fix_round", 0) + 1}


def fallback(state: WriteupState, runtime: Runtime[WriteupDeps]) -> dict[str, Any]:
    """Render the blamed sections (then, as a last resort, all) as escaped plain text."""
    stage = state.get("fallback_stage", 0) + 1
    blamed = state.get("blamed", [])
    names = blamed if stage == 1 and blamed else list(SECTION_NAMES)
    stage = stage if stage == 1 and blamed else 2
    ctx = check_context(state)
    updated = {}
    for name in names:
        record = state["sections"][name]
        text = conservative(record.text)
        if stage == 1:  # known keys are safe LaTeX; the last resort keeps nothing but text
            text = restore_citations(text, name, state.get("citations", []))
        if name == "results":
            text = ensure_references(text, ctx, figure_descriptions(state))
        warning = "did not compile; rendered as plain text (LaTeX commands and citations dropped)"
        updated[name] = record.model_copy(
            update={"text": text, "fallback": True, "warnings": [*record.warnings, warning]}
        )
    runtime.context.notify("fallback", detail=", ".join(names))
    return {"sections": updated, "fallback_stage": stage}


def shorten(state: WriteupState, runtime: Runtime[WriteupDeps]) -> dict[str, Any]:
    """Ask the writer to shorten the longest sections by the ratio the page limit needs."""
    deps = runtime.context
    limit, content = deps.settings.writing.page_limit, max(state.get("content_pages", 1), 1)
    ratio = min(0.9, limit / content * 0.9)
    ctx, context = check_context(state), prompt_context(state)
    longest = sorted(
        (r for r in state["sections"].values() if r.name != "abstract"),
        key=lambda r: len(r.text.split()),
        reverse=True,
    )[:SECTIONS_SHORTENED]
    updated = {}
    for record in longest:
        words = len(record.text.split())
        if words < MIN_WORDS_TO_SHORTEN:
            continue
        deps.notify("shorten", record.name, detail=f"{words} words → {int(words * ratio)}")
        prompt = shorten_prompt(
            context, SECTION_BY_NAME[record.name], record.text, int(words * ratio)
        )
        raw, usage = ask_writer(deps, prompt)
        short = add_usage(clean(record, raw), usage)
        short = short.model_copy(update={"rounds": short.rounds + 1})
        updated[record.name] = enforce(
            short, ctx, state["idea"], figure_descriptions(state), state.get("citations", [])
        )
    return {"sections": updated, "shorten_round": state.get("shorten_round", 0) + 1}


def finish(state: WriteupState, runtime: Runtime[WriteupDeps]) -> dict[str, Any]:
    """Build writeup.json: per section tokens, rounds, citations, warnings; attempts, pages."""
    deps = runtime.context
    attempts = state.get("attempts", [])
    ok = bool(attempts) and attempts[-1].ok
    paper_dir = Path(state["paper_dir"])
    if not ok:  # a PDF left by an earlier attempt or run is not this paper
        (paper_dir / "paper.pdf").unlink(missing_ok=True)
    sections = [_with_citations(state["sections"][n]) for n in SECTION_NAMES]
    cited = {k for s in sections for k in s.citations}
    warnings = list(state.get("warnings", []))
    limit = deps.settings.writing.page_limit
    if ok and state.get("content_pages", 0) > limit:
        warnings.append(
            f"{state['content_pages']} pages before the references, over the "
            f"limit of {limit} after {state.get('shorten_round', 0)} shortening pass(es)"
        )
    record = WriteupRecord(
        idea_name=state["idea"].Name,
        title=state["idea"].Title,
        status="ok" if ok else "failed",
        engine="weasyprint" if deps.compiler.engine == "weasyprint" else "latex",
        pdf=str((paper_dir / "paper.pdf").relative_to(Path(state["idea_dir"]))) if ok else None,
        pages=state.get("pages") if ok else None,
        content_pages=state.get("content_pages") if ok else None,
        page_limit=limit,
        sections=sections,
        citations=[c for c in state.get("citations", []) if c.key in cited],
        citation_rounds=min(state.get("citation_round", 0), deps.settings.writing.citation_rounds),
        compile_attempts=attempts,
        figures=[f.file for f in state.get("figures", [])],
        tables=len(state.get("tables", [])),
        warnings=warnings,
        errors=[] if ok else (attempts[-1].errors if attempts else ["nothing was compiled"]),
        prompt_tokens=sum(s.prompt_tokens for s in sections),
        completion_tokens=sum(s.completion_tokens for s in sections),
        seconds=round(time.perf_counter() - state.get("started", time.perf_counter()), 1),
        feedback=state.get("feedback"),
        review=state.get("review"),
    )
    (paper_dir / "writeup.json").write_text(record.model_dump_json(indent=2), encoding="utf-8")
    deps.notify("done", detail=record.status)
    return {"result": record}


def _with_citations(record: SectionRecord) -> SectionRecord:
    return record.model_copy(update={"citations": cite_keys(record.text)})
