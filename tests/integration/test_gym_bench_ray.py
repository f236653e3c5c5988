"""``scientist bench --executor ray`` (issue #18) on a real private Ray instance (127.0.0.1,
2 CPUs, one for the module): the scripted agents of ``tests.gym_agents`` on digits give the
same episodes through Ray as through the local executor, an agent's crash is still its
episode's failure, and a rerun reads every episode back. The local bench runs first, so the
digits baseline is cached in the shared data dir before the Ray tasks reset their envs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import ray.cloudpickle

from core.settings import ClusterSettings, Settings, load_settings
from scientist.gym.bench import BenchConfig, BenchOutcome, run_bench
from scientist.gym.limits import EpisodeLimits
from scientist.gym.models import EpisodeResult
from scientist.runs.ray_bench import RayEpisodeExecutor
from tests.gym_agents import memo_runners, scripted_factory
from tests.ray_support import private_ray_instance
from tests.unit.test_gym_bench import no_llm

pytestmark = pytest.mark.integration
CONFIG = BenchConfig(
    tasks=["digits"],
    methods=["submit", "scripted-good", "crash"],
    attempts=1,
    limits=EpisodeLimits(max_steps=5),
    executor="ray",
)


@pytest.fixture(scope="module")
def private_ray() -> Iterator[None]:
    """One private Ray instance for the module: 2 CPUs, the test tree on its PYTHONPATH."""
    with private_ray_instance():
        yield


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("bench-ray")
    return load_settings(
        "default", {"data_dir": str(root / "data"), "runs_dir": str(root / "runs")}
    )


@pytest.fixture(scope="module")
def local(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> BenchOutcome:
    out = tmp_path_factory.mktemp("local")
    config = CONFIG.model_copy(update={"executor": "local"})
    factory = scripted_factory()
    return run_bench(
        config, settings, out, factory, no_llm(settings), runners=memo_runners(settings)
    )


def ray_bench(settings: Settings, out: Path) -> BenchOutcome:
    executor = RayEpisodeExecutor(ClusterSettings(num_cpus=1), poll_s=0.1)
    # A module-level Settings -> Gateway function: a Gateway itself does not pickle.
    return run_bench(
        CONFIG,
        settings,
        out,
        scripted_factory(),
        no_llm,
        runners=memo_runners(settings),
        executor=executor,
    )


def _outcome(result: EpisodeResult) -> tuple[object, ...]:
    return (
        result.task,
        result.model,
        result.attempt,
        result.status,
        result.best_attempt,
        result.submission,
        result.steps,
        result.baseline,
    )


def test_the_scripted_agents_pickle() -> None:
    build = ray.cloudpickle.loads(ray.cloudpickle.dumps(scripted_factory({"local": "submit"})))
    assert build.__name__ == "build"


def test_ray_gives_the_local_episodes_and_a_rerun_runs_nothing(
    private_ray: None, local: BenchOutcome, settings: Settings, tmp_path: Path
) -> None:
    remote = ray_bench(settings, tmp_path)
    assert len(remote.ran) == 3 and not remote.reused
    assert [_outcome(r) for r in remote.results] == [_outcome(r) for r in local.results]
    statuses = {r.model: r.status for r in remote.results}
    assert statuses == {"submit": "submitted", "scripted-good": "submitted", "crash": "failed"}
    good = next(r for r in remote.results if r.model == "scripted-good")
    assert good.submission is not None and good.baseline is not None
    assert good.submission > good.baseline  # HIDDEN 128 beats the baseline, through Ray too
    crashed = next(r for r in remote.results if r.model == "crash")
    assert "the agent's own bug" in (crashed.reason or "")
    assert (tmp_path / "episodes" / "digits" / "crash-0" / "error.txt").is_file()
    for result in remote.results:  # written by the Ray tasks into the (shared) out folder
        assert Path(result.trajectory).is_relative_to(tmp_path / "episodes" / "digits")
    assert remote.scores.methods[0].method == "scripted-good"

    again = ray_bench(settings, tmp_path)
    assert not again.ran and len(again.reused) == 3
    assert [_outcome(r) for r in again.results] == [_outcome(r) for r in remote.results]
