"""Whether the checks found each injected error, and whether a reviewer's text names it,
for ``injected_errors.py``: the expected finding per kind, what the checks saw instead when
they missed, findings that neither the error nor the clean twin explains, and the full review
on the embedded model."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import median, percentile
from benchmarks._latex import KINDS, Injection, Variant
from core.settings import load_settings
from gateway.errors import AutoscholarError
from reviewer.checks.bib_fields import ascii_fold
from reviewer.checks.models import ChecksReport, Finding, ReferenceCheck
from reviewer.checks.references import title_similarity

TARGETS = {"fabricated": 0.90, "missing_figure": 0.90, "number": 0.70}  # issue #20
FALSE_POSITIVE_TARGET = 0.05

# ----------------------------------------------------------------------------- judging


@dataclass
class Built:
    """A variant's PDF (None when it did not compile) and its build time."""

    variant: Variant
    pdf: Path | None
    seconds: float
    error: str = ""


@dataclass
class Checked:
    """One variant's checks, as ``reviewer check`` runs them, and each stage's time."""

    built: Built
    report: ChecksReport
    pages: list[str]
    timings: dict[str, float]


@dataclass
class Case:
    """One injected error and whether the checks found it (and if not, what they saw)."""

    paper: str
    variant: str
    kind: str
    injected: str
    detected: bool
    saw: str = ""


def carries(check: ReferenceCheck, title: str) -> bool:
    """Whether a parsed entry is the one with ``title``: its parsed title matches, or its raw
    text holds the title's letters (extraction can lose spaces, and the parser the title)."""
    if check.entry.title and title_similarity(title, check.entry.title) >= 0.85:
        return True
    wanted = _letters(title)
    return bool(wanted) and wanted in _letters(check.entry.raw)


def _letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", ascii_fold(text).lower())


def _entry_for(title: str, references: list[ReferenceCheck]) -> ReferenceCheck | None:
    """The bibliography entry (as parsed from the PDF) that carries ``title``."""
    return next((c for c in references if carries(c, title)), None)


def judge(checked: Checked) -> list[Case]:
    """The cases of one variant (fabricated: one per injected entry)."""
    variant, report = checked.built.variant, checked.report
    injection = variant.injection
    make = {
        "fabricated": _judge_fabricated,
        "wrong_year": _judge_year,
        "number": _judge_number,
        "missing_figure": _judge_figure,
    }.get(variant.kind)
    return make(variant, injection, report, checked.pages) if make else []


def _judge_fabricated(
    variant: Variant, injection: Injection, report: ChecksReport, pages: list[str]
) -> list[Case]:
    cases = []
    for title in injection.titles:
        entry = _entry_for(title, report.references)
        found = entry is not None and any(
            f.kind == "reference_not_found" and f.evidence == entry.entry.raw
            for f in report.findings
        )
        ok = entry is not None and entry.status == "not_found" and found
        if entry is None:
            saw = "no bibliography entry with this title was parsed from the PDF"
        elif not ok:
            saw = f"status {entry.status}: {entry.reason}; parsed title {entry.entry.title!r}"
        elif title_similarity(title, entry.entry.title or "") < 0.85:
            saw = f"flagged, but its title was parsed as {entry.entry.title!r}"
        else:
            saw = ""
        cases.append(Case(variant.paper, variant.label, "fabricated", title, ok, saw))
    return cases


def _judge_year(
    variant: Variant, injection: Injection, report: ChecksReport, pages: list[str]
) -> list[Case]:
    wanted = f"year: {injection.new_year} in the paper"
    ok = any(f.kind == "reference_mismatch" and wanted in f.message for f in report.findings)
    entry = _entry_for(injection.titles[0], report.references)
    saw = (
        "the entry was not parsed from the PDF"
        if entry is None
        else f"status {entry.status} ({'; '.join(entry.differences) or entry.reason})"
    )
    return [Case(variant.paper, variant.label, "wrong_year", injection.note, ok, "" if ok else saw)]


def _judge_number(
    variant: Variant, injection: Injection, report: ChecksReport, pages: list[str]
) -> list[Case]:
    literal = re.compile(rf"(?<![\d.]){re.escape(injection.literal)}(?![\d])")
    ok = any(f.kind == "unsupported_number" and literal.search(f.evidence) for f in report.findings)
    saw = ""
    if not ok:
        text = " ".join(" ".join(pages).split())
        at = literal.search(text)
        context = text[max(0, at.start() - 90) : at.end() + 40] if at else "(not in the text)"
        others = [f.evidence[:60] for f in report.findings if f.kind == "unsupported_number"]
        notes = [n for n in report.notes if "table" in n]
        saw = f"text: …{context}… | number findings: {others or 'none'} | notes: {notes or '-'}"
    return [Case(variant.paper, variant.label, "number", injection.note, ok, saw)]


def _judge_figure(
    variant: Variant, injection: Injection, report: ChecksReport, pages: list[str]
) -> list[Case]:
    mention = re.compile(rf"'(?:Figures?|Figs?\.) {injection.figure}'")
    ok = any(f.kind == "missing_target" and mention.search(f.message) for f in report.findings)
    saw = ""
    if not ok:
        text = " ".join(" ".join(pages).split())
        seen = re.search(rf"Figure\s*{injection.figure}\b", text)
        crossrefs = [f.message[:70] for f in report.findings if f.check == "cross_refs"]
        saw = f"'Figure {injection.figure}' in text: {bool(seen)} | cross-ref findings: {crossrefs}"
    return [Case(variant.paper, variant.label, "missing_figure", injection.note, ok, saw)]


def is_injected(check: ReferenceCheck, injection: Injection) -> bool:
    """Whether an entry is one the variant made up or changed."""
    return any(carries(check, title) for title in injection.titles)


def _finding_key(finding: Finding) -> tuple[str, str]:
    return finding.kind, " ".join(finding.evidence.split())[:120]


def unexpected(checked: Checked, twin: Checked | None) -> list[Finding]:
    """Findings on a variant that are neither its injected error nor on its clean twin."""
    known = {_finding_key(f) for f in twin.report.findings} if twin else set()
    injection = checked.built.variant.injection
    injected_raw = {c.entry.raw for c in checked.report.references if is_injected(c, injection)}
    found = []
    for finding in checked.report.findings:
        if _finding_key(finding) in known or finding.evidence in injected_raw:
            continue
        if _explains(finding, injection):
            continue
        found.append(finding)
    return found


def _explains(finding: Finding, injection: Injection) -> bool:
    if injection.kind == "wrong_year":
        return finding.kind == "reference_mismatch" and f"year: {injection.new_year}" in (
            finding.message
        )
    if injection.kind == "number":
        return finding.kind == "unsupported_number" and injection.literal in finding.evidence
    if injection.kind == "missing_figure":
        return finding.kind == "missing_target" and f" {injection.figure}'" in finding.message
    return False


# ----------------------------------------------------------------------------- figures


def rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def verdict(value: float | None, target: float, *, at_least: bool) -> str:
    """PASS or FAIL against the issue's target (≥ or ≤); no value is a FAIL."""
    if value is None:
        return "FAIL"
    return "PASS" if (value >= target if at_least else value <= target) else "FAIL"


def detection(cases: list[Case]) -> dict[str, Any]:
    """Per kind: cases, detected, rate, target and verdict."""
    figures: dict[str, Any] = {}
    for kind in KINDS:
        mine = [c for c in cases if c.kind == kind]
        hits = sum(c.detected for c in mine)
        value = rate(hits, len(mine))
        target = TARGETS.get(kind)
        figures[kind] = {
            "cases": len(mine),
            "detected": hits,
            "rate": value,
            "variants": len({(c.paper, c.variant) for c in mine}),
            "target": target,
            "verdict": verdict(value, target, at_least=True) if target is not None else None,
        }
    return figures


def false_positives(checked: list[Checked]) -> dict[str, Any]:
    """Findings on the clean twins, and real references flagged in any variant."""
    twins = [c for c in checked if c.built.variant.kind == "clean"]
    flagged_twins = [c for c in twins if c.report.findings]
    share = rate(len(flagged_twins), len(twins))
    clean_refs = [
        (c.built.variant, r)
        for c in checked
        for r in c.report.references
        if not is_injected(r, c.built.variant.injection)
    ]
    flagged = [(v, r) for v, r in clean_refs if r.status in ("not_found", "mismatch")]
    ref_share = rate(len(flagged), len(clean_refs))
    listed = [
        {
            "paper": c.built.variant.paper,
            "page": f.page,
            "kind": f.kind,
            "message": f.message,
            "evidence": f.evidence[:200],
        }
        for c in twins
        for f in c.report.findings
    ]
    return {
        "clean_twins": len(twins),
        "twins_with_findings": len(flagged_twins),
        "share": share,
        "findings_per_twin": rate(sum(len(c.report.findings) for c in twins), len(twins)),
        "target": FALSE_POSITIVE_TARGET,
        "verdict": verdict(share, FALSE_POSITIVE_TARGET, at_least=False),
        "clean_references": len(clean_refs),
        "clean_references_flagged": len(flagged),
        "share_references_flagged": ref_share,
        "references_verdict": verdict(ref_share, FALSE_POSITIVE_TARGET, at_least=False),
        "references_unchecked": sum(r.status == "unchecked" for _, r in clean_refs),
        "flagged_references": [
            {
                "variant": f"{v.paper} {v.label}",
                "status": r.status,
                "entry": r.entry.raw[:200],
                "why": "; ".join(r.differences) or r.reason,
            }
            for v, r in flagged
        ],
        "twin_findings": listed,
    }


def timing(checked: list[Checked], built: list[Built]) -> dict[str, dict[str, float | None]]:
    """Median, p95 and max milliseconds of each stage over every checked PDF."""
    stages = list(dict.fromkeys(name for c in checked for name in c.timings))
    table: dict[str, dict[str, float | None]] = {}
    series = {name: [c.timings[name] * 1000 for c in checked] for name in stages}
    series["latexmk build (s x 1000)"] = [b.seconds * 1000 for b in built]
    for name, values in series.items():
        table[name] = {
            "median_ms": median(values),
            "p95_ms": percentile(values, 95),
            "max_ms": max(values) if values else None,
        }
    return table


# ----------------------------------------------------------------------------- review


def mentions(texts: list[str], injection: Injection) -> bool:
    """Whether a reviewer's text names the injected error."""
    joined = "\n".join(texts)
    lower = joined.lower()
    if injection.kind == "fabricated":
        short = [" ".join(t.lower().split()[:5]) for t in injection.titles]
        return any(s in lower for s in short) or "fabricat" in lower or "not found" in lower
    if injection.kind == "wrong_year":
        names = [a.lower() for a in injection.authors[:1]] + ["year"]
        return any(
            str(injection.new_year) in t and any(n in t.lower() for n in names) for t in texts
        )
    if injection.kind == "number":
        return bool(re.search(rf"(?<![\d.]){re.escape(injection.literal)}(?!\d)", joined))
    if injection.kind == "missing_figure":
        return bool(re.search(rf"\bFig(?:ure|\.)?\s*~?{injection.figure}\b", joined)) or (
            "missing figure" in lower
        )
    return False


GENERIC_TERMS = ("fabricat", "not found", "does not exist", "missing figure", "wrong year")


def review_texts(report: Any) -> list[str]:
    """Summary, strengths, weaknesses and questions of every round and the meta-review."""
    texts: list[str] = []
    for reviewer in report.reviewers:
        for form in reviewer.rounds:
            texts += [form.Summary, *form.Strengths, *form.Weaknesses, *form.Questions]
    if report.meta_review is not None:
        meta = report.meta_review
        texts += [meta.summary, *meta.strengths, *meta.weaknesses]
    return [str(t) for t in texts]


def embedded_model_missing() -> str | None:
    """Why the embedded model cannot run here, or None."""
    import importlib.util

    from gateway.local import shipped_gguf

    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install 'autoscholar[local]')"
    try:
        shipped_gguf()
    except AutoscholarError as exc:
        return str(exc)
    return None


def run_reviews(
    chosen: list[Checked], data_dirs: dict[str, Path], progress: Callable[[str], None]
) -> dict[str, Any]:
    """The full review (embedded model, preset debug, checks on the offline index) of the
    chosen variants; per kind, how many reviews mention the error."""
    why = embedded_model_missing()
    if why:
        return {"status": "skipped", "note": f"embedded model not available: {why}"}
    from gateway import Gateway
    from gateway.local import LocalServer
    from graphs.review import review_alone
    from reviewer.review.reviewing import ReviewDeps

    models_home = load_settings("debug").data_dir  # the re-quantised model is cached there
    server: LocalServer | None = None
    rows: list[dict[str, Any]] = []
    began = time.perf_counter()
    try:
        for checked in chosen:
            variant = checked.built.variant
            settings = load_settings(
                "debug",
                {
                    "data_dir": str(data_dirs[variant.paper]),
                    "literature": {"sources": ["offline"], "cache_enabled": False},
                    "llm": {"cache_enabled": False},
                },
            )
            server = server or LocalServer(settings.local, models_home)
            deps = ReviewDeps.from_settings(
                settings, Gateway(settings, local_server=server), calibrated=False
            )
            start = time.perf_counter()
            progress(f"  reviewing {variant.paper} {variant.label} ...")
            report = review_alone({"pdf_path": str(checked.built.pdf)}, deps)
            texts = review_texts(report)
            generic = [t for t in GENERIC_TERMS if t in "\n".join(texts).lower()]
            rows.append(
                {
                    "paper": variant.paper,
                    "variant": variant.label,
                    "kind": variant.kind,
                    "reviewers": len(report.reviewers),
                    "failed": len(report.failures),
                    "mentioned": bool(texts) and mentions(texts, variant.injection),
                    "generic_terms": generic,
                    "checks_findings": len(report.checks.findings) if report.checks else None,
                    "weaknesses": [w[:160] for w in _final_weaknesses(report)][:3],
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
    except AutoscholarError as exc:
        return {"status": "failed", "note": f"{type(exc).__name__}: {exc}", "reviews": rows}
    finally:
        if server is not None:
            server.stop()
    return {
        "status": "done",
        "model": "local (SmolLM2-135M), preset debug",
        "reviews": rows,
        "per_kind": _review_rates(rows),
        "seconds": round(time.perf_counter() - began, 1),
    }


def _final_weaknesses(report: Any) -> list[str]:
    """Each reviewer's final weaknesses, for a person to read what they said."""
    return [str(w) for r in report.reviewers for w in r.final.Weaknesses]


def _review_rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rates: dict[str, Any] = {}
    for kind in (*KINDS, "clean"):
        mine = [r for r in rows if r["kind"] == kind]
        hits = sum(r["mentioned"] for r in mine)
        generic = sum(bool(r["generic_terms"]) for r in mine)
        rates[kind] = {
            "reviews": len(mine),
            "mentioned": hits,
            "rate": hits / len(mine) if mine else None,
            "with_generic_terms": generic,
        }
    return rates


def pick_for_review(checked: list[Checked], per_kind: int) -> list[Checked]:
    """``per_kind`` variants of each kind (spread over the papers) and the clean twins."""
    chosen: list[Checked] = []
    for kind in (*KINDS, "clean"):
        mine = [c for c in checked if c.built.variant.kind == kind]
        mine.sort(key=lambda c: (c.built.variant.index, c.built.variant.paper))
        chosen += mine[:per_kind]
    return chosen
