"""A template's own virtualenv in a paper run: the baseline stamp names it, and a run makes
it before its first model call. The fake venv/pip of ``test_template_env`` stands in for
the real ones (``tests/integration/test_template_env.py`` has those)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from core.runstore import RunPaths
from core.settings import Settings
from scientist.experiments.environment import TemplateEnv
from scientist.experiments.errors import TemplateEnvError
from scientist.experiments.runner import SandboxLimits, SandboxRunner, environment_key
from scientist.experiments.workspace import STAMP, make_baseline, reuse_baseline
from scientist.ideas.template import load_template
from scientist.pipeline.deps import PipelineDeps
from scientist.pipeline.models import RunManifest
from scientist.runs.run import run_pipeline
from scientist.runs.wiring import RunRequest
from tests.pipeline_support import PipelineModel, fake_deps_factory, fast_overrides
from tests.unit.test_experiment_stage import (
    CountingRunner,
    ScriptedEditor,
    settings_for,
    stage,
    value,
)
from tests.unit.test_template_check import toy_template
from tests.unit.test_template_env import PIP_NOT_FOUND, FakePip, env_template, store


def counting_runner(envs_root: Path, folder: Path, fake: FakePip | None = None) -> CountingRunner:
    """The real sandbox on the template's (fake) virtualenv, as a new process would build it."""
    runner = CountingRunner()
    runner.environment = TemplateEnv(store(envs_root, fake or FakePip()), folder)
    return runner


def read_stamp(folder: Path) -> dict[str, object]:
    return dict(json.loads((folder / "run_0" / STAMP).read_text()))


def test_a_changed_requirements_txt_makes_the_templates_baseline_stale(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    folder, envs = env_template(tmp_path), tmp_path / "envs"
    maker = counting_runner(envs, folder)
    assert make_baseline(folder, maker).outcome.status == "ok"
    key = environment_key(maker)
    assert key is not None and read_stamp(folder)["environment_key"] == key
    template, cfg = load_template(folder), settings_for(make_settings, max_rounds=1)

    again = counting_runner(envs, folder)
    _, same, _ = stage(template, tmp_path, cfg, ScriptedEditor([value(2)]), again)
    assert same.experiments == ["run_1"]  # run_0 copied: same experiment.py, same environment

    (folder / "requirements.txt").write_text("humanize==4.18.0\n")
    changed = counting_runner(envs, folder)
    assert environment_key(changed) not in (None, key)
    _, rerun, _ = stage(template, tmp_path, cfg, ScriptedEditor([value(2)]), changed)
    assert rerun.experiments == ["run_0", "run_1"]  # made in another environment: run again


def test_a_stamp_from_before_environments_is_stale_only_with_requirements(
    tmp_path: Path,
) -> None:
    folder = toy_template(tmp_path / "plain")
    plain = CountingRunner()
    assert make_baseline(folder, plain).outcome.status == "ok"
    stamp = read_stamp(folder)
    assert stamp["environment_key"] is None and environment_key(plain) is None
    del stamp["environment_key"]  # as every stamp was written before this field
    (folder / "run_0" / STAMP).write_text(json.dumps(stamp))

    reused = reuse_baseline(folder, tmp_path / "idea_a", environment_key(plain))
    assert reused is not None and reused.status == "ok"

    (folder / "requirements.txt").write_text("humanize==4.17.0\n")
    key = environment_key(counting_runner(tmp_path / "envs", folder))
    assert key is not None
    assert reuse_baseline(folder, tmp_path / "idea_b", key) is None
    assert not (tmp_path / "idea_b" / "run_0").exists()


def with_sandbox(
    model: PipelineModel, sandbox: SandboxRunner
) -> Callable[[Settings, RunPaths, RunRequest], PipelineDeps]:
    """The fake pipeline deps, but with the real sandbox runner on the template's env."""
    base = fake_deps_factory(model)

    def build(settings: Settings, run: RunPaths, request: RunRequest) -> PipelineDeps:
        return replace(base(settings, run, request), runner=sandbox)

    return build


def test_a_failing_install_stops_the_run_before_any_model_call(tmp_path: Path) -> None:
    folder = env_template(tmp_path, "humanize==4.17.0\nnosuch-pkg==1.0\n")
    fake, calls = FakePip(fail_with=PIP_NOT_FOUND), tmp_path / "calls.jsonl"
    sandbox = SandboxRunner(
        SandboxLimits(timeout_s=30, memory_mb=1024, cpus=1),
        environment=TemplateEnv(store(tmp_path / "envs", fake), folder),
    )
    request = RunRequest(template=str(folder), preset="debug", overrides=fast_overrides(tmp_path))
    with pytest.raises(TemplateEnvError) as caught:
        run_pipeline(request, deps_factory=with_sandbox(PipelineModel(calls), sandbox))
    assert caught.value.requirement == "nosuch-pkg==1.0"
    assert caught.value.exit_code == 2
    assert fake.count("pip") == 1
    assert not calls.exists()  # the model was never asked: no ideas were paid for
    [run_json] = (tmp_path / "runs").glob("*/run.json")
    manifest = RunManifest.model_validate_json(run_json.read_text())
    assert manifest.status == "failed" and manifest.ideas == []
    assert "TemplateEnvError" in (manifest.reason or "")
    assert "nosuch-pkg==1.0" in (manifest.reason or "")
