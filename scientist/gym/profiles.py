"""Performance profiles and AUP across models, as MLGym compares research agents.

MLGym (Nathani et al. 2025, "MLGym: A New Framework and Benchmark for Advancing AI Research
Agents", its section on performance profiles and AUP, and the code behind its figures,
``scripts/evaluation/get_ranks.py`` in facebookresearch/MLGym) ranks methods over tasks with
different metrics by Dolan & Moré's (2002) performance profiles and the area under them (AUP).
This module computes them from :class:`~scientist.gym.models.EpisodeResult` records only.
What it does, step by step (the choices MLGym's code makes, except where marked *ours*):

1. **Best values.** Per (task, model), over the model's attempts (episodes): the *best attempt*
   is the best of the episodes' ``best_attempt`` values, the *best submission* the best of
   their ``submission`` values, "best" in the task's direction. ``None`` (or a non-finite
   number) counts as no value; a model with no valid value is infeasible on that task. A
   model with no episode on a task is infeasible there too (MLGym: a missing score).
2. **The baseline is a method** named ``"baseline"`` (MLGym's ``all_models = models +
   ["baseline"]``), with the template's baseline value in both variants.
3. **Feasible** means a valid value that is not worse than the baseline (MLGym marks a score
   worse than the baseline infeasible); the baseline itself is always feasible.
4. **Values at or below zero** (*ours*). A ratio of metric values needs positive numbers. MLGym
   marks a negative score infeasible, the baseline's too (and divides by zero at 0), which
   would make every method infeasible on a task whose metric is negative by nature (a reward,
   a log-likelihood), and lets ratios of values near 0 explode (its Blotto task: 25). We
   keep every feasible value and, when the smallest feasible value ``lo`` is ≤ 0, translate
   the task's feasible values by ``shift = (hi - lo) - lo`` (``hi`` the largest), so that
   ``lo`` lands on the spread ``hi - lo`` and ``hi`` on twice it: the order is kept, the
   translation does not depend on where the metric puts its zero, and the worst feasible
   ratio on such a task is 2. When all feasible values are equal the shift is ``1 - lo``
   (every ratio is then 1). Tasks with positive values are not shifted (MLGym's ratios).
5. **Performance ratio**, 1 for the best method and larger for worse ones (Dolan & Moré):
   ``r = value / best`` when lower is better, ``r = best / value`` when higher is better
   (MLGym inverts the ratio for "maximize" metrics), on the shifted values.
6. **Infeasible methods** get ``r = (1 + ε) · r_worst`` with ε = 0.05, where ``r_worst`` is
   the largest feasible ratio *on that task and variant* (MLGym's
   ``worst_ratio * (1 + epsilon)``). So failing costs a little more than the worst success,
   and on a task where only the baseline is feasible every model gets 1.05.
7. **τ range.** MLGym's profile axis is log10 of the ratio. ``τ_max`` is the largest
   ``ceil(r_infeasible)`` over all tasks and both variants, and ``log10 τ_max`` is rounded up
   to one decimal; both variants share it.
8. **Profile.** ``ρ_m(τ) = |{tasks p : r[p, m] ≤ τ}| / |P|`` for τ in ``[1, τ_max]``: the
   fraction of tasks on which method m is within a factor τ of the best.
9. **AUP** = ``∫ ρ_m(τ) d(log10 τ)`` over ``[1, τ_max]``, the area under the profile drawn
   against log10 τ as MLGym draws it. MLGym sums left steps of ρ on a 500-point grid; the
   profile is a step function, so we integrate it exactly:
   ``AUP_m = mean over tasks of (log10 τ_max - log10 r[p, m])``. The largest possible AUP
   is ``log10 τ_max`` (best on every task); higher is better.
10. **Tasks no method solved** (*ours*, after Dolan & Moré, who assume some solver solves
    every problem): a (task, variant) on which no method, baseline included, is feasible
    tells nothing about the methods; it is left out of that variant's profile and listed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import EXIT_USAGE, AutoscholarError
from scientist.gym.models import Direction, EpisodeResult

EPSILON = 0.05  # MLGym's penalty margin for infeasible methods
BASELINE = "baseline"
Variant = Literal["best_attempt", "best_submission"]
VARIANTS: tuple[Variant, Variant] = ("best_attempt", "best_submission")
# The EpisodeResult field each variant takes the best of, over a model's attempts.
EPISODE_FIELD: dict[Variant, str] = {
    "best_attempt": "best_attempt",
    "best_submission": "submission",
}


class BenchDataError(AutoscholarError):
    """The episode results cannot be compared as they are."""

    exit_code = EXIT_USAGE


class VariantScore(BaseModel):
    """One method on one task, in one variant (best attempt or best submission)."""

    model_config = ConfigDict(extra="forbid")

    value: float | None = Field(description="Best value over the attempts; None: none valid.")
    feasible: bool = Field(description="A valid value not worse than the baseline.")
    ratio: float | None = Field(
        description="Performance ratio, 1 = best; None: task left out of this variant."
    )


class MethodOnTask(BaseModel):
    """A method's best values and ratios on one task."""

    model_config = ConfigDict(extra="forbid")

    method: str
    episodes: int = Field(ge=0, description="Attempts run (0 for the baseline).")
    best_attempt: VariantScore
    best_submission: VariantScore

    def variant(self, variant: Variant) -> VariantScore:
        """The score of ``variant``."""
        return self.best_attempt if variant == "best_attempt" else self.best_submission


class VariantNotes(BaseModel):
    """How one task's ratios were formed in one variant."""

    model_config = ConfigDict(extra="forbid")

    scored: bool = Field(description="False: no method feasible, task left out of the profile.")
    shift: float = Field(0.0, description="Added to the values before the ratios (step 4).")
    infeasible_ratio: float | None = Field(None, description="(1 + ε) · worst feasible ratio.")


class TaskScores(BaseModel):
    """One row of the per-task table."""

    model_config = ConfigDict(extra="forbid")

    task: str
    direction: Direction
    baseline: float | None
    methods: list[MethodOnTask]
    best_attempt: VariantNotes
    best_submission: VariantNotes

    def notes(self, variant: Variant) -> VariantNotes:
        """The notes of ``variant``."""
        return self.best_attempt if variant == "best_attempt" else self.best_submission

    def method(self, name: str) -> MethodOnTask:
        """The row of method ``name``."""
        for row in self.methods:
            if row.method == name:
                return row
        raise KeyError(name)


class MethodCost(BaseModel):
    """What a model's episodes cost, over all tasks and attempts."""

    model_config = ConfigDict(extra="forbid")

    episodes: int = Field(ge=0)
    cost_usd: float = Field(ge=0, description="Sum over the episodes.")
    cost_usd_per_episode: float = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    tokens_per_episode: float = Field(ge=0, description="Prompt + completion, mean.")
    wall_s: float = Field(ge=0, description="Sum over the episodes.")


class MethodSummary(BaseModel):
    """A method's AUP in both variants, and its cost (None for the baseline)."""

    model_config = ConfigDict(extra="forbid")

    method: str
    aup_best_attempt: float
    aup_best_submission: float
    cost: MethodCost | None

    def aup(self, variant: Variant) -> float:
        """The AUP of ``variant``."""
        return self.aup_best_attempt if variant == "best_attempt" else self.aup_best_submission


class BenchScores(BaseModel):
    """Everything ``scientist bench`` reports (bench.json)."""

    model_config = ConfigDict(extra="forbid")

    epsilon: float = Field(description="Penalty margin of infeasible methods.")
    tau_max: float = Field(description="Largest performance ratio on the profile's axis.")
    log10_tau_max: float = Field(description="log10 τ_max: the largest possible AUP.")
    tasks: list[TaskScores]
    methods: list[MethodSummary] = Field(description="Highest best-attempt AUP first.")

    def method(self, name: str) -> MethodSummary:
        """The summary of method ``name``."""
        for row in self.methods:
            if row.method == name:
                return row
        raise KeyError(name)

    def task(self, name: str) -> TaskScores:
        """The scores of task ``name``."""
        for row in self.tasks:
            if row.task == name:
                return row
        raise KeyError(name)

    def ratios(self, method: str, variant: Variant) -> list[float]:
        """``method``'s ratios over the tasks scored in ``variant``, in task order."""
        ratios = (task.method(method).variant(variant).ratio for task in self.tasks)
        return [r for r in ratios if r is not None]


@dataclass
class _TaskInput:
    """One task's episodes, grouped by model, with its direction and baseline."""

    direction: Direction
    baseline: float | None
    episodes: dict[str, list[EpisodeResult]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Ratios:
    """One task's ratios in one variant."""

    feasible: dict[str, bool]
    ratios: dict[str, float] | None
    shift: float = 0.0
    infeasible_ratio: float | None = None


def score_bench(results: Sequence[EpisodeResult], *, epsilon: float = EPSILON) -> BenchScores:
    """Best values, ratios, profiles' AUP and cost of every method (module docstring)."""
    tasks = _group(results)
    models = sorted({r.model for r in results})
    methods = models + ([BASELINE] if any(t.baseline is not None for t in tasks.values()) else [])
    rows = {name: _task_scores(name, t, methods, epsilon) for name, t in tasks.items()}
    log_tau_max = log10_tau_max(
        notes.infeasible_ratio
        for row in rows.values()
        for notes in (row.best_attempt, row.best_submission)
        if notes.infeasible_ratio is not None
    )
    summaries = [_summary(m, list(rows.values()), results, log_tau_max) for m in methods]
    summaries.sort(key=lambda s: (-s.aup_best_attempt, -s.aup_best_submission, s.method))
    return BenchScores(
        epsilon=epsilon,
        tau_max=10**log_tau_max,
        log10_tau_max=log_tau_max,
        tasks=[rows[name] for name in sorted(rows)],
        methods=summaries,
    )


def _group(results: Sequence[EpisodeResult]) -> dict[str, _TaskInput]:
    """Episodes by task and model; one direction and one baseline per task, or an error."""
    if not results:
        raise BenchDataError("No episode results to score: run the bench's episodes first.")
    if any(r.model == BASELINE for r in results):
        raise BenchDataError(f"A model may not be named {BASELINE!r}: that name is the baseline's.")
    tasks: dict[str, _TaskInput] = {}
    for result in results:
        task = tasks.setdefault(result.task, _TaskInput(result.direction, _valid(result.baseline)))
        if result.direction != task.direction:
            raise BenchDataError(
                f"Task {result.task!r} has episodes with both directions: its task.json changed "
                "between episodes; rerun them with one task file."
            )
        task.baseline = _same_baseline(result.task, task.baseline, _valid(result.baseline))
        task.episodes.setdefault(result.model, []).append(result)
    return tasks


def _same_baseline(task: str, known: float | None, new: float | None) -> float | None:
    """The task's one baseline value; two different ones are an error (ratios depend on it)."""
    if known is None or new is None:
        return known if new is None else new
    if not math.isclose(known, new, rel_tol=1e-9, abs_tol=1e-12):
        raise BenchDataError(
            f"Task {task!r} has episodes with baselines {known} and {new}: the template's "
            "final_info.json changed between episodes; rerun them on one baseline."
        )
    return known


def _task_scores(name: str, task: _TaskInput, methods: list[str], epsilon: float) -> TaskScores:
    """One task's best values and ratios in both variants."""
    values = {v: _variant_values(task, methods, v) for v in VARIANTS}
    ratios = {
        v: performance_ratios(values[v], task.direction, task.baseline, epsilon) for v in VARIANTS
    }
    rows = [
        MethodOnTask(
            method=m,
            episodes=len(task.episodes.get(m, [])),
            best_attempt=_variant_score(m, values["best_attempt"], ratios["best_attempt"]),
            best_submission=_variant_score(m, values["best_submission"], ratios["best_submission"]),
        )
        for m in methods
    ]
    return TaskScores(
        task=name,
        direction=task.direction,
        baseline=task.baseline,
        methods=rows,
        best_attempt=_notes(ratios["best_attempt"]),
        best_submission=_notes(ratios["best_submission"]),
    )


def _variant_values(
    task: _TaskInput, methods: list[str], variant: Variant
) -> dict[str, float | None]:
    """Each method's best value in ``variant``; None: none valid (or no baseline here)."""
    return {
        m: task.baseline
        if m == BASELINE
        else best_value(
            (getattr(e, EPISODE_FIELD[variant]) for e in task.episodes.get(m, [])), task.direction
        )
        for m in methods
    }


def _variant_score(method: str, values: dict[str, float | None], ratios: _Ratios) -> VariantScore:
    return VariantScore(
        value=values.get(method),
        feasible=ratios.feasible.get(method, False),
        ratio=None if ratios.ratios is None else ratios.ratios[method],
    )


def _notes(ratios: _Ratios) -> VariantNotes:
    return VariantNotes(
        scored=ratios.ratios is not None,
        shift=ratios.shift,
        infeasible_ratio=ratios.infeasible_ratio,
    )


def best_value(values: Iterable[float | None], direction: Direction) -> float | None:
    """The best finite value in ``direction``; None when there is none."""
    valid = [v for v in (_valid(x) for x in values) if v is not None]
    if not valid:
        return None
    return max(valid) if direction == "higher" else min(valid)


def is_worse(value: float, than: float, direction: Direction) -> bool:
    """Whether ``value`` is strictly worse than ``than`` in ``direction``."""
    return value < than if direction == "higher" else value > than


def performance_ratios(
    values: dict[str, float | None],
    direction: Direction,
    baseline: float | None,
    epsilon: float = EPSILON,
) -> _Ratios:
    """Ratios of every method on one task in one variant (steps 3-6 of the module docstring).

    ``values`` maps every method (the baseline included, if known) to its best value.
    """
    feasible = {
        m: v is not None and (baseline is None or not is_worse(v, baseline, direction))
        for m, v in values.items()
    }
    good = {m: v for m, v in values.items() if v is not None and feasible[m]}
    if not good:
        return _Ratios(feasible=feasible, ratios=None)
    shift = positive_shift(list(good.values()))
    shifted = {m: v + shift for m, v in good.items()}
    if direction == "higher":
        best = max(shifted.values())
        ratios = {m: best / v for m, v in shifted.items()}
    else:
        best = min(shifted.values())
        ratios = {m: v / best for m, v in shifted.items()}
    penalty = (1 + epsilon) * max(ratios.values())
    every = {m: ratios.get(m, penalty) for m in values}
    return _Ratios(feasible=feasible, ratios=every, shift=shift, infeasible_ratio=penalty)


def positive_shift(values: list[float]) -> float:
    """What to add to a task's feasible values so that all are positive (step 4).

    0 when they already are; else the spread minus the smallest, so the smallest lands on
    the spread; 1 minus the smallest when they are all equal.
    """
    lo, hi = min(values), max(values)
    if lo > 0:
        return 0.0
    spread = hi - lo
    return (spread if spread > 0 else 1.0) - lo


def log10_tau_max(infeasible_ratios: Iterable[float]) -> float:
    """log10 of the profile's largest τ: of the largest ``ceil(r_infeasible)``, rounded up to
    one decimal (MLGym). 0.4 (τ_max 2) when no task was scored."""
    top = max((math.ceil(r) for r in infeasible_ratios), default=2)
    # round() first, so that log10(10) = 1.0000000000000002 would not round up to 1.1
    return math.ceil(round(10 * math.log10(top), 9)) / 10


def profile(ratios: Sequence[float], tau: float) -> float:
    """ρ(τ): the fraction of ``ratios`` (one per task) at most ``tau``; 0 without tasks."""
    if not ratios:
        return 0.0
    return sum(1 for r in ratios if r <= tau) / len(ratios)


def aup(ratios: Sequence[float], log_tau_max: float) -> float:
    """The exact area under ρ against log10 τ over [1, τ_max] (step 9); 0 without tasks."""
    if not ratios:
        return 0.0
    return sum(max(0.0, log_tau_max - math.log10(r)) for r in ratios) / len(ratios)


def profile_steps(ratios: Sequence[float], tau_max: float) -> tuple[list[float], list[float]]:
    """The corners of ρ's steps from τ = 1 to ``tau_max``, for a post-step plot."""
    taus = [1.0, *sorted(r for r in ratios if 1.0 < r <= tau_max), tau_max]
    return taus, [profile(ratios, t) for t in taus]


def method_cost(episodes: Sequence[EpisodeResult]) -> MethodCost:
    """Sums and per-episode means of cost, tokens and time."""
    n = len(episodes)
    cost = sum(e.cost_usd for e in episodes)
    prompt = sum(e.prompt_tokens for e in episodes)
    completion = sum(e.completion_tokens for e in episodes)
    return MethodCost(
        episodes=n,
        cost_usd=cost,
        cost_usd_per_episode=cost / n if n else 0.0,
        prompt_tokens=prompt,
        completion_tokens=completion,
        tokens_per_episode=(prompt + completion) / n if n else 0.0,
        wall_s=sum(e.wall_s for e in episodes),
    )


def _summary(
    method: str, rows: list[TaskScores], results: Sequence[EpisodeResult], log_tau_max: float
) -> MethodSummary:
    by_variant: dict[Variant, list[float]] = defaultdict(list)
    for row in rows:
        for variant in VARIANTS:
            ratio = row.method(method).variant(variant).ratio
            if ratio is not None:
                by_variant[variant].append(ratio)
    own = [r for r in results if r.model == method]
    return MethodSummary(
        method=method,
        aup_best_attempt=aup(by_variant["best_attempt"], log_tau_max),
        aup_best_submission=aup(by_variant["best_submission"], log_tau_max),
        cost=None if method == BASELINE else method_cost(own),
    )


def _valid(value: float | None) -> float | None:
    """``value`` if it is a finite number, else None (NaN and ±inf are not results)."""
    return value if value is not None and math.isfinite(value) else None
