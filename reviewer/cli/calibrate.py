"""``reviewer calibrate``: a plain function that ``reviewer.cli`` registers and tests call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.cli_support import (
    ErrorOutput,
    JsonOpt,
    console,
    emit_json,
    errors,
    fail_json,
    progress_bars,
    settings_from_flags,
)
from core.settings import Settings
from gateway import Gateway
from gateway.errors import EXIT_USAGE, AutoscholarError
from graphs.review import review_alone
from reviewer.calibration.evaluate import Row
from reviewer.calibration.fit import CalibratorKind
from reviewer.calibration.model_reviews import PaperStatus
from reviewer.calibration.report import CalibrationFile
from reviewer.calibration.run import (
    DEFAULT_DATA,
    SAMPLE_DATA,
    CalibrateOptions,
    Outcome,
    calibrate_from_reviews,
    calibrate_with_model,
)
from reviewer.review.reviewing import ReviewDeps

out = Console()
err = console  # stderr: progress and notes, silenced by -q


def calibrate_command(
    data: Annotated[
        Path | None,
        typer.Option(
            help="Papers with human decisions (JSONL), or `sample` for the shipped 20 synthetic "
            "records; default review.calibration_data, else ../shared's ICLR 2022 data "
            "beside a checkout."
        ),
    ] = None,
    reviews: Annotated[
        Path | None,
        typer.Option(
            help="Existing reviews (CSV/JSON/JSONL with paper_id and Overall): "
            "fit and score them without calling any model."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="A stratified sample of N papers.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample, folds and bootstrap.")] = 0,
    model: Annotated[str | None, typer.Option(help="litellm model for every reviewer.")] = None,
    reviewers: Annotated[int | None, typer.Option(help="Reviewers in the ensemble.")] = None,
    reflections: Annotated[int | None, typer.Option(help="Reflection rounds each.")] = None,
    calibrator: Annotated[str, typer.Option(help="logistic (Platt) or isotonic.")] = "logistic",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples per interval.")] = 1000,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("calibration"),
    preset: Annotated[
        str | None, typer.Option(help="debug, default, quality or a JSON path.")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="section.field=value")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the decision threshold and accept-probability calibrator; report held-out figures."""
    try:
        configured = settings_from_flags(None, None).review.calibration_data
    except AutoscholarError as exc:
        raise typer.Exit(fail_json(exc, as_json)) from exc
    data = calibration_data(data, configured)
    problem = _bad_input(
        data, reviews, calibrator, bootstrap, model, reviewers, reflections, preset, set_
    )
    if problem:
        errors.print(f"[bold red]error:[/] {escape(problem)}")
        if as_json:
            emit_json(ErrorOutput(error_type="UsageError", error=problem, exit_code=EXIT_USAGE))
        raise typer.Exit(EXIT_USAGE)
    kind: CalibratorKind = "isotonic" if calibrator == "isotonic" else "logistic"
    options = CalibrateOptions(
        data=data, out_dir=out_dir, limit=limit, seed=seed, calibrator=kind, n_resamples=bootstrap
    )
    try:
        if reviews is not None:
            outcome = calibrate_from_reviews(options, reviews)
        else:
            deps = model_deps(
                preset, set_, model=model, reviewers=reviewers, reflections=reflections
            )
            outcome = _with_progress(options, deps)
    except AutoscholarError as exc:
        raise typer.Exit(fail_json(exc, as_json)) from exc
    for note in outcome.notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    if as_json:
        emit_json(calibrate_output(data, outcome))
        return
    out.print(summary_table(outcome.rows))
    for name, path in outcome.paths.items():
        out.print(f"{name}: {escape(str(path))}", soft_wrap=True)  # a path never wraps


class CalibrateCommandOutput(BaseModel):
    """What ``reviewer calibrate --json`` prints: the held-out rows, the fit, the files."""

    data: str
    rows: list[Row]
    calibration: CalibrationFile
    files: dict[str, str]
    notes: list[str]
    exit_code: int = 0


def calibrate_output(data: Path, outcome: Outcome) -> CalibrateCommandOutput:
    """The JSON document of a calibration."""
    return CalibrateCommandOutput(
        data=str(data),
        rows=outcome.rows,
        calibration=outcome.calibration,
        files={name: str(path) for name, path in outcome.paths.items()},
        notes=outcome.notes,
    )


def calibration_data(given: Path | None, configured: Path | None) -> Path:
    """--data, else review.calibration_data, else ../shared beside a checkout; `sample` is
    the shipped synthetic sample. The result may not exist: :func:`_bad_input` says so."""
    if given is not None:
        return SAMPLE_DATA if str(given) == "sample" else given
    return configured if configured is not None else DEFAULT_DATA


def _bad_input(
    data: Path,
    reviews: Path | None,
    calibrator: str,
    bootstrap: int,
    *model_flags: object,
) -> str:
    """A one-line description of what is wrong with the flags, or ''."""
    if not data.is_file():
        return (
            f"{data}: no such data file. The ICLR 2022 calibration data is not shipped: pass "
            "--data PATH.jsonl or set review.calibration_data (AUTOSCHOLAR_REVIEW__CALIBRATION_"
            "DATA); `--data sample` runs on the 20 synthetic records that ship with autoscholar."
        )
    if reviews is not None and not reviews.is_file():
        return f"{reviews}: no such reviews file."
    if reviews is not None and any(f is not None for f in model_flags):
        return (
            "--reviews reads finished reviews: --model, --reviewers, --reflections, "
            "--preset and --set apply only when calibrate runs the reviewer."
        )
    if calibrator not in get_args(CalibratorKind):
        return f"--calibrator must be logistic or isotonic, not {calibrator!r}."
    if bootstrap < 100:
        return f"--bootstrap {bootstrap} is too few for a 95% interval: use at least 100."
    return ""


def review_settings(
    preset: str | None,
    set_: list[str] | None,
    *,
    model: str | None = None,
    reviewers: int | None = None,
    reflections: int | None = None,
    fewshot: int | None = None,
    calibration: Path | None = None,
) -> Settings:
    """Settings with the review commands' own flags applied on top of --set."""
    flags = {
        "llm.models.reviewer": model,
        "llm.models.meta_reviewer": model,
        "review.num_reviewers": reviewers,
        "review.num_reflections": reflections,
        "review.num_fewshot": fewshot,
        "review.calibration_path": str(calibration) if calibration else None,
    }
    return settings_from_flags(preset, set_, flags)


def model_deps(
    preset: str | None,
    set_: list[str] | None,
    *,
    model: str | None,
    reviewers: int | None,
    reflections: int | None,
) -> ReviewDeps:
    """Review dependencies built exactly as ``reviewer review`` builds its settings."""
    cfg = review_settings(preset, set_, model=model, reviewers=reviewers, reflections=reflections)
    if "local" in {cfg.llm.models.reviewer, *cfg.review.models}:
        err.print(
            "[yellow]reviewer model: local (embedded SmolLM2-135M) — it exercises the "
            "pipeline; expect figures near chance.[/]"
        )
    # No calibration is loaded: calibration needs the raw mean Overall, not a decision. No
    # checks either: the ICLR papers are text without pages, and looking up hundreds of
    # papers' references and prior work is not what calibration measures.
    cfg = cfg.model_copy(update={"checks": cfg.checks.model_copy(update={"enabled": False})})
    return ReviewDeps.from_settings(cfg, Gateway.from_settings(cfg), calibrated=False)


def _with_progress(options: CalibrateOptions, deps: ReviewDeps) -> Outcome:
    with progress_bars(err) as progress:
        task = progress.add_task("reviewing papers", total=options.limit)

        def on_paper(paper_id: str, status: PaperStatus, detail: str) -> None:
            progress.advance(task)
            if status == "failed":
                progress.console.print(f"[yellow]{paper_id}: left out[/] ({escape(detail)})")
            else:
                progress.update(task, description=escape(f"{paper_id}: {status}, {detail}"))

        outcome, _ = calibrate_with_model(options, deps, review_alone, on_paper)
    return outcome


SUMMARY_METRICS = {
    "balanced_accuracy": "Bal.acc",
    "roc_auc": "AUC",
    "f1": "F1",
    "spearman": "Spear.",
    "brier": "Brier",
    "ece": "ECE",
}


def summary_table(rows: list[Row]) -> Table:
    """The main held-out figures on one screen; every metric with its interval is in report.md."""
    table = Table(title="Held-out figures (all metrics, with 95% intervals, in report.md)")
    table.add_column("reviewer or baseline [rule]")
    table.add_column("n", justify="right")
    for header in SUMMARY_METRICS.values():
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        values = [row.metrics[k].value for k in SUMMARY_METRICS]
        cells = ("—" if v is None else f"{v:.2f}" for v in values)
        table.add_row(escape(f"{row.name} [{row.rule}]"), str(row.n), *cells)
    return table
