"""``--json``: one JSON document on stdout that validates against its pydantic model (#21)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reviewer.cli import ReviewCommandOutput
from reviewer.cli import app as reviewer_app
from scientist.cli import app as scientist_app
from scientist.experiments.template_check import TemplateCheck


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
