"""``reviewer calibrate``: a plain function that ``reviewer.cli`` registers and tests call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.cli_support import fail, progress_bars, settings_from_flags
from core.settings import Settings
from gateway import Gateway
from gateway.errors import AutoscholarError
from graphs.review import review_alone
from reviewer.calibration.evaluate import Row
from reviewer.calibration.fit import CalibratorKind
from reviewer.calibration.model_reviews import PaperStatus
from reviewer.calibration.run import (
    DEFAULT_DATA,
    CalibrateOptions,
    Outcome,
    calibrate_from_reviews,
    calibrate_with_model,
)
from reviewer.review.reviewing import ReviewDeps

out = Console()
err = Console(stderr=True, soft_wrap=True)


def calibrate_command(
    data: Annotated[
        Path | None, typer.Option(help=f"Papers (JSONL); default {DEFAULT_DATA} if it exists.")
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
) -> None:
    """Fit the decision threshold and accept-probability calibrator; report held-out figures."""
    data = data or DEFAULT_DATA
    problem = _bad_input(
        data, reviews, calibrator, bootstrap, model, reviewers, reflections, preset, set_
    )
    if problem:
        err.print(f"[bold red]error:[/] {escape(problem)}")
        raise typer.Exit(2)
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
        raise typer.Exit(fail(exc)) from exc
    out.print(summary_table(outcome.rows))
    for note in outcome.notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    for name, path in outcome.paths.items():
        out.print(f"{name}: {escape(str(path))}", soft_wrap=True)  # a path never wraps


def _bad_input(
    data: Path,
    reviews: Path | None,
    calibrator: str,
    bootstrap: int,
    *model_flags: object,
) -> str:
    """A one-line description of what is wrong with the flags, or ''."""
    if not data.is_file():
        return f"{data}: no such data file; pass --data with the papers' JSONL."
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
    # No calibration is loaded: calibration needs the raw mean Overall, not a decision.
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
