"""``scientist bench`` (issue #18): the acceptance run (digits and diffusion_2d, a scripted
agent that makes a known improving edit against a stand-in that submits the baseline code,
two attempts each) ranks the scripted agent first from the recorded metrics and writes both
plots; a second run reads every episode back; an agent's crash is its episode's failure.

The runs are real (the sandbox, the templates' experiments) but each distinct experiment.py
runs once (``MemoRunner``: the templates are seeded, so a rerun reproduces its metric): the
module runs three experiments (digits' baseline and its edit, diffusion_2d's baseline, ~15-20
s on a free core) in a private data dir.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.settings import Settings, load_settings
from gateway.gateway import Gateway
from gateway.scripted import ScriptedLLM
from scientist.cli.bench import bench_config, register
from scientist.gym.agent import AgentSpec, GymAgent
from scientist.gym.bench import (
    BenchConfig,
    BenchConfigError,
    BenchOutcome,
    EpisodeKey,
    episode_slug,
    result_path,
    run_bench,
    spend_summary,
)
from scientist.gym.limits import EpisodeLimits
from scientist.gym.models import EpisodeResult
from scientist.gym.trajectory import read_trajectory
from tests.gym_agents import memo_runners, scripted_factory
from tests.unit.test_gym_agent import make_template

TASKS = ["digits", "diffusion_2d"]
METHODS = ["local", "scripted-good"]


@pytest.fixture(scope="module")
def bench_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("bench")
    return load_settings(
        "default", {"data_dir": str(root / "data"), "runs_dir": str(root / "runs")}
    )


def no_llm(settings: Settings) -> Gateway:
    """Scripted agents make no model call: an empty script fails the test if one is made."""
    return Gateway(settings, backend=ScriptedLLM([]))


@pytest.fixture(scope="module")
def acceptance(
    bench_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BenchOutcome, Path]]:
    out = tmp_path_factory.mktemp("acceptance")
    config = BenchConfig(
        tasks=TASKS, methods=METHODS, attempts=2, limits=EpisodeLimits(max_steps=5)
    )
    factory = scripted_factory({"local": "submit"})
    runners = memo_runners(bench_settings)
    gateway = no_llm(bench_settings)
    yield run_bench(config, bench_settings, out, factory, gateway, runners=runners), out


def test_scripted_agent_ranks_first_from_the_recorded_metrics(
    acceptance: tuple[BenchOutcome, Path],
) -> None:
    outcome, out = acceptance
    assert len(outcome.ran) == 8 and not outcome.reused
    summary = {m.method: m for m in outcome.scores.methods}
    assert outcome.scores.methods[0].method == "scripted-good"
    good, local = summary["scripted-good"], summary["local"]
    assert good.aup_best_attempt > local.aup_best_attempt
    assert good.aup_best_submission > local.aup_best_submission

    # The scores are the recorded episodes' metrics: digits' best submission of each method.
    files = sorted((out / "episodes" / "digits").glob("*.json"))
    recorded = [EpisodeResult.model_validate_json(f.read_text()) for f in files]
    assert [r.model for r in recorded] == ["local", "local", "scripted-good", "scripted-good"]
    digits = next(t for t in outcome.scores.tasks if t.task == "digits")
    values = {m.method: m.best_submission.value for m in digits.methods}
    assert values["scripted-good"] == max(r.submission or 0 for r in recorded[2:])
    assert values["local"] == max(r.submission or 0 for r in recorded[:2])
    assert digits.baseline is not None
    assert values["scripted-good"] > digits.baseline  # HIDDEN 128: 0.93148 > 0.92852
    assert values["local"] == pytest.approx(digits.baseline, abs=1e-9)  # seeded: reproduced

    for path in (outcome.files.profiles, outcome.files.aup_vs_cost):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scores = json.loads(outcome.files.json.read_text())
    assert scores["methods"][0]["method"] == "scripted-good"
    assert "scripted-good" in outcome.files.markdown.read_text()


def test_every_episode_has_its_trajectory(acceptance: tuple[BenchOutcome, Path]) -> None:
    outcome, out = acceptance
    good = [r for r in outcome.results if r.model == "scripted-good" and r.task == "digits"]
    for result in good:
        assert result.status == "submitted"
        steps = read_trajectory(Path(result.trajectory))
        assert [s.command for s in steps] == ["edit", "validate", "submit"]
        assert Path(result.trajectory).is_relative_to(out / "episodes" / "digits")
    spend = {row.method: row for row in spend_summary(outcome.results)}
    assert spend["local"].episodes == 4 and spend["local"].submitted == 4
    assert spend["scripted-good"].cost_usd == 0.0


def test_a_second_run_reruns_nothing(
    acceptance: tuple[BenchOutcome, Path], bench_settings: Settings
) -> None:
    first, out = acceptance

    def never(spec: AgentSpec) -> GymAgent:
        raise AssertionError(f"episode {spec.method} ran again")

    config = BenchConfig(tasks=TASKS, methods=METHODS, attempts=2)
    again = run_bench(config, bench_settings, out, never, no_llm(bench_settings))
    assert not again.ran and len(again.reused) == 8
    assert again.scores == first.scores


def test_more_attempts_run_only_the_new_episodes(
    acceptance: tuple[BenchOutcome, Path], bench_settings: Settings
) -> None:
    _, out = acceptance
    config = BenchConfig(tasks=["digits"], methods=["local"], attempts=3)
    factory, gateway = scripted_factory({"local": "submit"}), no_llm(bench_settings)
    runners = memo_runners(bench_settings)
    outcome = run_bench(config, bench_settings, out / "more", factory, gateway, runners=runners)
    assert len(outcome.ran) == 3
    # Copy two finished results into a fresh folder: only the third attempt runs.
    fresh = out / "fresh"
    for key in outcome.ran[:2]:
        target = result_path(fresh, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(result_path(out / "more", key).read_text())
    resumed = run_bench(config, bench_settings, fresh, factory, gateway, runners=runners)
    assert resumed.ran == [EpisodeKey("digits", "local", 2)] and len(resumed.reused) == 2


def test_a_crashing_agent_fails_its_episode_and_the_bench_goes_on(
    bench_settings: Settings, tmp_path: Path
) -> None:
    template = make_template(tmp_path / "templates")
    config = BenchConfig(tasks=[str(template)], methods=["crash", "submit"], attempts=1)
    outcome = run_bench(
        config, bench_settings, tmp_path / "out", scripted_factory(), no_llm(bench_settings)
    )
    crash, submit = outcome.results
    assert crash.status == "failed" and crash.reason == "RuntimeError: the agent's own bug"
    assert crash.steps == 1 and crash.submission is None
    folder = tmp_path / "out" / "episodes" / "toy" / "crash-0"
    assert "RuntimeError" in (folder / "error.txt").read_text()
    assert submit.status == "submitted" and submit.submission == pytest.approx(0.5)
    infeasible = next(m for m in outcome.scores.methods if m.method == "crash")
    assert infeasible.aup_best_submission < next(
        m.aup_best_submission for m in outcome.scores.methods if m.method == "submit"
    )


def test_ray_needs_an_executor_object_and_nothing_else_exists(
    bench_settings: Settings, tmp_path: Path
) -> None:
    config = BenchConfig(tasks=["digits"], methods=["submit"], executor="ray")
    with pytest.raises(BenchConfigError, match="'local'"):
        run_bench(config, bench_settings, tmp_path, scripted_factory(), no_llm(bench_settings))


def test_episode_names_are_file_safe_and_distinct() -> None:
    assert episode_slug("openai/gpt-4o") == "openai_gpt-4o"
    assert episode_slug("aider:local") == "aider_local"
    assert EpisodeKey("digits", "anthropic/claude-sonnet-4-5", 3).name == (
        "anthropic_claude-sonnet-4-5-3"
    )
    with pytest.raises(ValueError, match="distinct"):
        BenchConfig(tasks=["digits"], methods=["openai/gpt-4o", "openai_gpt-4o"])


def test_cli_options_become_a_config() -> None:
    config = bench_config("digits, grokking", "local,openai/gpt-4o", 4, "local", 12, 0.5)
    assert config.tasks == ["digits", "grokking"] and config.methods == ["local", "openai/gpt-4o"]
    assert config.limits.max_steps == 12 and config.limits.max_cost_usd == 0.5
    assert config.limits.max_total_tokens is None
    with pytest.raises(BenchConfigError, match="attempts"):
        bench_config("digits", "local", 0, "local")


def test_cli_reports_an_unknown_executor_as_a_usage_error(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands: typer keeps "bench" as a subcommand
    args = ["bench", "--tasks", "digits", "--models", "local", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--executor", "slurm", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error_type"] == "BenchConfigError"
    assert not (tmp_path / "episodes").exists()
