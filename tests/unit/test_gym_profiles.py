"""Bench maths (scientist.gym.profiles) against examples worked out by hand, and its files.

The main example: models A, B, C and the baseline on four tasks (ε = 0.05).

acc (higher is better, baseline 0.5)
    A: attempt 0 best 0.8 / submitted 0.7, attempt 1 best 0.6 / nothing  -> 0.8 / 0.7
    B: 0.4 / 0.4 (worse than the baseline: infeasible), C: nothing valid  -> infeasible
    best attempt:    feasible {baseline 0.5, A 0.8}: r_A = 1, r_baseline = 0.8/0.5 = 1.6,
                     B and C: 1.05 · 1.6 = 1.68
    best submission: feasible {0.5, A 0.7}: r_A = 1, r_baseline = 1.4; B, C: 1.47
loss (lower is better, baseline 2.0)
    A: attempts 1.0 / 1.6 and 1.2 / 1.8 -> 1.0 / 1.6;  B: 0.5 / 0.5;  C: 0.5 / 0.8
    best attempt:    best 0.5 (B and C tie): r_B = r_C = 1, r_A = 2, r_baseline = 4
    best submission: best 0.5: r_B = 1, r_C = 1.6, r_A = 3.2, r_baseline = 4
    (infeasible ratio 1.05 · 4 = 4.2, nobody gets it)
only_base (higher, baseline 10): A 8 / nothing, B nothing, C 9 / 9, all worse or missing
    only the baseline is feasible: r_baseline = 1, every model 1.05 · 1 = 1.05
reward (higher, baseline -1, values cross zero)
    A 3 / 1, B -1 / -2, C 1 / nothing
    best attempt: feasible {-1, 3, -1, 1}, lo = -1, hi = 3, spread 4, shift 4 + 1 = 5:
                  baseline 4, A 8, B 4, C 6 -> r_A = 1, r_B = r_baseline = 2, r_C = 8/6
                  (nobody infeasible; the infeasible ratio would be 2.1)
    best submission: feasible {baseline -1, A 1} (B -2 worse), spread 2, shift 3:
                  baseline 2, A 4 -> r_A = 1, r_baseline = 2; B, C: 2.1

τ_max: the largest ceil(infeasible ratio) is ceil(4.2) = 5; log10 5 = 0.699 -> 0.7.
AUP = mean over tasks of (0.7 - log10 r), tasks in order acc, loss, only_base, reward:

best attempt      ratios                 AUP
    A             1, 2, 1.05, 1          0.7 - (log 2 + log 1.05)/4            = 0.61945
    B             1.68, 1, 1.05, 2       0.7 - (log 1.68 + log 1.05 + log 2)/4 = 0.56312
    C             1.68, 1, 1.05, 4/3     0.7 - (log 1.68 + log 1.05 + log 4/3)/4 = 0.60714
    baseline      1.6, 4, 1, 2           0.7 - (log 1.6 + log 4 + log 2)/4     = 0.42320
best submission
    A             1, 3.2, 1.05, 1        0.7 - (log 3.2 + log 1.05)/4          = 0.56845
    B             1.47, 1, 1.05, 2.1     0.7 - (log 1.47 + log 1.05 + log 2.1)/4
    C             1.47, 1.6, 1.05, 2.1   0.7 - (log 1.47 + log 1.6 + log 1.05 + log 2.1)/4
    baseline      1.4, 4, 1, 2           0.7 - (log 1.4 + log 4 + log 2)/4

ρ(τ), best attempt: A: ρ(1) = 2/4 (acc, reward), ρ(1.1) = 3/4 (+ only_base), ρ(2) = 1.
B: ρ(1) = 1/4, ρ(1.1) = 2/4, ρ(1.7) = 3/4 (+ acc 1.68), ρ(2) = 1.
baseline: ρ(1) = 1/4, ρ(1.7) = 2/4, ρ(2) = 3/4, ρ(3.99) = 3/4, ρ(4) = 1.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from rich.console import Console

from scientist.gym.bench_report import bench_table, load_bench, markdown_report, write_bench
from scientist.gym.models import Direction, EpisodeResult
from scientist.gym.profiles import (
    BASELINE,
    BenchDataError,
    BenchScores,
    aup,
    log10_tau_max,
    performance_ratios,
    positive_shift,
    profile,
    profile_steps,
    score_bench,
)

log = math.log10
TIGHT = {"rel": 1e-12, "abs": 1e-12}


def episode(
    task: str,
    model: str,
    attempt: int,
    direction: Direction,
    baseline: float | None,
    best: float | None,
    submission: float | None,
    *,
    cost: float = 0.0,
    tokens: tuple[int, int] = (0, 0),
) -> EpisodeResult:
    return EpisodeResult(
        task=task,
        model=model,
        attempt=attempt,
        direction=direction,
        baseline=baseline,
        best_attempt=best,
        submission=submission,
        status="submitted" if submission is not None else "failed",
        steps=3,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        cost_usd=cost,
        wall_s=2.0,
    )


def example() -> list[EpisodeResult]:
    """The four tasks of the module docstring; A costs 0.25 $ an episode, B 0.5, C nothing."""
    a = (0.25, (100, 50))
    b = (0.5, (10, 10))
    return [
        episode("acc", "A", 0, "higher", 0.5, 0.8, 0.7, cost=a[0], tokens=a[1]),
        episode("acc", "A", 1, "higher", 0.5, 0.6, None, cost=a[0], tokens=a[1]),
        episode("acc", "B", 0, "higher", 0.5, 0.4, 0.4, cost=b[0], tokens=b[1]),
        episode("acc", "C", 0, "higher", 0.5, None, None),
        episode("loss", "A", 0, "lower", 2.0, 1.0, 1.6, cost=a[0], tokens=a[1]),
        episode("loss", "A", 1, "lower", 2.0, 1.2, 1.8, cost=a[0], tokens=a[1]),
        episode("loss", "B", 0, "lower", 2.0, 0.5, 0.5, cost=b[0], tokens=b[1]),
        episode("loss", "C", 0, "lower", 2.0, 0.5, 0.8),
        episode("only_base", "A", 0, "higher", 10.0, 8.0, None, cost=a[0], tokens=a[1]),
        episode("only_base", "B", 0, "higher", 10.0, None, None, cost=b[0], tokens=b[1]),
        episode("only_base", "C", 0, "higher", 10.0, 9.0, 9.0),
        episode("reward", "A", 0, "higher", -1.0, 3.0, 1.0, cost=a[0], tokens=a[1]),
        episode("reward", "B", 0, "higher", -1.0, -1.0, -2.0, cost=b[0], tokens=b[1]),
        episode("reward", "C", 0, "higher", -1.0, 1.0, None),
    ]


@pytest.fixture(scope="module")
def scores() -> BenchScores:
    return score_bench(example())


def test_best_values_per_task_and_model_respect_the_direction(scores: BenchScores) -> None:
    acc_a = scores.task("acc").method("A")
    assert (acc_a.best_attempt.value, acc_a.best_submission.value) == (0.8, 0.7)
    assert acc_a.episodes == 2
    loss_a = scores.task("loss").method("A")  # lower is better: the smaller of 1.0 and 1.2
    assert (loss_a.best_attempt.value, loss_a.best_submission.value) == (1.0, 1.6)
    assert scores.task("acc").method("C").best_attempt.value is None
    base = scores.task("reward").method(BASELINE)
    assert (base.best_attempt.value, base.best_submission.value, base.episodes) == (-1.0, -1.0, 0)


def test_methods_are_the_models_and_the_baseline_best_aup_first(scores: BenchScores) -> None:
    assert [m.method for m in scores.methods] == ["A", "C", "B", BASELINE]
    assert [t.task for t in scores.tasks] == ["acc", "loss", "only_base", "reward"]


def test_ratios_of_the_best_attempt(scores: BenchScores) -> None:
    assert scores.ratios("A", "best_attempt") == pytest.approx([1, 2, 1.05, 1], **TIGHT)
    assert scores.ratios("B", "best_attempt") == pytest.approx([1.68, 1, 1.05, 2], **TIGHT)
    assert scores.ratios("C", "best_attempt") == pytest.approx([1.68, 1, 1.05, 8 / 6], **TIGHT)
    assert scores.ratios(BASELINE, "best_attempt") == pytest.approx([1.6, 4, 1, 2], **TIGHT)


def test_ratios_of_the_best_submission(scores: BenchScores) -> None:
    assert scores.ratios("A", "best_submission") == pytest.approx([1, 3.2, 1.05, 1], **TIGHT)
    assert scores.ratios("B", "best_submission") == pytest.approx([1.47, 1, 1.05, 2.1], **TIGHT)
    assert scores.ratios("C", "best_submission") == pytest.approx([1.47, 1.6, 1.05, 2.1], **TIGHT)
    assert scores.ratios(BASELINE, "best_submission") == pytest.approx([1.4, 4, 1, 2], **TIGHT)


def test_a_tie_gives_both_models_ratio_one(scores: BenchScores) -> None:
    loss = scores.task("loss")
    assert loss.method("B").best_attempt.ratio == 1.0
    assert loss.method("C").best_attempt.ratio == 1.0


def test_infeasible_methods_get_the_penalty_beyond_the_worst_ratio(scores: BenchScores) -> None:
    acc = scores.task("acc")
    # B has a value (0.4) but it is worse than the baseline: infeasible, like C without one.
    assert acc.method("B").best_attempt.value == 0.4
    assert not acc.method("B").best_attempt.feasible
    assert not acc.method("C").best_attempt.feasible
    assert acc.best_attempt.infeasible_ratio == pytest.approx(1.68, **TIGHT)
    assert acc.method("B").best_attempt.ratio == pytest.approx(1.68, **TIGHT)
    assert acc.method(BASELINE).best_attempt.feasible


def test_a_task_where_only_the_baseline_is_valid(scores: BenchScores) -> None:
    task = scores.task("only_base")
    assert task.method(BASELINE).best_attempt.ratio == 1.0
    for model in ("A", "B", "C"):
        for variant in ("best_attempt", "best_submission"):
            score = task.method(model).variant(variant)  # type: ignore[arg-type]
            assert not score.feasible
            assert score.ratio == pytest.approx(1.05, **TIGHT)


def test_values_crossing_zero_are_shifted_by_the_spread(scores: BenchScores) -> None:
    reward = scores.task("reward")
    assert reward.best_attempt.shift == 5.0
    assert reward.best_submission.shift == 3.0
    assert scores.task("acc").best_attempt.shift == 0.0  # positive values: MLGym's ratios
    assert reward.method("B").best_attempt.feasible  # equal to the baseline: feasible
    assert not reward.method("B").best_submission.feasible  # -2 < -1


def test_tau_max_is_the_largest_rounded_up_penalty(scores: BenchScores) -> None:
    assert scores.log10_tau_max == 0.7  # ceil(4.2) = 5, log10 5 = 0.699 -> 0.7
    assert scores.tau_max == pytest.approx(10**0.7, **TIGHT)


@pytest.mark.parametrize(
    ("method", "tau", "rho"),
    [
        ("A", 1.0, 0.5),
        ("A", 1.04, 0.5),
        ("A", 1.1, 0.75),
        ("A", 1.99, 0.75),
        ("A", 2.0, 1.0),
        ("B", 1.0, 0.25),
        ("B", 1.1, 0.5),
        ("B", 1.7, 0.75),
        ("B", 2.0, 1.0),
        (BASELINE, 1.0, 0.25),
        (BASELINE, 1.7, 0.5),
        (BASELINE, 2.0, 0.75),
        (BASELINE, 3.99, 0.75),
        (BASELINE, 4.0, 1.0),
    ],
)
def test_profile_of_the_best_attempt(
    scores: BenchScores, method: str, tau: float, rho: float
) -> None:
    assert profile(scores.ratios(method, "best_attempt"), tau) == rho


def test_aup_of_both_variants(scores: BenchScores) -> None:
    expected_attempt = {
        "A": 0.7 - (log(2) + log(1.05)) / 4,
        "B": 0.7 - (log(1.68) + log(1.05) + log(2)) / 4,
        "C": 0.7 - (log(1.68) + log(1.05) + log(8 / 6)) / 4,
        BASELINE: 0.7 - (log(1.6) + log(4) + log(2)) / 4,
    }
    expected_submission = {
        "A": 0.7 - (log(3.2) + log(1.05)) / 4,
        "B": 0.7 - (log(1.47) + log(1.05) + log(2.1)) / 4,
        "C": 0.7 - (log(1.47) + log(1.6) + log(1.05) + log(2.1)) / 4,
        BASELINE: 0.7 - (log(1.4) + log(4) + log(2)) / 4,
    }
    for method, value in expected_attempt.items():
        assert scores.method(method).aup_best_attempt == pytest.approx(value, **TIGHT)
        assert scores.method(method).aup_best_submission == pytest.approx(
            expected_submission[method], **TIGHT
        )
    assert scores.method("A").aup_best_attempt == pytest.approx(0.61945, abs=1e-5)
    assert scores.method(BASELINE).aup_best_attempt == pytest.approx(0.42320, abs=1e-5)


def test_exact_aup_is_the_limit_of_mlgyms_step_sum(scores: BenchScores) -> None:
    """MLGym sums left steps of ρ over 500 points of [0, log10 τ_max]; the exact area must
    lie within one step width of it."""
    top = scores.log10_tau_max
    grid = [top * i / 499 for i in range(500)]
    for method in ("A", "B", "C", BASELINE):
        ratios = scores.ratios(method, "best_attempt")
        left_sum = sum(profile(ratios, 10 ** grid[i]) * (grid[i + 1] - grid[i]) for i in range(499))
        assert abs(left_sum - aup(ratios, top)) <= top / 499


def test_cost_per_model(scores: BenchScores) -> None:
    a = scores.method("A").cost
    assert a is not None
    assert (a.episodes, a.prompt_tokens, a.completion_tokens) == (6, 600, 300)
    assert a.cost_usd == pytest.approx(1.5, **TIGHT)
    assert a.cost_usd_per_episode == pytest.approx(0.25, **TIGHT)
    assert a.tokens_per_episode == pytest.approx(150.0, **TIGHT)
    assert a.wall_s == pytest.approx(12.0, **TIGHT)
    b = scores.method("B").cost
    assert b is not None and b.cost_usd == pytest.approx(2.0, **TIGHT)
    c = scores.method("C").cost
    assert c is not None and (c.cost_usd, c.cost_usd_per_episode) == (0.0, 0.0)
    assert scores.method(BASELINE).cost is None


def test_a_zero_in_a_lower_is_better_task_is_shifted() -> None:
    # baseline 1.0, A 0.0 (a perfect loss), B 0.5: lo = 0, spread 1, shift 1 ->
    # baseline 2, A 1, B 1.5: r_A = 1, r_B = 1.5, r_baseline = 2 (no division by zero).
    result = performance_ratios({"A": 0.0, "B": 0.5, BASELINE: 1.0}, "lower", 1.0)
    assert result.shift == 1.0
    assert result.ratios == {"A": 1.0, "B": 1.5, BASELINE: 2.0}


def test_equal_values_at_or_below_zero_all_get_ratio_one() -> None:
    assert positive_shift([-1.0, -1.0]) == 2.0  # 1 - lo
    result = performance_ratios({"A": -1.0, BASELINE: -1.0}, "higher", -1.0)
    assert result.ratios == {"A": 1.0, BASELINE: 1.0}
    assert positive_shift([0.1, 3.0]) == 0.0


def test_lower_is_better_ratio_is_value_over_best_and_higher_is_inverted() -> None:
    lower = performance_ratios({"A": 3.0, "B": 6.0}, "lower", None)
    higher = performance_ratios({"A": 3.0, "B": 6.0}, "higher", None)
    assert lower.ratios == {"A": 1.0, "B": 2.0}
    assert higher.ratios == {"A": 2.0, "B": 1.0}


def test_tasks_nobody_solved_are_left_out_and_a_missing_baseline_is_infeasible() -> None:
    # x (baseline 1): A 2 -> r_A 1, r_baseline 2, B none -> 1.05 · 2 = 2.1
    # y (no baseline): nobody has a value -> left out of both profiles
    # z (no baseline): A 3, B 1.5 -> r_A 1, r_B 2; the baseline has no value -> 2.1
    # τ_max: ceil(2.1) = 3, log10 3 = 0.477 -> 0.5; AUP over x and z only.
    results = [
        episode("x", "A", 0, "higher", 1.0, 2.0, 2.0),
        episode("x", "B", 0, "higher", 1.0, None, None),
        episode("y", "A", 0, "higher", None, None, None),
        episode("y", "B", 0, "higher", None, None, None),
        episode("z", "A", 0, "higher", None, 3.0, 3.0),
        episode("z", "B", 0, "higher", None, 1.5, 1.5),
    ]
    scores = score_bench(results)
    y = scores.task("y")
    assert not y.best_attempt.scored and not y.best_submission.scored
    assert y.method("A").best_attempt.ratio is None
    assert scores.task("z").method(BASELINE).best_attempt.ratio == pytest.approx(2.1, **TIGHT)
    assert scores.log10_tau_max == 0.5
    assert scores.method("A").aup_best_attempt == pytest.approx(0.5, **TIGHT)
    expected = 0.5 - (log(2.1) + log(2)) / 2
    assert scores.method("B").aup_best_attempt == pytest.approx(expected, **TIGHT)
    assert scores.method(BASELINE).aup_best_submission == pytest.approx(expected, **TIGHT)
    assert "y, best attempt: no method has a valid value" in markdown_report(scores)


def test_non_finite_values_are_not_results() -> None:
    results = [
        episode("x", "A", 0, "higher", 1.0, math.nan, math.inf),
        episode("x", "B", 0, "higher", 1.0, 2.0, 2.0),
    ]
    a = score_bench(results).task("x").method("A")
    assert a.best_attempt.value is None and not a.best_submission.feasible


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([], "No episode results"),
        ([episode("x", BASELINE, 0, "higher", 1.0, 2.0, 2.0)], "may not be named"),
        (
            [
                episode("x", "A", 0, "higher", 1.0, 2.0, 2.0),
                episode("x", "B", 0, "lower", 1.0, 2.0, 2.0),
            ],
            "both directions",
        ),
        (
            [
                episode("x", "A", 0, "higher", 1.0, 2.0, 2.0),
                episode("x", "B", 0, "higher", 1.5, 2.0, 2.0),
            ],
            "baselines 1.0 and 1.5",
        ),
    ],
)
def test_results_that_cannot_be_compared_are_refused(
    results: list[EpisodeResult], message: str
) -> None:
    with pytest.raises(BenchDataError, match=message):
        score_bench(results)


def test_tau_max_rounding() -> None:
    assert log10_tau_max([1.05]) == 0.4  # ceil -> 2, log10 2 = 0.301 -> 0.4
    assert log10_tau_max([9.5]) == 1.0  # ceil -> 10, log10 10 = 1 exactly, not 1.1
    assert log10_tau_max([10.2]) == 1.1  # ceil -> 11, log10 11 = 1.041 -> 1.1
    assert log10_tau_max([]) == 0.4


def test_profile_steps_cover_one_to_tau_max() -> None:
    taus, rhos = profile_steps([1.0, 1.5, 2.0, 1.05], 3.0)
    assert taus == [1.0, 1.05, 1.5, 2.0, 3.0]
    assert rhos == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_files_are_written_and_bench_json_round_trips(scores: BenchScores, tmp_path: Path) -> None:
    files = write_bench(scores, tmp_path / "bench")
    for png in (files.profiles, files.aup_vs_cost):
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert load_bench(files.json) == scores
    report = files.markdown.read_text(encoding="utf-8")
    assert "| A | 0.619 | 0.568 | 6 | 1.5000 | 0.2500 | 150 |" in report
    assert "| B | 1 | 0.4 (*1.680*) | 0.4 (*1.470*) |" in report  # infeasible in italics
    assert "reward, best attempt: values ≤ 0, shifted by 5" in report
    assert "![performance profiles](profiles.png)" in report


def test_terminal_table_lists_every_method(scores: BenchScores) -> None:
    console = Console(file=io.StringIO(), width=140)
    console.print(bench_table(scores))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = [line for line in text.splitlines() if "│" in line]
    assert [line.split("│")[1].strip() for line in lines] == ["A", "C", "B", BASELINE]
    assert "0.619" in lines[0] and "0.2500" in lines[0] and "150" in lines[0]
    assert "at most 0.7" in text
