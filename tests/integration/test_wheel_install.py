"""A non-editable install works outside the checkout (issue #21).

The wheel is built from a clean copy of the source (no ``build/`` left over from another
build), installed with its dependencies into a fresh virtualenv in a temporary folder (the
versions of requirements.lock, so nothing is resolved anew), and its commands run from
another folder: the templates, prompts, few-shot examples, report templates and the
calibration sample must come from the installed package, not from this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reviewer.cli import ReviewCommandOutput
from reviewer.cli.calibrate import CalibrateCommandOutput
from scientist.experiments.template_check import TemplateCheck

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PDF = ROOT / "samples" / "papers" / "multi_style_adapter.pdf"
ANYWHERE = shutil.ignore_patterns(".git", "__pycache__", ".*_cache", "*.egg-info")
AT_TOP = {"build", "dist", "runs", ".make", ".langgraph_api", "node_modules"}


def not_source(folder: str, names: list[str]) -> set[str]:
    """What a clean copy leaves out: caches anywhere; virtualenvs and outputs at the top."""
    skipped = set(ANYWHERE(folder, names))
    if Path(folder) == ROOT:
        skipped |= {n for n in names if n in AT_TOP or n.startswith(".venv")}
    return skipped


@dataclass(frozen=True)
class Installed:
    """The fresh virtualenv and a folder outside the checkout to run its commands in."""

    venv: Path
    workdir: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = [str(self.venv / "bin" / args[0]), *args[1:]]
        return subprocess.run(
            command,
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _pip(python: Path, *args: str, cwd: Path) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=not_source)
    dist = base / "dist"
    _pip(Path(sys.executable), "wheel", "-q", "--no-deps", "-w", str(dist), str(source), cwd=base)
    (wheel,) = dist.glob("autoscholar-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    lock = str(ROOT / "requirements.lock")
    _pip(venv / "bin" / "python", "install", "-q", "-c", lock, f"{wheel}[local]", cwd=base)
    workdir = base / "elsewhere"
    workdir.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTOSCHOLAR_")}
    env |= {"AUTOSCHOLAR_DATA_DIR": str(base / "data"), "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    env.pop("PYTHONPATH", None)
    yield Installed(venv=venv, workdir=workdir, env=env)


def test_the_wheel_is_no_editable_install_and_carries_its_data(installed: Installed) -> None:
    probe = installed.run(
        "python",
        "-c",
        "import core.resources as r, scientist, json; print(json.dumps([str(r.PACKAGED), "
        "r.PACKAGED.is_dir(), str(r.in_checkout('.venv-aider')), scientist.__file__]))",
    )
    assert probe.returncode == 0, probe.stderr
    packaged, is_dir, checkout_aider, module = json.loads(probe.stdout)
    assert is_dir and str(installed.venv) in packaged and checkout_aider == "None"
    assert str(installed.venv) in module and str(ROOT) not in module
    version = installed.run("scientist", "--version")
    assert version.returncode == 0 and version.stdout.startswith("scientist 0.1.0")


def test_template_check_finds_a_shipped_template_in_the_package(installed: Installed) -> None:
    done = installed.run("scientist", "template", "check", "digits", "--static", "--json")
    assert done.returncode == 0, done.stderr
    check = TemplateCheck.model_validate_json(done.stdout)
    assert check.passed and str(installed.venv) in str(check.template)


def test_calibrate_runs_on_the_shipped_sample(installed: Installed) -> None:
    sample = installed.run(
        "python", "-c", "from reviewer.calibration.run import SAMPLE_DATA; print(SAMPLE_DATA)"
    ).stdout.strip()
    reviews = str(Path(sample).with_name("iclr_small_reviews.csv"))
    done = installed.run(
        "reviewer",
        "calibrate",
        "--data",
        "sample",
        "--reviews",
        reviews,
        "--bootstrap",
        "100",
        "--out",
        "calibration",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    output = CalibrateCommandOutput.model_validate_json(done.stdout)
    assert str(installed.venv) in output.data and output.rows
    assert (installed.workdir / "calibration" / "calibration.json").is_file()


def test_reviewer_reviews_a_sample_pdf_on_the_embedded_model(installed: Installed) -> None:
    done = installed.run(
        "reviewer",
        "review",
        str(SAMPLE_PDF),
        "--preset",
        "debug",
        "--reviewers",
        "1",
        "--reflections",
        "0",
        "--out",
        "review",
        "--json",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (paper,) = ReviewCommandOutput.model_validate_json(done.stdout).papers
    assert paper.status == "reviewed" and paper.decision in {"accept", "reject"}
    assert {"json", "md", "html", "pdf"} <= set(paper.files)
    assert all(
        (installed.workdir / path).is_file() or Path(path).is_file()
        for path in paper.files.values()
    )
