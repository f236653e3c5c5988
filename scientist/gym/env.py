"""A research template as a ``gymnasium.Env``: the agent edits and runs code through a small
set of commands and is rewarded by how much it improves the task's metric on the baseline
(MLGym, Nathani et al., 2025).

Spaces: both are ``gymnasium.spaces.Text`` over :data:`~scientist.gym.observations.CHARSET`
(tab, newline, printable ASCII and the rest of Unicode's basic plane). An action is one JSON
object as text, ``{"command": NAME, ...arguments}`` (``prompts/commands.j2`` lists them; a
``dict`` is accepted too); an observation is the command's output, cut with a note past
``EpisodeLimits.output_chars``. A bad action (not JSON, an unknown command, bad arguments, a
path out of the workspace) is answered by an observation saying what was wrong, reward 0.

Reward: a ``validate`` or ``submit`` whose run yields the metric earns its improvement over
the baseline in the task's direction (``value - baseline`` when higher is better,
``baseline - value`` when lower): positive is better. Every other step, and a run that
fails, earns 0. It is not a change from the previous step, so a sum over an episode means
nothing; :meth:`ResearchEnv.episode_result` has the best attempt and the submission.

An episode lives in ``<root>/<episode>/``: ``workspace/`` (the template's copy, where every
command works; the box's only writable folder), ``trajectory.jsonl`` (one line per step) and
``episode.json``. ``root`` defaults to ``<runs_dir>/gym/<task>``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gymnasium
from pydantic import BaseModel, ConfigDict, Field

from core.clock import Clock
from core.settings import Settings, load_settings
from gateway.ledger import Ledger
from gateway.prompts import render
from scientist.experiments.models import GroupResult
from scientist.experiments.runner import SandboxRunner
from scientist.experiments.workspace import copy_template
from scientist.gym import commands
from scientist.gym.actions import ActionError, Usage, parse_action
from scientist.gym.baseline import install_baseline
from scientist.gym.episode import Episode, Spend
from scientist.gym.errors import EpisodeStateError, MetricError, TaskFileError
from scientist.gym.files import file_list
from scientist.gym.limits import EpisodeLimits
from scientist.gym.models import EpisodeResult, EpisodeStatus
from scientist.gym.observations import ACTION_MAX_CHARS, OBSERVATION_MAX_CHARS, finish, text_space
from scientist.gym.sandboxed import GymRunner
from scientist.gym.task import GymTask, best_of, load_task, metric_value
from scientist.gym.trajectory import EPISODE, TRAJECTORY, EpisodeInfo, TrajectoryStep, append_step

PROMPTS = Path(__file__).with_name("prompts")
WORKSPACE = "workspace"
ACTION_RECORD_CHARS = 20_000
EPISODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class ResetOptions(BaseModel):
    """``reset(options=...)``: ``episode`` names the episode's folder under the root
    (default ``episode-NNN``, the first free number); an existing one is replaced."""

    model_config = ConfigDict(extra="forbid")

    episode: str | None = Field(None, pattern=f"^{EPISODE_NAME.pattern}$")


class ResearchEnv(gymnasium.Env[str, str]):
    """One research template as an environment (see the module's docstring).

    ``template``: a shipped template's name or a template folder with ``experiment.py``,
    ``prompt.json`` and ``task.json`` (else ``TaskFileError``, exit code 2). ``settings``:
    default ``load_settings()``; ``experiments`` sets the sandbox (limits, isolation, the
    validate timeout) and ``data_dir`` holds the baseline cache. ``limits``: an
    :class:`EpisodeLimits` or a dict of its fields. ``root``: where episodes are kept.
    ``runner``: the sandbox (default ``SandboxRunner.for_template``; a test may pass a
    double). ``ledger``: the agent's gateway ledger, whose spend since reset counts towards
    the token and cost budgets on top of what actions and :meth:`report_usage` report.
    ``clock``: the wall clock (tests move it by hand).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's declaration)

    def __init__(
        self,
        template: str | Path = "digits",
        *,
        settings: Settings | None = None,
        limits: EpisodeLimits | Mapping[str, Any] | None = None,
        root: str | Path | None = None,
        runner: GymRunner | None = None,
        ledger: Ledger | None = None,
        clock: Clock = time.monotonic,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(
                f"ResearchEnv renders nothing; render_mode {render_mode!r} is not one."
            )
        self.task: GymTask = load_task(template)
        self.settings = settings if settings is not None else load_settings()
        self.limits = (
            limits
            if isinstance(limits, EpisodeLimits)
            else EpisodeLimits.model_validate(limits or {})
        )
        default_root = self.settings.runs_dir / "gym" / self.task.spec.name
        self.root = Path(root) if root is not None else default_root
        self.runner: GymRunner = runner or SandboxRunner.for_template(
            self.settings, self.task.template_dir
        )
        self.ledger = ledger
        self.clock = clock
        self.render_mode = render_mode
        self.action_space = text_space(ACTION_MAX_CHARS)
        self.observation_space = text_space(OBSERVATION_MAX_CHARS)
        self._episode: Episode | None = None

    # ---- the gymnasium API ----------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A fresh workspace (the template's copy) with its baseline run_0. The observation:
        the task, the goal and the baseline, the files, the commands and the budget."""
        super().reset(seed=seed)
        name = ResetOptions.model_validate(options or {}).episode or self._free_name()
        folder = self.root / name
        shutil.rmtree(folder, ignore_errors=True)
        workspace = folder / WORKSPACE
        copy_template(self.task.template_dir, workspace)
        cache = self.settings.data_dir / "gym" / "baselines"
        outcome = install_baseline(self.task, workspace, self.runner, cache)
        episode = Episode(
            name=name,
            folder=folder,
            workspace=workspace,
            trajectory=folder / TRAJECTORY,
            baseline=self._baseline_metric(outcome.results),
            baseline_results=outcome.results,
            started=self.clock(),
            ledger_start=self._ledger_spend(),
        )
        episode.trajectory.touch()
        self._episode = episode
        self._write_episode_info(episode, seed)
        return finish(self._reset_observation(episode)), self._reset_info(episode)

    def step(
        self, action: str | Mapping[str, Any]
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Carry out one command; see the module's docstring for the reward."""
        episode = self._running()
        start = self.clock()
        episode.steps += 1
        outcome = self._dispatch(episode, action)
        if outcome.metric is not None:
            episode.attempts.append(outcome.metric)
        if outcome.submitted:
            episode.submitted, episode.submission = True, outcome.metric
        else:
            episode.truncation = self._budget_spent(episode)
        observation = outcome.observation
        if self._should_auto_submit(episode):
            observation += "\n\n" + self._auto_submit(episode)
        if episode.truncation is not None:
            observation += f"\n\n[The episode is over: {episode.truncation}.]"
        if episode.over:
            episode.ended_at = self.clock()
        observation = finish(observation)
        self._record(episode, action, outcome, observation, start)
        truncated = episode.truncation is not None
        info = self._step_info(episode, outcome)
        return observation, float(outcome.reward), outcome.submitted, truncated, info

    def close(self) -> None:
        """Nothing to release: workspaces and trajectories stay under the root."""

    # ---- for agents and the bench ---------------------------------------------------

    @property
    def episode(self) -> Episode | None:
        """The current (or last) episode's state; None before the first reset."""
        return self._episode

    def command_help(self) -> str:
        """The command list the reset observation shows, for an agent's system prompt."""
        return render(
            PROMPTS,
            "commands.j2",
            view_lines=self.limits.view_lines,
            search_results=self.limits.search_results,
            command_timeout_s=f"{self.limits.command_timeout_s:g}",
            run_timeout_s=f"{self.settings.experiments.run_timeout_s:g}",
            output_chars=self.limits.output_chars,
        )

    def report_usage(
        self, prompt_tokens: int = 0, completion_tokens: int = 0, cost_usd: float = 0.0
    ) -> None:
        """Count what the agent spent choosing its next action (recorded with that step)."""
        usage = Usage(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost_usd
        )
        self._running().reported.add(usage)

    def episode_result(
        self, model: str, attempt: int = 0, failure: str | None = None
    ) -> EpisodeResult:
        """The episode as the bench maths reads it. ``failure``: why the agent could not go on
        (status "failed"); an episode neither submitted nor truncated counts as truncated
        (the agent stopped)."""
        episode = self._episode
        if episode is None:
            raise EpisodeStateError("No episode yet: call reset() first.")
        spend = self._spend(episode)
        status, reason = _status(episode, failure)
        end = episode.ended_at if episode.ended_at is not None else self.clock()
        return EpisodeResult(
            task=self.task.spec.name,
            model=model,
            attempt=attempt,
            direction=self.task.spec.direction,
            baseline=episode.baseline,
            best_attempt=best_of(episode.attempts, self.task.spec.direction),
            submission=episode.submission,
            status=status,
            steps=episode.steps,
            prompt_tokens=spend.prompt_tokens,
            completion_tokens=spend.completion_tokens,
            cost_usd=round(spend.cost_usd, 6),
            wall_s=round(max(0.0, end - episode.started), 3),
            trajectory=str(episode.trajectory),
            reason=reason,
        )

    # ---- internals ------------------------------------------------------------------

    def _running(self) -> Episode:
        episode = self._episode
        if episode is None:
            raise EpisodeStateError("No episode is running: call reset() first.")
        if episode.over:
            raise EpisodeStateError(f"Episode {episode.name} is over; call reset() for another.")
        return episode

    def _free_name(self) -> str:
        number = 1
        while (self.root / f"episode-{number:03d}").exists():
            number += 1
        return f"episode-{number:03d}"

    def _baseline_metric(self, results: dict[str, GroupResult]) -> float:
        try:
            return metric_value(results, self.task.spec)
        except MetricError as exc:
            raise TaskFileError(
                f"{self.task.template_dir / 'task.json'} names a metric the baseline run_0 does "
                f"not report: {exc} Fix the metric path in task.json."
            ) from exc

    def _dispatch(self, episode: Episode, raw: object) -> commands.StepOutcome:
        if not isinstance(raw, str | Mapping):
            message = f"An action is a JSON object as text, not {type(raw).__name__}."
            return commands.refused(None, message)
        try:
            action = parse_action(raw, ACTION_MAX_CHARS)
        except ActionError as exc:
            return commands.refused(None, str(exc))
        if action.usage is not None:
            episode.reported.add(action.usage)
        return commands.run(action, self._context(episode))

    def _context(self, episode: Episode) -> commands.CommandContext:
        left = self.limits.max_wall_s - (self.clock() - episode.started)
        return commands.CommandContext(
            task=self.task,
            workspace=episode.workspace,
            runner=self.runner,
            limits=self.limits,
            step=episode.steps,
            baseline=episode.baseline,
            best=best_of(episode.attempts, self.task.spec.direction),
            next_run=episode.next_run_name,
            command_timeout_s=max(1.0, min(self.limits.command_timeout_s, left)),
        )

    def _should_auto_submit(self, episode: Episode) -> bool:
        """A budget other than the wall clock ran out before the agent submitted."""
        reason = episode.truncation
        return (
            self.limits.auto_submit
            and reason is not None
            and not episode.submitted
            and "wall-clock" not in reason
        )

    def _auto_submit(self, episode: Episode) -> str:
        """Submit the workspace as the agent left it; what that run printed, for the agent."""
        outcome = commands.run(
            parse_action({"command": "submit"}, ACTION_MAX_CHARS), self._context(episode)
        )
        if outcome.metric is not None:
            episode.attempts.append(outcome.metric)
        episode.submitted, episode.submission = True, outcome.metric
        episode.auto_submitted = True
        return f"[Submitted automatically: {episode.truncation}.]\n{outcome.observation}"

    def _budget_spent(self, episode: Episode) -> str | None:
        """Which budget has run out, if one has."""
        limits, spend = self.limits, self._spend(episode)
        if episode.steps >= limits.max_steps:
            return f"the step budget ({limits.max_steps} steps) is spent"
        if self.clock() - episode.started >= limits.max_wall_s:
            return f"the wall-clock budget ({limits.max_wall_s:g} s) is spent"
        if limits.max_total_tokens is not None and spend.total_tokens >= limits.max_total_tokens:
            return f"the token budget ({limits.max_total_tokens} tokens) is spent"
        if limits.max_cost_usd is not None and spend.cost_usd >= limits.max_cost_usd:
            return f"the cost budget (${limits.max_cost_usd:g}) is spent"
        return None

    def _ledger_spend(self) -> Spend:
        if self.ledger is None:
            return Spend()
        totals = self.ledger.totals()
        return Spend(totals.prompt_tokens, totals.completion_tokens, totals.cost_usd)

    def _spend(self, episode: Episode) -> Spend:
        """Everything spent since reset: the usage reported plus the ledger's growth."""
        spend = self._ledger_spend().minus(episode.ledger_start)
        spend.add(episode.reported)
        return spend

    def _record(
        self,
        episode: Episode,
        action: object,
        outcome: commands.StepOutcome,
        observation: str,
        start: float,
    ) -> None:
        now, total = self.clock(), self._spend(episode)
        delta, episode.recorded = total.minus(episode.recorded), total
        step = TrajectoryStep(
            step=episode.steps,
            time=datetime.now(UTC).isoformat(timespec="milliseconds"),
            elapsed_s=round(now - episode.started, 3),
            seconds=round(now - start, 3),
            action=_action_text(action)[:ACTION_RECORD_CHARS],
            command=outcome.command,
            error=outcome.error,
            observation=observation[: self.limits.excerpt_chars],
            observation_chars=len(observation),
            run=outcome.run,
            run_status=outcome.run_status,
            metric=outcome.metric,
            metrics=outcome.metrics,
            reward=outcome.reward,
            best=best_of(episode.attempts, self.task.spec.direction),
            terminated=outcome.submitted,
            truncated=episode.truncation is not None,
            truncation=episode.truncation,
            prompt_tokens=delta.prompt_tokens,
            completion_tokens=delta.completion_tokens,
            cost_usd=round(delta.cost_usd, 6),
        )
        append_step(episode.trajectory, step)

    def _step_info(self, episode: Episode, outcome: commands.StepOutcome) -> dict[str, Any]:
        """What a program may want besides the text. Nothing time-dependent: gymnasium's
        checker compares the infos of equal steps."""
        metrics = outcome.metrics
        return {
            "step": episode.steps,
            "steps_left": max(0, self.limits.max_steps - episode.steps),
            "command": outcome.command,
            "error": outcome.error,
            "run": outcome.run,
            "run_status": outcome.run_status,
            "metric": outcome.metric,
            "metrics": None if metrics is None else {g: dict(m) for g, m in metrics.items()},
            "baseline": episode.baseline,
            "best": best_of(episode.attempts, self.task.spec.direction),
            "submission": episode.submission,
            "truncation": episode.truncation,
        }

    def _reset_info(self, episode: Episode) -> dict[str, Any]:
        return {
            "episode": episode.name,
            "workspace": str(episode.workspace),
            "trajectory": str(episode.trajectory),
            "task": self.task.spec.model_dump(),
            "baseline": episode.baseline,
            "baseline_metrics": _means(episode.baseline_results),
        }

    def _reset_observation(self, episode: Episode) -> str:
        spec = self.task.spec
        return render(
            PROMPTS,
            "reset.j2",
            task_name=spec.name,
            prompt=self.task.prompt,
            description=spec.description or "Improve the metric below.",
            metric=self.task.metric_label,
            direction=spec.direction,
            baseline=f"{episode.baseline:.6g}",
            baseline_results=commands.results_lines(episode.baseline_results),
            files="\n".join(file_list(episode.workspace)),
            commands=self.command_help(),
            budget=self._budget_text(),
        )

    def _budget_text(self) -> str:
        limits = self.limits
        parts = [f"{limits.max_steps} steps", f"{limits.max_wall_s:g} s of wall-clock time"]
        if limits.max_total_tokens is not None:
            parts.append(f"{limits.max_total_tokens} tokens")
        if limits.max_cost_usd is not None:
            parts.append(f"${limits.max_cost_usd:g}")
        return f"At most {', '.join(parts)}; the episode ends when one runs out, or at submit."

    def _write_episode_info(self, episode: Episode, seed: int | None) -> None:
        info = EpisodeInfo(
            episode=episode.name,
            template=str(self.task.template_dir),
            task=self.task.spec,
            baseline=episode.baseline,
            baseline_metrics=_means(episode.baseline_results),
            limits=self.limits.model_dump(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            workspace=str(episode.workspace),
            seed=seed,
        )
        (episode.folder / EPISODE).write_text(info.model_dump_json(indent=1), encoding="utf-8")


def _status(episode: Episode, failure: str | None) -> tuple[EpisodeStatus, str | None]:
    if failure is not None:
        return "failed", failure
    if episode.submitted:
        no_metric = "the submitted code produced no valid metric"
        auto = f"submitted automatically: {episode.truncation}" if episode.auto_submitted else None
        return "submitted", auto if episode.submission is not None else no_metric
    if episode.truncation is not None:
        return "truncated", episode.truncation
    return "truncated", "the agent stopped before submitting"


def _action_text(action: object) -> str:
    if isinstance(action, str):
        return action
    try:
        return json.dumps(action, default=str)
    except (TypeError, ValueError):
        return repr(action)


def _means(results: Mapping[str, GroupResult]) -> dict[str, dict[str, float]]:
    return {group: dict(result.means) for group, result in results.items()}
