"""Carrying out one parsed action in a workspace: the file commands on text, the rest in the
sandbox. Every agent mistake becomes an observation (``StepOutcome.error``), never an
exception; only a broken environment (a template virtualenv that cannot be made) raises."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from scientist.experiments.models import GroupResult, RunOutcome
from scientist.experiments.runner import LOG_DIR
from scientist.gym import files
from scientist.gym.actions import (
    Action,
    BashAction,
    CreateAction,
    EditAction,
    InsertAction,
    OpenAction,
    PythonAction,
    SearchAction,
    SubmitAction,
    ValidateAction,
)
from scientist.gym.errors import CommandError, MetricError
from scientist.gym.limits import EpisodeLimits
from scientist.gym.observations import truncate
from scientist.gym.sandboxed import (
    GymRunner,
    bash_command,
    log_tail,
    process_report,
    python_command,
    safe_reason,
    search_command,
    search_report,
)
from scientist.gym.task import GymTask, improvement, metric_value


@dataclass
class StepOutcome:
    """What one command produced, before budgets and bookkeeping."""

    observation: str
    command: str | None = None
    error: str | None = None
    run: str | None = None
    run_status: str | None = None
    metric: float | None = None
    metrics: dict[str, dict[str, float]] | None = None
    reward: float = 0.0
    submitted: bool = False


@dataclass(frozen=True)
class CommandContext:
    """What a command may use: the workspace, the sandbox, the limits, the scores so far."""

    task: GymTask
    workspace: Path
    runner: GymRunner
    limits: EpisodeLimits
    step: int
    baseline: float
    best: float | None
    next_run: Callable[[], str]
    command_timeout_s: float


def refused(command: str | None, message: str) -> StepOutcome:
    """The observation of an action that could not be carried out."""
    return StepOutcome(observation=f"Error: {message}", command=command, error=message)


def run(action: Action, ctx: CommandContext) -> StepOutcome:
    """Carry out ``action``; a bad path, range or pattern is refused with the reason."""
    try:
        return _run(action, ctx)
    except CommandError as exc:
        return refused(action.command, str(exc))
    except (OSError, UnicodeError) as exc:
        return refused(action.command, f"{type(exc).__name__}: {exc}")


def _run(action: Action, ctx: CommandContext) -> StepOutcome:
    limit, ws = ctx.limits.output_chars, ctx.workspace
    match action:
        case OpenAction():
            text = files.view(ws, action.path, action.start, action.end, ctx.limits.view_lines)
            return StepOutcome(truncate(text, limit), action.command)
        case SearchAction():
            return _search(action, ctx)
        case EditAction():
            text = files.edit(ws, action.path, action.start, action.end, action.text)
            return StepOutcome(truncate(text, limit), action.command)
        case InsertAction():
            text = files.insert(ws, action.path, action.line, action.text)
            return StepOutcome(truncate(text, limit), action.command)
        case CreateAction():
            return StepOutcome(files.create(ws, action.path, action.text), action.command)
        case PythonAction():
            interpreter = ctx.runner.interpreter()
            argv = python_command(interpreter, ws, action.path, action.args, action.code)
            return _execute(argv, action.command, ctx)
        case BashAction():
            return _execute(bash_command(ctx.runner.interpreter(), action.cmd), action.command, ctx)
        case ValidateAction() | SubmitAction():
            return evaluate(ctx, submit=isinstance(action, SubmitAction))
    raise CommandError(f"No handler for {action.command}")  # the union is exhaustive


def guard_workspace(workspace: Path, *names: str) -> None:
    """Before the host writes or reads run files: a ``logs`` or run folder the agent replaced
    by a symlink (or a file) is removed, so the host never follows it out of the workspace."""
    for name in (LOG_DIR, *names):
        path = workspace / name
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        elif name != LOG_DIR and path.is_dir():
            shutil.rmtree(path)


def _execute(argv: list[str], command: str, ctx: CommandContext) -> StepOutcome:
    guard_workspace(ctx.workspace)
    outcome = ctx.runner.execute(argv, ctx.workspace, f"step_{ctx.step}", ctx.command_timeout_s)
    report = process_report(outcome, ctx.workspace)
    return StepOutcome(truncate(report, ctx.limits.output_chars, keep="ends"), command)


def _search(action: SearchAction, ctx: CommandContext) -> StepOutcome:
    interpreter, limit = ctx.runner.interpreter(), ctx.limits.search_results
    argv = search_command(interpreter, ctx.workspace, action.pattern, action.path, limit)
    guard_workspace(ctx.workspace)
    outcome = ctx.runner.execute(argv, ctx.workspace, f"step_{ctx.step}", ctx.command_timeout_s)
    report = search_report(outcome, ctx.workspace, action.pattern, limit)
    return StepOutcome(truncate(report, ctx.limits.output_chars), action.command)


def evaluate(ctx: CommandContext, *, submit: bool) -> StepOutcome:
    """Run the experiment into the next run folder as a round does; report the metric and
    reward its improvement over the baseline."""
    command = "submit" if submit else "validate"
    run_name = ctx.next_run()
    guard_workspace(ctx.workspace, run_name)
    outcome = ctx.runner.run_experiment(ctx.workspace, run_name)
    result = StepOutcome("", command, run=run_name, run_status=outcome.status, submitted=submit)
    if outcome.status != "ok":
        result.observation = _failed_run(command, outcome, ctx.workspace)
    else:
        result.metrics = {g: dict(r.means) for g, r in outcome.results.items()}
        try:
            result.metric = metric_value(outcome.results, ctx.task.spec)
        except MetricError as exc:
            result.observation = f"{command}: {run_name} finished, but {exc} No metric; reward 0."
        else:
            result.reward = improvement(result.metric, ctx.baseline, ctx.task.spec.direction)
            result.observation = _scored_run(ctx, command, outcome, result.metric, result.reward)
    if submit:
        result.observation += "\nSubmitted: the episode ends."
    return result


def _failed_run(command: str, outcome: RunOutcome, workspace: Path) -> str:
    reason = safe_reason(workspace, outcome)
    head = f"{command}: {outcome.run_name} {outcome.status} ({reason}). No metric; reward 0."
    tail = log_tail(workspace, outcome.stdout_path, outcome.stderr_path)
    return f"{head}\n--- last lines of its output ---\n{tail}" if tail else head


def _scored_run(
    ctx: CommandContext, command: str, outcome: RunOutcome, value: float, reward: float
) -> str:
    spec = ctx.task.spec
    best = (
        value if ctx.best is None else (max if spec.direction == "higher" else min)(ctx.best, value)
    )
    lines = [
        f"{command}: {outcome.run_name} finished in {outcome.seconds:.1f} s.",
        f"{ctx.task.metric_label} = {value:.6g} ({spec.direction} is better; baseline "
        f"{ctx.baseline:.6g}; best so far {best:.6g}). Reward {reward:+.6g}.",
        "Results (group: metric mean ± standard error):",
        results_lines(outcome.results),
    ]
    return "\n".join(lines)


def results_lines(results: Mapping[str, GroupResult]) -> str:
    """One line per group of a run's results: ``group: metric mean ± stderr, ...``."""
    return "\n".join(
        f"{group}: "
        + ", ".join(
            _pm(name, mean, result.stderrs.get(name)) for name, mean in result.means.items()
        )
        for group, result in results.items()
    )


def _pm(name: str, mean: float, stderr: float | None) -> str:
    return f"{name} {mean:.4g}" if stderr is None else f"{name} {mean:.4g} ± {stderr:.2g}"
