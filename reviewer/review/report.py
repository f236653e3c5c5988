"""Render a ReviewReport as review.json, review.md, review.html and review.pdf.

The review text comes from models and from the paper, so it is untrusted: the HTML
template autoescapes everything, and Markdown output neutralises raw HTML and links.
Every file is written to a temporary file beside it and renamed, so a crash never
leaves a half-written review behind.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gateway.errors import AutoscholarError
from reviewer.checks.models import ChecksReport, Finding, PriorWork, ReferenceCheck
from reviewer.review.form import SCORE_FIELDS, ReviewerResult, ReviewForm, ReviewReport

TEMPLATES = Path(__file__).parent / "report_templates"
SCORE_RANGES: dict[str, tuple[int, int]] = {
    **{name: (1, 4) for name in SCORE_FIELDS},
    "Overall": (1, 10),
    "Confidence": (1, 5),
}
REVIEWER_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
LOCAL_MODEL_NOTE = (
    'These reviews were written by the embedded model "local", a 135M-parameter model '
    "that runs without an API key. It shows that the pipeline works; its reviews and "
    "scores are not meaningful. Use a real model for a real review."
)
USAGE_LABELS = {
    "calls": "LLM calls",
    "cache_hits": "cache hits",
    "prompt_tokens": "prompt tokens",
    "completion_tokens": "completion tokens",
    "total_tokens": "total tokens",
    "cost_usd": "cost (USD)",
    "cached_prompt_tokens": "prompt tokens from provider cache",
    "cache_savings_usd": "saved by prompt caching (USD)",
    "latency_s": "model time (s)",
}
STATUS_LABELS = {
    "verified": "verified",
    "mismatch": "mismatch",
    "not_found": "not found",
    "unchecked": "unchecked",
}
_SAFE_URL = re.compile(r"^https://[^\s<>()\[\]\"'`]+$")
# Geometry of one row's spread chart, in SVG user units: axis ends, axis height, size.
CHART_LEFT, CHART_RIGHT, CHART_Y, CHART_WIDTH, CHART_HEIGHT = 8.0, 222.0, 12.0, 230, 32


class ReportRenderError(AutoscholarError):
    """A review file could not be rendered; ``written`` lists the files that were."""

    def __init__(self, message: str, *, written: dict[str, Path] | None = None) -> None:
        super().__init__(message)
        self.written = written or {}


@dataclass(frozen=True)
class Dot:
    """One reviewer's score in a spread chart."""

    x: float
    y: float
    color: str
    title: str


@dataclass(frozen=True)
class Spread:
    """One score field's spread chart: axis ticks, min–max span, reviewer dots and mean."""

    ticks: list[tuple[float, str]]
    span: tuple[float, float] | None
    dots: list[Dot]
    mean_x: float | None


@dataclass(frozen=True)
class ScoreRow:
    """One line of the score table, already formatted, with its spread chart."""

    field: str
    mean: str
    std: str
    span: str
    values: str
    spread: Spread


@dataclass(frozen=True)
class ReviewerView:
    """One reviewer's final review with what the templates show about it."""

    number: int
    model: str
    persona: str
    color: str
    review: ReviewForm
    scores: list[tuple[str, int]]
    rounds: int
    stopped_early: bool


@dataclass(frozen=True)
class PriorView:
    """One prior paper with a link only when it is a plain https URL."""

    paper: PriorWork
    url: str | None
    authors: str


@dataclass(frozen=True)
class ChecksView:
    """The Checks section: counts, findings, the references that failed, prior work, notes."""

    report: ChecksReport
    counts: list[tuple[str, int]]
    findings: list[Finding]
    problems: list[ReferenceCheck]
    prior: list[PriorView]


def checks_view(checks: ChecksReport | None) -> ChecksView | None:
    """What the report templates (and the service's review page) show of the checks."""
    if checks is None:
        return None
    counts = checks.reference_counts()
    return ChecksView(
        report=checks,
        counts=[(STATUS_LABELS[status], n) for status, n in counts.items()],
        findings=checks.findings,
        problems=[r for r in checks.references if r.status in ("not_found", "mismatch")],
        prior=[_prior_view(p) for p in checks.prior_work],
    )


def _prior_view(paper: PriorWork) -> PriorView:
    url = paper.url if paper.url and _SAFE_URL.match(paper.url) else None
    names = paper.authors[:3]
    authors = ", ".join(names) + (" et al." if len(paper.authors) > 3 else "")
    return PriorView(paper=paper, url=url, authors=authors)


def render_markdown(report: ReviewReport) -> str:
    """The review as Markdown: decision, scores, meta-review, reviews, excerpt and usage."""
    return re.sub(r"\n{3,}", "\n\n", _render("review.md.j2", report))


def render_html(report: ReviewReport) -> str:
    """The review as a standalone HTML page (inline CSS and SVG, no external resources)."""
    return _render("review.html.j2", report)


def render_pdf(html: str, out: Path) -> None:
    """Render ``html`` to ``out`` with WeasyPrint, atomically; failures raise ReportRenderError."""
    try:
        import weasyprint  # imported here: it needs Pango, which only the PDF path uses

        # Lazy, as weasyprint above: html_fetch imports weasyprint (Pango, PDF path only).
        from core.html_fetch import FolderURLFetcher
    except (ImportError, OSError) as exc:
        raise ReportRenderError(f"WeasyPrint is unusable ({exc}); install Pango/cairo.") from exc
    with _atomic_path(out) as tmp:
        try:
            # The page is self-contained; text from the paper must not make it read any file.
            weasyprint.HTML(string=html, url_fetcher=FolderURLFetcher(None)).write_pdf(tmp)
        except Exception as exc:  # WeasyPrint raises many unrelated types; name them all once
            raise ReportRenderError(f"WeasyPrint failed on {out.name}: {exc!r}") from exc


def write_outputs(report: ReviewReport, out_dir: Path) -> dict[str, Path]:
    """Write review.json/.md/.html/.pdf into ``out_dir``; PDF failure raises after the rest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"review.{kind}" for kind in ("json", "md", "html", "pdf")}
    slim = report.model_copy(update={"shown": report.shown.model_copy(update={"text": ""})})
    html = render_html(report)
    texts = {"json": slim.model_dump_json(indent=2), "md": render_markdown(report), "html": html}
    for kind, text in texts.items():
        _write_text(paths[kind], text + "\n")
    written = {kind: paths[kind] for kind in texts}
    try:
        render_pdf(html, paths["pdf"])
    except ReportRenderError as exc:
        raise ReportRenderError(
            f"{exc} review.json, review.md and review.html were written to {out_dir}; "
            "open review.html in a browser or fix WeasyPrint and re-render.",
            written=written,
        ) from exc
    return paths


def _write_text(path: Path, text: str) -> None:
    with _atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, renamed onto it on success, removed on failure."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = markdown_inline
    env.filters["num"] = _number
    return env


def _render(name: str, report: ReviewReport) -> str:
    return _environment().get_template(name).render(**_context(report)).strip()


def markdown_inline(value: object) -> str:
    """``value`` on one line with raw HTML, links and table pipes neutralised, else verbatim."""
    text = " ".join(str(value).split())
    for char in ("\\", "<", "|"):
        text = text.replace(char, "\\" + char)
    return text.replace("](", "]\\(")


def _number(value: float | int) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _context(report: ReviewReport) -> dict[str, Any]:
    reviewers = [_reviewer_view(r) for r in report.reviewers]
    return {
        "report": report,
        "title": report.paper.title or report.paper.source,
        "probability": _probability_text(report),
        "score_rows": [_score_row(report, name) for name in SCORE_FIELDS],
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "reviewers": reviewers,
        "usage": _usage_rows(report),
        "local_note": LOCAL_MODEL_NOTE if _uses_local_model(report) else "",
        "checks": checks_view(report.checks),
    }


def _probability_text(report: ReviewReport) -> str:
    decision = report.decision
    kind = "calibrated" if decision.calibrated else "uncalibrated"
    if decision.probability is None:
        return f"no accept probability ({kind})"
    return f"accept probability {decision.probability:.2f} ({kind})"


def _score_row(report: ReviewReport, name: str) -> ScoreRow:
    stats = report.scores.get(name)
    spread = _spread(report, name)
    if stats is None:
        return ScoreRow(name, "–", "–", "–", "–", spread)
    values = ", ".join(str(v) for v in stats.values)
    span = f"{stats.min}–{stats.max}"
    return ScoreRow(name, f"{stats.mean:.2f}", f"{stats.std:.2f}", span, values, spread)


def _reviewer_view(result: ReviewerResult) -> ReviewerView:
    final = result.final
    return ReviewerView(
        number=result.index + 1,
        model=result.model,
        persona=result.persona,
        color=_color(result.index),
        review=final,
        scores=[(name, int(getattr(final, name))) for name in SCORE_FIELDS],
        rounds=len(result.rounds),
        stopped_early=result.stopped_early,
    )


def _color(index: int) -> str:
    return REVIEWER_COLORS[index % len(REVIEWER_COLORS)]


def _x(value: float, low: int, high: int) -> float:
    return round(CHART_LEFT + (value - low) / (high - low) * (CHART_RIGHT - CHART_LEFT), 1)


def _spread(report: ReviewReport, name: str) -> Spread:
    """The chart for one field, drawn from the reviewers' final reviews on the field's range."""
    low, high = SCORE_RANGES[name]
    values = [(r.index, int(getattr(r.final, name))) for r in report.reviewers]
    stats = report.scores.get(name)
    scored = [v for _, v in values]
    mean = stats.mean if stats else (sum(scored) / len(scored) if scored else None)
    return Spread(
        ticks=[(_x(t, low, high), str(t)) for t in range(low, high + 1)],
        span=(_x(min(scored), low, high), _x(max(scored), low, high)) if scored else None,
        dots=_dots(values, low, high),
        mean_x=None if mean is None else _x(mean, low, high),
    )


def _dots(values: Sequence[tuple[int, int]], low: int, high: int) -> list[Dot]:
    """Reviewers' dots; equal scores are fanned out vertically so none hides another."""
    dots = []
    for index, value in values:
        same = [i for i, v in values if v == value]
        step = min(5.0, 14.0 / max(len(same) - 1, 1))
        offset = (same.index(index) - (len(same) - 1) / 2) * step
        x = _x(value, low, high)
        dots.append(Dot(x, CHART_Y + offset, _color(index), f"Reviewer {index + 1}: {value}"))
    return dots


def _usage_rows(report: ReviewReport) -> list[tuple[str, str]]:
    known = [key for key in USAGE_LABELS if key in report.usage]
    rest = sorted(key for key in report.usage if key not in USAGE_LABELS)
    rows = []
    for key in known + rest:
        value = report.usage[key]
        text = f"${value:.4f}" if key.endswith("_usd") else _number(value)
        rows.append((USAGE_LABELS.get(key, key.replace("_", " ")), text))
    rows.append(("wall time", f"{report.wall_time_s:.1f} s"))
    return rows


def _uses_local_model(report: ReviewReport) -> bool:
    return "local" in report.models or any(r.model == "local" for r in report.reviewers)
