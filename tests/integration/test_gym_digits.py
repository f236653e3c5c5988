"""The digits template as a gym environment, for real: its baseline and its runs in the
bubblewrap box with the experiment limits (about 2-3 s per run on a free core)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import scientist.gym  # noqa: F401  (registers the environments)
from core.settings import Settings
from scientist.gym.env import ResearchEnv
from scientist.gym.trajectory import read_trajectory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]


def test_digits_runs_for_real_through_the_sandbox(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(experiments={"isolation": "bwrap", "run_timeout_s": 300})
    env = gymnasium.make("autoscholar/digits-v0", settings=settings, limits={"max_steps": 6})
    observation, info = env.reset(seed=0)
    baseline = info["baseline"]
    assert 0.8 < baseline < 1.0  # digits_noisy test accuracy of the shipped MLP
    assert "digits_noisy.means.test_accuracy" in observation
    workspace = Path(info["workspace"])
    assert workspace.is_relative_to(tmp_path)  # make_settings put runs_dir in tmp_path

    observation, reward, *_ = env.step('{"command": "bash", "cmd": "id -u; ls /root"}')
    assert observation.splitlines()[2] == "65534"  # the box drops root to nobody

    # The unchanged code reproduces the baseline (seeded, one BLAS thread).
    _, reward, terminated, _, step = env.step('{"command": "validate"}')
    assert step["metric"] == pytest.approx(baseline, abs=1e-9) and reward == pytest.approx(0.0)
    assert not terminated

    lines = (workspace / "experiment.py").read_text().splitlines()
    hidden = lines.index("HIDDEN = 64") + 1
    edit = {"command": "edit", "path": "experiment.py", "start": hidden, "end": hidden}
    env.step(json.dumps(edit | {"text": "HIDDEN = 128"}))
    _, reward, terminated, truncated, step = env.step('{"command": "submit"}')
    assert terminated and not truncated
    assert reward == pytest.approx(step["metric"] - baseline)

    unwrapped = env.unwrapped
    assert isinstance(unwrapped, ResearchEnv)
    result = unwrapped.episode_result("scripted")
    assert result.status == "submitted" and result.steps == 4
    assert result.submission == step["metric"]
    assert result.best_attempt == max(baseline, step["metric"])
    assert len(read_trajectory(Path(result.trajectory))) == 4


def test_check_env_on_real_digits(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(experiments={"isolation": "bwrap"})
    env = ResearchEnv("digits", settings=settings)
    check_env(env, skip_render_check=True)
