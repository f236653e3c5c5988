"""``scientist template check``, ``scientist baseline`` and the shipped templates' files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scientist.cli import app
from scientist.experiments.runner import SandboxLimits, SandboxRunner
from scientist.experiments.template_check import check_template
from scientist.ideas.template import SHIPPED_TEMPLATES, shipped_templates
from tests.unit.test_experiment_stage import EXPERIMENT, IDEA, PLOT

FIXTURE_TEX = Path(__file__).resolve().parents[1] / "fixtures" / "latex_template" / "template.tex"


def runner() -> SandboxRunner:
    return SandboxRunner(SandboxLimits(timeout_s=30, memory_mb=1024, cpus=1))


def toy_template(folder: Path) -> Path:
    (folder / "latex").mkdir(parents=True)
    (folder / "experiment.py").write_text(EXPERIMENT.format(value=1))
    (folder / "plot.py").write_text(PLOT)
    (folder / "prompt.json").write_text(json.dumps({"system": "s", "task_description": "t"}))
    (folder / "seed_ideas.json").write_text(json.dumps([IDEA.model_dump()]))
    shutil.copy(FIXTURE_TEX, folder / "latex" / "template.tex")
    return folder


def failed(report: object) -> dict[str, str]:
    return {i.name: i.detail for i in report.items if not i.ok}  # type: ignore[attr-defined]


def test_a_good_template_passes_every_check(tmp_path: Path) -> None:
    report = check_template(toy_template(tmp_path / "toy"), runner())
    assert report.passed, failed(report)
    names = [i.name for i in report.items]
    assert "baseline runs (sandbox)" in names and "plot.py runs" in names
    assert report.baseline_seconds is not None
    assert not (tmp_path / "toy" / "run_0").exists()  # ran in a temporary copy


@pytest.mark.parametrize(
    ("breakage", "check"),
    [
        (lambda f: (f / "plot.py").unlink(), "files present"),
        (lambda f: (f / "prompt.json").write_text("{oops"), "prompt.json valid"),
        (lambda f: (f / "prompt.json").write_text('{"system": "s"}'), "prompt.json valid"),
        (lambda f: (f / "seed_ideas.json").write_text('[{"Name": "x"}]'), "seed_ideas.json valid"),
        (lambda f: (f / "seed_ideas.json").write_text("[]"), "seed_ideas.json valid"),
        (lambda f: (f / "plot.py").write_text("print(1)\n"), "plot.py has a labels dict"),
        (
            lambda f: (f / "experiment.py").write_text("raise SystemExit(3)\n# out_dir\n"),
            "baseline runs (sandbox)",
        ),
        (
            lambda f: (f / "experiment.py").write_text("import os  # out_dir\n"),
            "baseline runs (sandbox)",
        ),
        (
            lambda f: (f / "plot.py").write_text("labels = {}\nraise ValueError('no')\n"),
            "plot.py runs",
        ),
    ],
)
def test_a_broken_template_fails_the_right_check(
    tmp_path: Path, breakage: object, check: str
) -> None:
    folder = toy_template(tmp_path / "toy")
    breakage(folder)  # type: ignore[operator]
    report = check_template(folder, runner())
    assert not report.passed
    assert check in failed(report), failed(report)


def test_cli_check_exit_codes(tmp_path: Path) -> None:
    good = toy_template(tmp_path / "good")
    result = CliRunner().invoke(app, ["template", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "passed" in result.output
    (good / "seed_ideas.json").write_text("not json")
    result = CliRunner().invoke(app, ["template", "check", str(good), "--static"])
    assert result.exit_code == 1
    assert "FAILED" in result.output


def test_cli_baseline_makes_run_0_and_figures(tmp_path: Path) -> None:
    folder = toy_template(tmp_path / "toy")
    result = CliRunner().invoke(app, ["baseline", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "run_0" / "final_info.json").is_file()
    assert (folder / "run_0" / "baseline.json").is_file()
    assert (folder / "run_0_score.png").is_file()
    assert "run_0 in" in result.output


def test_three_templates_ship_and_pass_the_static_checks() -> None:
    assert {"grokking", "diffusion_2d", "digits"} <= set(shipped_templates())
    for name in ("grokking", "diffusion_2d", "digits"):
        report = check_template(name)
        assert report.passed, (name, failed(report))


@pytest.mark.parametrize("name", ["grokking", "diffusion_2d", "digits"])
def test_shipped_template_contract(name: str) -> None:
    folder = SHIPPED_TEMPLATES / name
    code = (folder / "experiment.py").read_text()
    assert len(code.splitlines()) < 150  # the idea model reads the whole file
    assert "std(ddof=1) / np.sqrt(len(a))" in code  # standard error, not std/n
    assert (folder / "latex" / "template.tex").read_text() == FIXTURE_TEX.read_text()
    seeds = json.loads((folder / "seed_ideas.json").read_text())
    assert 1 <= len(seeds) <= 2
