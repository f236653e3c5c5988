"""``--json``: one JSON document on stdout that validates against its pydantic model (#21)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.cli_support import ErrorOutput
from core.runstore import RunPaths
from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from gateway.errors import EXIT_FAILED, EXIT_USAGE
from gateway.ledger import read_entries, sum_entries
from reviewer.calibration.run import SAMPLE_DATA
from reviewer.cli import ReviewCommandOutput
from reviewer.cli import app as reviewer_app
from reviewer.cli.calibrate import CalibrateCommandOutput
from scientist.cli import app as scientist_app
from scientist.cli import pipeline as pipeline_cli
from scientist.cli.ideas import IdeasCommandOutput
from scientist.cli.pipeline import BatchCommandOutput, RunCommandOutput, run_exit_code
from scientist.experiments.template_check import TemplateCheck
from scientist.ideas.records import load_ideas
from scientist.pipeline.models import RunManifest
from scientist.runs.wiring import RunRequest
from tests.pipeline_support import PipelineModel, fake_deps_factory, fast_overrides
from tests.unit.test_ideas import reply

SAMPLE_REVIEWS = SAMPLE_DATA.with_name("iclr_small_reviews.csv")


def test_template_check_json_is_the_template_check(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        scientist_app, ["template", "check", "digits", "--static", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = TemplateCheck.model_validate_json(result.stdout)
    assert report.passed and {item.name for item in report.items} >= {"prompt.json valid"}


def test_review_json_reports_each_paper_and_the_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSCHOLAR_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "a.pdf").write_text("not a pdf at all")
    (folder / "b.pdf").write_text("nor this one")
    result = CliRunner().invoke(reviewer_app, ["review", str(folder), "--json"])
    assert result.exit_code == 2, result.output  # every paper failed alike: an unusable input
    output = ReviewCommandOutput.model_validate_json(result.stdout)
    assert output.exit_code == 2
    assert [(Path(p.pdf).name, p.status, p.error_type) for p in output.papers] == [
        ("a.pdf", "failed", "NotAPdfError"),
        ("b.pdf", "failed", "NotAPdfError"),
    ]


def _run_with_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """`scientist run` as it is, with the pipeline's side effects faked (scripted model)."""
    from scientist.runs import run as runs

    factory = fake_deps_factory(PipelineModel())
    real_run = runs.run_pipeline

    def faked(request: RunRequest) -> tuple[RunPaths, RunManifest]:
        return real_run(request, deps_factory=factory)

    monkeypatch.setattr(pipeline_cli, "run_pipeline", faked)


def test_run_json_is_the_run_with_its_outcomes_and_usage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_with_fakes(monkeypatch)
    sets = [arg for o in fast_overrides(tmp_path) for arg in ("--set", o)]
    result = CliRunner().invoke(
        scientist_app, ["run", "grokking", "--preset", "debug", *sets, "--json"]
    )
    output = RunCommandOutput.model_validate_json(result.stdout)  # nothing else on stdout
    manifest = RunManifest.model_validate_json((Path(output.run_dir) / "run.json").read_text())
    assert result.exit_code == output.exit_code == run_exit_code(manifest)
    assert output.status == manifest.status and output.ideas == manifest.ideas
    entries = read_entries(Path(output.run_dir) / "ledger.jsonl")
    assert output.totals == sum_entries(entries) and output.totals.calls > 0


def test_run_json_reports_a_typed_error_as_a_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        scientist_app,
        ["run", str(tmp_path / "no-such-template"), "--set", f"runs_dir={tmp_path}", "--json"],
    )
    error = ErrorOutput.model_validate_json(result.stdout)
    assert result.exit_code == error.exit_code == EXIT_USAGE
    assert error.error_type == "TemplateError" and "no-such-template" in error.error


def test_batch_json_lists_each_run_and_exits_1_when_one_failed(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    result = CliRunner().invoke(
        scientist_app,
        ["batch", "--templates", missing, "--set", f"runs_dir={tmp_path}", "--json"],
    )
    output = BatchCommandOutput.model_validate_json(result.stdout)
    assert result.exit_code == output.exit_code == EXIT_FAILED
    assert [(r.task.template, r.status) for r in output.runs] == [(missing, "failed")]


def test_ideas_json_holds_ideas_json_and_the_usage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ScriptedLLM([_idea_reply("first_idea"), _idea_reply("second_idea")])
    real = Gateway.from_settings

    def scripted(settings: Settings, run_dir: Path | None = None) -> Gateway:
        return Gateway(settings, backend=script, ledger=real(settings, run_dir).ledger)

    monkeypatch.setattr(Gateway, "from_settings", staticmethod(scripted))
    out = tmp_path / "out"
    args = ["ideas", "digits", "--num-ideas", "2", "--reflections", "0", "--no-novelty"]
    result = CliRunner().invoke(
        scientist_app, [*args, "--out", str(out), "--set", f"data_dir={tmp_path}", "--json"]
    )
    assert result.exit_code == 0, result.output
    output = IdeasCommandOutput.model_validate_json(result.stdout)
    assert output.ideas_json == str(out / "ideas.json")
    assert output.result == load_ideas(out / "ideas.json")
    assert [r.idea.Name for r in output.result.ideas][-2:] == ["first_idea", "second_idea"]
    assert output.totals.calls == 2


def _idea_reply(name: str) -> str:
    return reply(name)


def test_calibrate_json_holds_rows_fit_and_files(tmp_path: Path) -> None:
    args = ["calibrate", "--data", "sample", "--reviews", str(SAMPLE_REVIEWS)]
    result = CliRunner().invoke(
        reviewer_app, [*args, "--bootstrap", "100", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    output = CalibrateCommandOutput.model_validate_json(result.stdout)
    assert output.data == str(SAMPLE_DATA)
    assert {row.name for row in output.rows} >= {"iclr_small_reviews"}
    assert all(Path(path).is_file() for path in output.files.values())
    stored = json.loads((tmp_path / "calibration.json").read_text())
    assert output.calibration.model_dump(mode="json") == stored


def test_calibrate_without_data_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSCHOLAR_REVIEW__CALIBRATION_DATA", str(tmp_path / "absent.jsonl"))
    result = CliRunner().invoke(reviewer_app, ["calibrate", "--out", str(tmp_path), "--json"])
    error = ErrorOutput.model_validate_json(result.stdout)
    assert result.exit_code == error.exit_code == EXIT_USAGE
    assert "absent.jsonl" in error.error and "--data sample" in error.error


def test_quiet_leaves_only_errors_and_verbose_turns_on_info_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSCHOLAR_DATA_DIR", str(tmp_path / "data"))
    bad = tmp_path / "bad.pdf"
    bad.write_text("not a pdf")
    args = ["review", str(bad), "--out", str(tmp_path / "out"), "--json"]
    loud = CliRunner().invoke(reviewer_app, args)
    quiet = CliRunner().invoke(reviewer_app, ["-q", *args])
    assert loud.exit_code == quiet.exit_code == EXIT_USAGE
    assert "reviewer model: local" in loud.stderr  # a note, silenced by -q
    assert "reviewer model" not in quiet.stderr
    assert "error:" in quiet.stderr  # errors are never silenced
    assert quiet.stdout == loud.stdout  # the command's own output is the same
    CliRunner().invoke(reviewer_app, ["-vv", "settings"])
    assert logging.getLogger().level == logging.DEBUG
    CliRunner().invoke(reviewer_app, ["-v", "settings"])
    assert logging.getLogger().level == logging.INFO
    CliRunner().invoke(reviewer_app, ["-q", "settings"])
    assert logging.getLogger().level == logging.ERROR
    CliRunner().invoke(reviewer_app, ["settings"])
    assert logging.getLogger().level == logging.WARNING
