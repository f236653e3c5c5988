"""A template brings its own environment: real ``python -m venv`` + ``pip install`` (from the
package index, so this needs the network) and the real bubblewrap box.

The template is a copy of the shipped ``digits`` template whose experiment imports
``humanize``, a small pure-Python package autoscholar's own environment does not have.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.settings import Settings
from graphs.experiments import run_experiments
from scientist.experiments.environment import (
    MARKER,
    CommandResult,
    EnvStore,
    TemplateEnv,
    run_command,
)
from scientist.experiments.errors import TemplateEnvError
from scientist.experiments.models import ExperimentRecord
from scientist.experiments.rounds import ExperimentDeps
from scientist.experiments.runner import SandboxLimits, SandboxRunner
from scientist.experiments.template_check import ENV_CHECK, check_template
from scientist.ideas.template import load_template, resolve_template
from tests.unit.test_experiment_stage import IDEA, ScriptedEditor

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]
PACKAGE, VERSION = "humanize", "4.17.0"
EXPERIMENT = """import argparse, json, os, sys
import humanize

parser = argparse.ArgumentParser()
parser.add_argument("--out_dir", default="run_0")
out = parser.parse_args().out_dir
os.makedirs(out, exist_ok=True)
width = len(humanize.intcomma(10 ** {power}))
with open(os.path.join(out, "final_info.json"), "w") as f:
    json.dump({{"commas": {{"means": {{"width": width}}, "stderrs": {{"width": 0.0}}}}}}, f)
with open(os.path.join(out, "where.json"), "w") as f:
    json.dump({{"prefix": sys.prefix, "uid": os.getuid(), "humanize": humanize.__version__}}, f)
"""
# plot.py without matplotlib (not in this template's requirements): a 1x1 PNG by hand.
PLOT = """import struct, zlib

labels = {"run_0": "Baseline"}


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


png = b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"\\x00\\x80")) + chunk(b"IEND", b"")
with open("width.png", "wb") as f:
    f.write(png)
"""


class Counting:
    """``run_command``, counting the venv and pip commands it ran."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def __call__(self, argv: list[str], cwd: Path, timeout_s: float) -> CommandResult:
        self.kinds.append(argv[2])
        return run_command(argv, cwd, timeout_s)


def humanize_template(tmp_path: Path, requirements: str = f"{PACKAGE}=={VERSION}\n") -> Path:
    folder = tmp_path / "digits_humanize"
    shutil.copytree(resolve_template("digits"), folder, ignore=shutil.ignore_patterns("run_*"))
    (folder / "experiment.py").write_text(EXPERIMENT.format(power=6))
    (folder / "plot.py").write_text(PLOT)
    (folder / "requirements.txt").write_text(requirements)
    return folder


def boxed_runner(envs: EnvStore, template: Path) -> SandboxRunner:
    limits = SandboxLimits(timeout_s=60, memory_mb=2048, cpus=1)
    return SandboxRunner(limits, isolation="bwrap", environment=TemplateEnv(envs, template))


def test_a_template_brings_its_own_environment(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    assert importlib.util.find_spec(PACKAGE) is None, f"{PACKAGE} must not be in our venv"
    template, root = humanize_template(tmp_path), tmp_path / "envs"
    first = Counting()
    envs = EnvStore(root, sys.executable, install_timeout_s=600, run=first)

    # Before it exists, the check names what is missing and how it will be made.
    before = {i.name: i for i in check_template(template, None, envs).items}[ENV_CHECK]
    assert f"missing: {PACKAGE};" in before.detail
    assert f"{sys.executable} -m venv {root}/" in before.detail
    assert "-m pip install -r requirements.txt" in before.detail

    # The experiment stage: baseline, one coding round, plot, notes; all on the venv, boxed.
    runner = boxed_runner(envs, template)
    start = time.monotonic()
    python = runner.interpreter()
    made_s = time.monotonic() - start
    assert first.kinds == ["venv", "pip"]
    assert python.startswith(f"{root}/")
    editor = ScriptedEditor([{"experiment.py": EXPERIMENT.format(power=9)}])
    deps = ExperimentDeps(
        settings=make_settings(experiments={"max_rounds": 1, "plot_attempts": 1}),
        editor=editor,
        runner=runner,
    )
    idea_dir = tmp_path / "run" / "idea"
    record = run_experiments(IDEA, idea_dir, load_template(template), deps)
    assert record.status == "ok", record.reason
    assert record.baseline.results["commas"].means["width"] == len("1,000,000")
    assert record.rounds[0].run is not None
    assert record.rounds[0].run.results["commas"].means["width"] == len("1,000,000,000")
    where = json.loads((idea_dir / "run_0" / "where.json").read_text())
    env_path = Path(python).parent.parent
    assert where["prefix"] == str(env_path) and where["humanize"] == VERSION
    if os.geteuid() == 0:
        assert where["uid"] == 65534  # the box dropped root
    saved = ExperimentRecord.model_validate_json((idea_dir / "experiments.json").read_text())
    assert saved.environment is not None
    assert saved.environment.packages[PACKAGE] == VERSION
    assert saved.environment.path == str(env_path)
    assert first.kinds == ["venv", "pip"]  # every run used the one environment

    # A later run (a new process: new store, new runner) reuses it: no venv, no pip.
    marker = (env_path / MARKER).stat().st_mtime_ns
    again = Counting()
    later = boxed_runner(EnvStore(root, sys.executable, run=again), template)
    start = time.monotonic()
    assert later.interpreter() == python
    reuse_s = time.monotonic() - start
    work = tmp_path / "again"
    shutil.copytree(template, work)
    assert later.run_experiment(work, "run_0").status == "ok"
    assert again.kinds == []
    assert (env_path / MARKER).stat().st_mtime_ns == marker

    after = {i.name: i for i in check_template(template, None, envs).items}[ENV_CHECK]
    assert after.detail.startswith(f"ready: {env_path}") and f"{PACKAGE} {VERSION}" in after.detail
    print(f"\nenvironment made in {made_s:.2f} s, reused in {reuse_s * 1000:.1f} ms")


def test_a_failed_install_says_which_requirement_and_shows_pip(tmp_path: Path) -> None:
    bad = "autoscholar-no-such-package-xyz==1.0"
    template = humanize_template(tmp_path, f"{PACKAGE}=={VERSION}\n{bad}\n")
    root = tmp_path / "envs"
    runner = boxed_runner(EnvStore(root, sys.executable, install_timeout_s=600), template)
    with pytest.raises(TemplateEnvError) as caught:
        runner.run_experiment(template, "run_0")
    error = caught.value
    assert error.requirement == bad
    assert f"No matching distribution found for {bad}" in error.pip_tail
    assert f"failed on requirement `{bad}` (requirement 2 of" in str(error)
    assert [p.name for p in root.iterdir() if not p.name.endswith(".lock")] == []
    assert not (template / "run_0").exists()
