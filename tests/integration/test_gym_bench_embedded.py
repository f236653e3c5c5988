"""One real bench episode (issue #18): the tool agent on the embedded model (SmolLM2-135M,
preset debug) works digits in the sandbox until it submits or a budget ends it, and the
episode's trajectory and ledger agree with its result. The 135M model is weak: the test
checks the machinery, not that it improves the metric."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.settings import Settings
from gateway.gateway import Gateway
from gateway.ledger import read_entries
from gateway.local import LocalServer
from scientist.gym.bench import BenchConfig, run_bench
from scientist.gym.factory import agent_factory
from scientist.gym.limits import EpisodeLimits
from scientist.gym.trajectory import read_trajectory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]
MAX_STEPS = 4


def test_one_embedded_episode_on_digits(
    embedded_settings: Settings, embedded_server: LocalServer, tmp_path: Path
) -> None:
    settings = embedded_settings.model_copy(update={"runs_dir": tmp_path / "runs"})
    config = BenchConfig(
        tasks=["digits"],
        methods=["local"],
        attempts=1,
        limits=EpisodeLimits(max_steps=MAX_STEPS, max_wall_s=1200, max_total_tokens=60_000),
    )
    gateway = Gateway(settings, local_server=embedded_server)
    outcome = run_bench(config, settings, tmp_path / "bench", agent_factory(settings), gateway)

    (result,) = outcome.results
    # The agent submits, or the env submits the workspace when a step or token budget runs out.
    assert result.status == "submitted", result.reason
    assert 1 <= result.steps <= MAX_STEPS
    steps = read_trajectory(Path(result.trajectory))
    assert len(steps) == result.steps
    assert steps[-1].terminated or steps[-1].truncated
    ledger = read_entries(Path(result.trajectory).parent / "ledger.jsonl")
    assert len(ledger) >= result.steps  # one call per step at least (re-asks add more)
    assert {entry.model for entry in ledger} == {"local"}
    assert result.prompt_tokens == sum(e.prompt_tokens for e in ledger) > 0
    assert result.completion_tokens == sum(s.completion_tokens for s in steps)
    assert outcome.files.profiles.is_file() and outcome.files.json.is_file()
