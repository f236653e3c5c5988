"""``reviewer``: the reviewing side's command line. It never imports ``scientist``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel, Field
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from core.cli_support import (
    PresetOpt,
    QuietOpt,
    SetOpt,
    VerboseOpt,
    console,
    emit_json,
    errors,
    fail,
    print_settings,
    progress_bars,
    set_verbosity,
    version_option,
)
from core.settings import Settings
from gateway import Gateway
from gateway.errors import EXIT_FAILED, EXIT_USAGE, AutoscholarError
from gateway.ledger import Ledger
from graphs.review import graph_config, review_paper
from reviewer.cli.calibrate import calibrate_command, review_settings
from reviewer.cli.check import check_command
from reviewer.cli.remote import TOKEN_ENV, remote_command
from reviewer.review.form import SCORE_FIELDS, ReviewReport
from reviewer.review.report import write_outputs
from reviewer.review.reviewing import ProgressEvent, ReviewDeps

app = typer.Typer(help="Review papers with a calibrated LLM ensemble.", no_args_is_help=True)
out = Console()
err = console  # stderr: progress and notes, silenced by -q


@app.command()
def settings(preset: PresetOpt = None, set_: SetOpt = None) -> None:
    """Print the effective settings (preset < environment < --set), secrets masked."""
    print_settings(preset, set_)


def build_deps(cfg: Settings) -> ReviewDeps:
    """Gateway, calibration and few-shot examples for these settings."""
    return ReviewDeps.from_settings(cfg, Gateway.from_settings(cfg))


def _pdfs(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() == ".pdf")
    return [path]


@app.command("review")
def review_command(
    paper: Annotated[Path, typer.Argument(help="A PDF, or a folder of PDFs.")],
    model: Annotated[str | None, typer.Option(help="litellm model for every reviewer.")] = None,
    reviewers: Annotated[int | None, typer.Option(help="Reviewers in the ensemble.")] = None,
    reflections: Annotated[int | None, typer.Option(help="Reflection rounds each.")] = None,
    fewshot: Annotated[int | None, typer.Option(help="Example reviews shown.")] = None,
    calibration: Annotated[Path | None, typer.Option(help="A calibration.json.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("reviews"),
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout (ReviewCommandOutput).")
    ] = False,
    service: Annotated[
        str | None,
        typer.Option(help="Review on this autoscholar service (URL) instead of locally."),
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar=TOKEN_ENV, help="The service's bearer token.")
    ] = None,
) -> None:
    """Review a PDF (or every PDF in a folder): review.json, .md, .html and .pdf per paper.
    With --service: on the service, writing results.csv and results.jsonl into --out."""
    if service is not None:
        local_only: dict[str, object] = {"--model": model, "--fewshot": fewshot}
        local_only |= {"--calibration": calibration, "--set": set_}
        options = {"preset": preset, "num_reviewers": reviewers, "num_reflections": reflections}
        raise typer.Exit(
            remote_command(
                paper,
                service,
                token,
                out_dir,
                options={k: str(v) for k, v in options.items() if v is not None},
                local_only=[flag for flag, value in local_only.items() if value],
                as_json=as_json,
            )
        )
    try:
        cfg = review_settings(
            preset,
            set_,
            model=model,
            reviewers=reviewers,
            reflections=reflections,
            fewshot=fewshot,
            calibration=calibration,
        )
        deps = build_deps(cfg)
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    if not paper.exists():
        errors.print(f"[bold red]error:[/] {paper}: no such file or folder")
        raise typer.Exit(EXIT_USAGE)
    papers = _pdfs(paper)
    if not papers:
        errors.print(f"[bold red]error:[/] {paper}: the folder holds no .pdf files")
        raise typer.Exit(EXIT_USAGE)
    if any(m == "local" for m in [cfg.llm.models.reviewer, *cfg.review.models]):
        err.print(
            "[yellow]reviewer model: local (embedded SmolLM2-135M) — it exercises the "
            "pipeline; its reviews are not meaningful.[/]"
        )
    results = _review_all(papers, deps, out_dir, single=len(papers) == 1 and not paper.is_dir())
    failures = [outcome for _, outcome, _ in results if isinstance(outcome, AutoscholarError)]
    code = review_exit_code(failures, len(papers))
    print_results(results, summaries=not as_json)
    if as_json:
        emit_json(command_output(results, code))
    raise typer.Exit(code)


class PaperResult(BaseModel):
    """One paper of ``reviewer review --json``."""

    pdf: str
    status: Literal["reviewed", "failed"]
    decision: str | None = None
    overall_mean: float | None = None
    accept_probability: float | None = None
    files: dict[str, str] = Field(default_factory=dict)
    error_type: str | None = None
    error: str | None = None


class ReviewCommandOutput(BaseModel):
    """What ``reviewer review --json`` prints: every paper's result and the exit code."""

    papers: list[PaperResult]
    exit_code: int


Result = tuple[Path, ReviewReport | AutoscholarError, dict[str, Path]]


def command_output(results: list[Result], code: int) -> ReviewCommandOutput:
    """The JSON document of a review command."""
    papers = []
    for pdf, outcome, paths in results:
        if isinstance(outcome, AutoscholarError):
            failed = PaperResult(
                pdf=str(pdf), status="failed", error_type=type(outcome).__name__, error=str(outcome)
            )
            papers.append(failed)
            continue
        stats = outcome.scores.get("Overall")
        reviewed = PaperResult(
            pdf=str(pdf),
            status="reviewed",
            decision=outcome.decision.decision,
            overall_mean=stats.mean if stats is not None else None,
            accept_probability=outcome.decision.probability,
            files={kind: str(path) for kind, path in paths.items()},
        )
        papers.append(reviewed)
    return ReviewCommandOutput(papers=papers, exit_code=code)


def print_results(results: list[Result], *, summaries: bool = True) -> None:
    """A summary per reviewed paper on stdout (unless not ``summaries``); each failure on
    stderr."""
    for pdf, outcome, paths in results:
        if isinstance(outcome, AutoscholarError):
            errors.print(
                f"[bold red]error:[/] {outcome}"
                if str(pdf) in str(outcome)
                else f"[bold red]error:[/] {pdf}: {outcome}"
            )
        elif summaries:
            out.print(summary(outcome, paths))


def review_exit_code(failures: list[AutoscholarError], papers: int) -> int:
    """0 when every paper was reviewed; when every one failed the same way, that error's code
    (2 for an unusable PDF, 3 for the configuration); else 1."""
    if not failures:
        return 0
    codes = {exc.exit_code for exc in failures}
    return codes.pop() if len(failures) == papers and len(codes) == 1 else EXIT_FAILED


def _review_all(
    papers: list[Path], deps: ReviewDeps, out_dir: Path, *, single: bool
) -> list[Result]:
    """Review papers concurrently (bounded); each paper's report (or error) and files."""
    with progress_bars(err) as progress:

        def one(pdf: Path) -> tuple[Path, ReviewReport | AutoscholarError, dict[str, Path]]:
            target = out_dir if single else out_dir / pdf.stem
            tasks = {
                i: progress.add_task(
                    f"{pdf.name} reviewer {i + 1}", total=1 + deps.settings.review.num_reflections
                )
                for i in range(deps.settings.review.num_reviewers)
            }

            def on_event(event: ProgressEvent) -> None:
                total = 1 + event.total_rounds
                progress.update(
                    tasks[event.reviewer], completed=total if event.done else event.round + 1
                )

            try:
                paper_deps = replace(deps, on_progress=on_event)
                report = review_paper({"pdf_path": str(pdf)}, paper_deps, ledger=Ledger())
                return pdf, report, write_outputs(report, target)
            except AutoscholarError as exc:
                return pdf, exc, {}

        # One embedded server answers one request at a time: papers in parallel would only
        # evict each other's prompt cache (see graphs.review.graph_config).
        parallel = graph_config(deps) == {}
        workers = min(deps.settings.review.max_concurrent_papers if parallel else 1, len(papers))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, papers))


def summary(report: ReviewReport, paths: dict[str, Path]) -> Group:
    """One screen: decision, scores, probability and its provenance, tokens, cost, time, files."""
    d = report.decision
    prob = f"{d.probability:.2f}" if d.probability is not None else "n/a (uncalibrated)"
    table = Table(title=report.paper.title or report.paper.source)
    for column, justify in (
        ("score", "left"),
        ("mean", "right"),
        ("spread", "right"),
        ("reviewers", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name in SCORE_FIELDS:
        s = report.scores[name]
        table.add_row(
            name, f"{s.mean:.2f}", f"±{s.std:.2f} ({s.min}–{s.max})", " ".join(map(str, s.values))
        )
    u = report.usage
    lines: list[Table | Text] = [
        Text(
            f"{d.decision.upper()}: mean Overall {d.overall_mean:.2f}, threshold "
            f"{d.threshold:g}, P(accept) {prob}",
            style="bold",
        ),
        table,
        Text(f"calibration: {d.provenance}"),
        Text(
            f"{u['calls']} calls, {u['prompt_tokens']:,} prompt + {u['completion_tokens']:,} "
            f"completion tokens, ${u['cost_usd']:.4f}{_caching_note(u)}, "
            f"{report.wall_time_s:.0f} s; "
            f"injection flags: {len(report.injection_flags)}; failed reviewers: "
            f"{len(report.failures)}"
        ),
        *(Text(f"{k}: {v}") for k, v in paths.items()),
    ]
    return Group(*lines)


def _caching_note(usage: dict[str, float | int]) -> str:
    cached = int(usage.get("cached_prompt_tokens", 0))
    if not cached:
        return ""
    saved = float(usage.get("cache_savings_usd", 0.0))
    return f" ({cached:,} prompt tokens from the provider's cache saved ${saved:.4f})"


app.command("calibrate")(calibrate_command)
app.command("check")(check_command)


@app.callback()
def _root(
    version: Annotated[bool, version_option("reviewer")] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Review papers with a calibrated LLM ensemble."""
    set_verbosity(quiet, verbose)


def main() -> None:
    """Console-script entry point."""
    app()
