"""``report.html``: the one page a person opens to see a run.

Built only from what a run leaves in its folder: ``run.json`` (every idea's outcome and
per-stage usage), ``ideas.json`` (novelty verdicts, and the ideas the run did not take
further), each idea's ``experiments.json`` (its plots) and ``review/review.json`` (its
scores), and ``ledger.jsonl`` (cost per role). Links and images are relative to the run
folder, so the page keeps working when the folder is moved or copied. The service's run
page shows the same tables through ``render_run_tables`` with links to its own routes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import quote

from jinja2 import Environment
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.html_templates import html_environment
from core.runstore import RunPaths, RunStoreError, open_run, safe_name
from gateway.ledger import Totals, read_entries, sum_entries
from reviewer.review.form import ReviewReport
from scientist.experiments.models import ExperimentRecord
from scientist.ideas.records import IdeaRecord, IdeasFile
from scientist.pipeline.models import STAGES, IdeaOutcome, RunManifest, RunStatus, StageUsage

REPORT_FILE = "report.html"
TEMPLATES = Path(__file__).parent / "templates"
# Each idea's result files, relative to its folder, in the order the page lists them.
PAPER_FILES = ("paper/paper.pdf", "paper_original/paper.pdf")
REVIEW_FILES = tuple(
    f"{folder}/review.{kind}"
    for folder in ("review", "review_revised")
    for kind in ("html", "pdf", "md", "json")
)
# The idea's literature review and experiment plan (scientist.survey, scientist.plan).
STUDY_FILES = ("literature_review.md", "plan.md")
NOTE_CHARS = 240

M = TypeVar("M", bound=BaseModel)
Linker = Callable[[str, str], str | None]
"""(idea name, a file's path relative to the idea's folder) → the URL the page links that
file with, or None where it is not served (the link is left out)."""


class RunReportError(RunStoreError):
    """The run folder has no readable run.json, so there is no run to report (exit code 2)."""


class FileLink(BaseModel):
    """A result file of an idea: its path inside the idea's folder and the URL to it."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="The file's path relative to the idea's folder.")
    href: str


class Figure(BaseModel):
    """A plot the idea's experiments produced."""

    model_config = ConfigDict(extra="forbid")

    name: str
    href: str
    caption: str = ""


class IdeaRow(BaseModel):
    """One idea of the report: how far it got, what it was judged, what it cost, its files."""

    model_config = ConfigDict(extra="forbid")

    name: str
    title: str = ""
    ran: bool = Field(description="False for an idea the ideas stage kept but the run left.")
    stage: str = Field(description="The last stage it reached.")
    status: str
    reason: str | None = None
    novelty: str = Field(
        "unchecked", description="The novelty verdict: novel, not_novel, undecided, skipped."
    )
    novelty_note: str = Field("", description="Why, cut short (ideas.json has it whole).")
    idea_scores: dict[str, int] = Field(
        default_factory=dict, description="The ideas model's own 1-10 scores."
    )
    overall: float | None = None
    revised_overall: float | None = None
    decision: str | None = None
    accept_probability: float | None = None
    scores: dict[str, float] = Field(
        default_factory=dict, description="Mean of each review score (review/review.json)."
    )
    cost_usd: float | None = None
    tokens: int | None = None
    seconds: float | None = None
    files: list[FileLink] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)


class StageRow(StageUsage):
    """One stage's usage, summed over the ideas (the ideas stage: the run's own)."""

    stage: str

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class RunReport(BaseModel):
    """Everything report.html shows."""

    model_config = ConfigDict(extra="forbid")

    folder: str = Field(description="The run folder's name.")
    template: str
    status: RunStatus
    reason: str | None = None
    started_at: str
    finished_at: str | None = None
    wall_s: float = 0.0
    preset: str = "default"
    ideas: list[IdeaRow] = Field(default_factory=list)
    stages: list[StageRow] = Field(default_factory=list)
    total: StageRow
    ledger: Totals | None = Field(None, description="ledger.jsonl's totals, per role.")
    notes: list[str] = Field(default_factory=list, description="Files that could not be read.")


class ReportSummary(BaseModel):
    """What ``scientist report --json`` prints."""

    model_config = ConfigDict(extra="forbid")

    report: str = Field(description="Path of the report.html written.")
    status: RunStatus
    ideas: list[IdeaRow]
    stages: list[StageRow]
    total: StageRow


# ----------------------------------------------------------------------------- reading


def read_manifest(run: RunPaths) -> RunManifest:
    """run.json, or a RunReportError that says what is wrong with it and what to do."""
    path = run.run_json
    if not path.is_file():
        raise RunReportError(
            f"{path} does not exist: {run.root} is not a paper run folder, or its run never "
            "started. Pass a folder that `scientist run` made under runs/."
        )
    try:
        return RunManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunReportError(f"{path} could not be read ({exc}); check its permissions.") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise RunReportError(
            f"{path} is not a valid run manifest ({exc.error_count()} errors; first, at "
            f"{where}: {first['msg']}). Fix it or restore it from a backup: it is the "
            "manifest `scientist run` writes, and the report is built from it."
        ) from exc


def _read_model(path: Path, model: type[M], notes: list[str]) -> M | None:
    """``path`` as ``model``; None when it is absent, and a note when it is unreadable."""
    if not path.is_file():
        return None
    try:
        return model.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValidationError) as exc:
        notes.append(f"{path.name} of {path.parent.name}/ is unreadable: {_cut(str(exc))}")
        return None


def _cut(text: str, limit: int = NOTE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def ledger_totals(run: RunPaths, notes: list[str]) -> Totals | None:
    """The run's ledger.jsonl summed per role; None when the run has none."""
    if not run.ledger.is_file():
        return None
    try:
        return sum_entries(read_entries(run.ledger))
    except (OSError, UnicodeDecodeError) as exc:
        notes.append(f"ledger.jsonl is unreadable: {_cut(str(exc))}")
        return None


# ----------------------------------------------------------------------------- links


def folder_links(idea: str, relative: str) -> str:
    """The URL of an idea's file relative to the run folder (report.html sits in it)."""
    return quote(f"{safe_name(idea)}/{relative}")


def _inside(folder: Path, relative: str) -> Path | None:
    """``folder/relative`` when it is a file inside ``folder`` (no .., no absolute path)."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        return None
    path = folder.joinpath(*parts)
    return path if path.is_file() else None


def idea_files(run: RunPaths, name: str, link: Linker) -> list[FileLink]:
    """The idea's papers, review reports, literature review and plan that exist, each with
    its URL."""
    folder = run.idea(name).root
    found: list[FileLink] = []
    for relative in (*PAPER_FILES, *REVIEW_FILES, *STUDY_FILES):
        href = link(name, relative) if _inside(folder, relative) else None
        if href is not None:
            found.append(FileLink(label=relative, href=href))
    return found


def idea_figures(run: RunPaths, name: str, link: Linker, notes: list[str]) -> list[Figure]:
    """The plots of experiments.json (the folder's PNG files when it has none), that exist."""
    folder = run.idea(name).root
    record = _read_model(run.idea(name).experiments_json, ExperimentRecord, notes)
    if record is not None:
        notes_by_file = [(f.path, f.description) for f in record.figures]
    else:
        notes_by_file = [(p.name, "") for p in sorted(folder.glob("*.png")) if p.is_file()]
    figures = []
    for relative, caption in notes_by_file:
        href = link(name, relative) if _inside(folder, relative) else None
        if href is not None:
            figures.append(Figure(name=relative, href=href, caption=caption))
    return figures


# ----------------------------------------------------------------------------- rows


def _novelty(record: IdeaRecord | None) -> tuple[str, str]:
    verdict = record.novelty if record is not None else None
    if verdict is None:
        return "unchecked", ""
    note = verdict.justification.strip() or (verdict.reason or "")
    if not note and verdict.closest:
        note = f'closest paper: "{verdict.closest[0].title}"'
    return verdict.status, _cut(note)


def _idea_scores(record: IdeaRecord | None) -> dict[str, int]:
    if record is None:
        return {}
    idea = record.idea
    scores = {
        "Interestingness": idea.Interestingness,
        "Feasibility": idea.Feasibility,
        "Novelty": idea.Novelty,
    }
    return {k: v for k, v in scores.items() if v is not None}  # a researcher's idea: unscored


def review_scores(run: RunPaths, name: str, notes: list[str]) -> dict[str, float]:
    """The mean of each score in the idea's review/review.json ({} without a review)."""
    report = _read_model(run.idea(name).review_dir / "review.json", ReviewReport, notes)
    if report is None:
        return {}
    return {field: stats.mean for field, stats in report.scores.items()}


def outcome_row(
    run: RunPaths, outcome: IdeaOutcome, record: IdeaRecord | None, link: Linker, notes: list[str]
) -> IdeaRow:
    """The row of an idea the run took through the pipeline."""
    novelty, note = _novelty(record)
    return IdeaRow(
        name=outcome.name,
        title=outcome.title or (record.idea.Title if record else ""),
        ran=True,
        stage=outcome.stage,
        status=outcome.status,
        reason=outcome.reason,
        novelty=novelty,
        novelty_note=note,
        idea_scores=_idea_scores(record),
        overall=outcome.overall,
        revised_overall=outcome.revised_overall,
        decision=outcome.decision,
        accept_probability=outcome.accept_probability,
        scores=review_scores(run, outcome.name, notes),
        cost_usd=outcome.cost_usd,
        tokens=outcome.tokens,
        seconds=outcome.seconds,
        files=idea_files(run, outcome.name, link),
        figures=idea_figures(run, outcome.name, link, notes),
    )


def left_row(record: IdeaRecord, status: RunStatus) -> IdeaRow:
    """The row of an idea the ideas stage kept but the run did not take further, and why."""
    novelty, note = _novelty(record)
    if record.novel is False:
        reason = "found not novel"
    elif status in ("done", "no_ideas"):
        reason = "not among the pipeline.ideas_to_run best ideas"
    else:
        reason = f"the run is {status}"
    return IdeaRow(
        name=record.idea.Name,
        title=record.idea.Title,
        ran=False,
        stage="ideas",
        status="not run",
        reason=reason,
        novelty=novelty,
        novelty_note=note,
        idea_scores=_idea_scores(record),
    )


def idea_rows(
    run: RunPaths, manifest: RunManifest, ideas: IdeasFile | None, link: Linker, notes: list[str]
) -> list[IdeaRow]:
    """The ideas the run took further (run.json's order), then those it left (ideas.json's)."""
    records = {r.idea.Name: r for r in (ideas.ideas if ideas else [])}
    rows = [outcome_row(run, o, records.get(o.name), link, notes) for o in manifest.ideas]
    ran = {o.name for o in manifest.ideas}
    rows += [left_row(r, manifest.status) for name, r in records.items() if name not in ran]
    return rows


def _add(row: StageRow, usage: StageUsage) -> None:
    row.seconds += usage.seconds
    row.calls += usage.calls
    row.prompt_tokens += usage.prompt_tokens
    row.completion_tokens += usage.completion_tokens
    row.cost_usd += usage.cost_usd


def stage_rows(manifest: RunManifest) -> tuple[list[StageRow], StageRow]:
    """Usage per stage (the ideas stage once, each later stage summed over the ideas that
    reached it) in pipeline order, and the total over all of them."""
    rows = {"ideas": StageRow(stage="ideas")}
    _add(rows["ideas"], manifest.ideas_stage)
    for outcome in manifest.ideas:
        for stage, usage in outcome.usage.items():
            _add(rows.setdefault(stage, StageRow(stage=stage)), usage)
    order: dict[str, int] = {stage: index for index, stage in enumerate(STAGES)}
    ordered = sorted(rows.values(), key=lambda r: order.get(r.stage, len(order)))
    total = StageRow(stage="total")
    for row in ordered:
        _add(total, row)
    return ordered, total


def build_report(run: RunPaths, link: Linker = folder_links) -> RunReport:
    """The report of the run in ``run``; a RunReportError when its run.json is unusable.

    Other files that are missing or unreadable leave their cells empty and add a note.
    """
    manifest = read_manifest(run)
    notes: list[str] = []
    ideas = _read_model(run.ideas_json, IdeasFile, notes)
    stages, total = stage_rows(manifest)
    return RunReport(
        folder=run.root.name,
        template=manifest.template,
        status=manifest.status,
        reason=manifest.reason,
        started_at=manifest.started_at,
        finished_at=manifest.finished_at,
        wall_s=manifest.wall_s,
        preset=manifest.preset,
        ideas=idea_rows(run, manifest, ideas, link, notes),
        stages=stages,
        total=total,
        ledger=ledger_totals(run, notes),
        notes=notes,
    )


# ----------------------------------------------------------------------------- rendering


@cache
def _environment() -> Environment:
    filters = {
        "usd": lambda value: "–" if value is None else f"{value:.4f}",
        "thousands": lambda value: "–" if value is None else f"{value:,}",
        "secs": _seconds,
        "score": lambda value: "–" if value is None else f"{value:.2f}",
    }
    return html_environment(TEMPLATES, filters)


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def render_run_tables(report: RunReport) -> Markup:
    """The ideas table and the usage tables (``_run_tables.html.j2``), for any page."""
    html = _environment().get_template("_run_tables.html.j2").render(report=report)
    return Markup(html)  # rendered with autoescape on: safe to put into another page


def render_report(report: RunReport) -> str:
    """The whole report.html: self-contained, its links relative to the run folder."""
    return _environment().get_template("report.html.j2").render(report=report)


def _write_atomically(path: Path, text: str) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_report(run_dir: Path) -> ReportSummary:
    """Write ``run_dir/report.html`` from the run folder's files; what it holds."""
    run = open_run(run_dir)
    report = build_report(run)
    path = run.root / REPORT_FILE
    try:
        _write_atomically(path, render_report(report))
    except OSError as exc:
        raise RunReportError(
            f"Could not write {path} ({exc}); check that the run folder is writable."
        ) from exc
    return ReportSummary(
        report=str(path),
        status=report.status,
        ideas=report.ideas,
        stages=report.stages,
        total=report.total,
    )
