"""``scientist bench``: research agents compared over templates with performance profiles and
AUP (MLGym). Registered on the main app by :func:`register`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from core.cli_support import (
    JsonOpt,
    PresetOpt,
    SetOpt,
    console,
    emit_json,
    fail_json,
    progress_bars,
    settings_from_flags,
)
from core.settings import Settings
from gateway.errors import AutoscholarError
from gateway.gateway import Gateway
from scientist.gym.agent import AgentFactory
from scientist.gym.bench import (
    BenchConfig,
    BenchConfigError,
    BenchEvent,
    BenchOutcome,
    EpisodeExecutor,
    LocalEpisodeExecutor,
    MethodSpend,
    run_bench,
    spend_summary,
)
from scientist.gym.bench_report import bench_table
from scientist.gym.factory import agent_factory
from scientist.gym.limits import EpisodeLimits
from scientist.gym.profiles import BenchScores

out = Console()
err = console  # stderr: progress and notes, silenced by -q


def register(app: typer.Typer) -> None:
    """Add ``scientist bench`` to ``app``."""
    app.command("bench")(bench_command)


class BenchSummary(BaseModel):
    """What ``scientist bench --json`` prints: the scores, the files, the spend, the counts."""

    scores: BenchScores
    files: dict[str, str]
    spend: list[MethodSpend]
    episodes_run: int
    episodes_reused: int


def bench_command(
    tasks: Annotated[
        str, typer.Option(help="Comma-separated templates (names or folders) with a task.json.")
    ],
    models: Annotated[
        str,
        typer.Option(
            help="Comma-separated methods: litellm model strings or 'local' (the tool agent), "
            "or 'aider:<model>' (the experiment stage's Aider rounds)."
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder; rerun it to resume.")],
    attempts: Annotated[int, typer.Option(min=1, help="Episodes per (task, model).")] = 4,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Steps per episode.")] = None,
    max_cost_usd: Annotated[
        float | None, typer.Option(min=0, help="Dollars per episode (agent's calls).")
    ] = None,
    max_total_tokens: Annotated[
        int | None, typer.Option(min=1, help="Tokens per episode (prompt + completion).")
    ] = None,
    memory: Annotated[
        bool, typer.Option("--memory", help="Give tool agents a note memory.")
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            help="Where episodes run: 'local' (one at a time, here) or 'ray' (one Ray task "
            "per episode, each reserving cluster.num_cpus/num_gpus/memory_mb; --out must be "
            "on storage every node mounts at the same path)."
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --executor ray: the cluster to join (HOST:PORT of the head, "
            "ray://HOST:10001 or auto; default cluster.address; none: a private Ray "
            "instance here).",
        ),
    ] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every (task, model, attempt) episode, then score them: best attempt and best
    submission per model, performance profiles, AUP and cost. Writes bench.json, bench.md,
    profiles.png and aup_vs_cost.png into --out."""
    try:
        settings = settings_from_flags(preset, set_, {"cluster.address": ray_address})
        config = bench_config(
            tasks, models, attempts, executor, max_steps, max_cost_usd, max_total_tokens
        )
        factory = agent_factory(settings, memory=memory)
        outcome = bench(config, settings, out_dir, factory, episode_executor(config, settings))
    except AutoscholarError as exc:
        raise typer.Exit(fail_json(exc, as_json)) from exc
    if as_json:
        emit_json(summary(outcome))
        return
    show(outcome)


def bench_config(
    tasks: str,
    models: str,
    attempts: int,
    executor: str,
    max_steps: int | None = None,
    max_cost_usd: float | None = None,
    max_total_tokens: int | None = None,
) -> BenchConfig:
    """The flags as a :class:`BenchConfig` (a typed error on bad input)."""
    limits = {
        "max_steps": max_steps,
        "max_cost_usd": max_cost_usd,
        "max_total_tokens": max_total_tokens,
    }
    try:
        return BenchConfig(
            tasks=_names(tasks),
            methods=_names(models),
            attempts=attempts,
            executor=executor,
            limits=EpisodeLimits.model_validate({k: v for k, v in limits.items() if v is not None}),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BenchConfigError(f"Bad bench options: {problems}.") from exc


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def episode_executor(config: BenchConfig, settings: Settings) -> EpisodeExecutor:
    """Where ``config.executor`` says the episodes run; Ray is loaded only when asked for."""
    if config.executor == "local":
        return LocalEpisodeExecutor()
    try:  # Ray is the optional `cluster` extra
        from scientist.runs.ray_bench import RayEpisodeExecutor
    except ImportError as exc:
        raise BenchConfigError(
            "--executor ray needs Ray: pip install 'autoscholar[cluster]'."
        ) from exc
    return RayEpisodeExecutor(settings.cluster)


def bench(
    config: BenchConfig,
    settings: Settings,
    out_dir: Path,
    factory: AgentFactory,
    executor: EpisodeExecutor | None = None,
) -> BenchOutcome:
    """Run the bench with a progress bar on stderr; no response cache (attempts must differ).
    Each episode's gateway is built where it runs (a gateway does not travel to Ray workers)."""
    gateway: Gateway | type[Gateway] = Gateway if config.executor == "ray" else Gateway(settings)
    with progress_bars(err) as bars:
        task = bars.add_task(
            "episodes", total=len(config.tasks) * len(config.methods) * config.attempts
        )
        return run_bench(
            config,
            settings,
            out_dir,
            factory,
            gateway,
            on_event=_on_event(bars, task),
            executor=executor,
        )


def _on_event(bars: Progress, task: TaskID) -> Callable[[BenchEvent], None]:
    def on_event(event: BenchEvent) -> None:
        key = event.key
        label = f"{key.task} · {key.method} · attempt {key.attempt}"
        if event.kind == "started":
            bars.update(task, description=f"{label}: running")
            return
        result = event.result
        status = "reused" if event.kind == "reused" else result.status if result else "?"
        bars.update(task, advance=1, description=f"{label}: {status}")

    return on_event


def summary(outcome: BenchOutcome) -> BenchSummary:
    """The ``--json`` document."""
    files = {name: str(path) for name, path in vars(outcome.files).items()}
    return BenchSummary(
        scores=outcome.scores,
        files=files,
        spend=spend_summary(outcome.results),
        episodes_run=len(outcome.ran),
        episodes_reused=len(outcome.reused),
    )


def show(outcome: BenchOutcome) -> None:
    """The scores table, the spend per model and the files, on stdout."""
    out.print(bench_table(outcome.scores))
    out.print(spend_table(spend_summary(outcome.results)))
    out.print(
        f"{len(outcome.ran)} episodes run, {len(outcome.reused)} read back; "
        f"report {outcome.files.markdown}, plots {outcome.files.profiles}, "
        f"{outcome.files.aup_vs_cost}"
    )


def spend_table(rows: list[MethodSpend]) -> Table:
    """Tokens, dollars and time per model over the bench's episodes."""
    table = Table(title="spend")
    for column in (
        "model",
        "episodes",
        "submitted",
        "failed",
        "tokens in",
        "tokens out",
        "cost $",
        "wall s",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(
            row.method,
            str(row.episodes),
            str(row.submitted),
            str(row.failed),
            str(row.prompt_tokens),
            str(row.completion_tokens),
            f"{row.cost_usd:.4f}",
            f"{row.wall_s:.1f}",
        )
    return table
