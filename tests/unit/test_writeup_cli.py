"""`scientist write` as a command: flags, ideas.json forms, progress, outputs, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from scientist.cli import app
from scientist.cli import writeup as writeup_cli
from tests.fixtures.writeup.fake_literature import FakeLiterature
from tests.fixtures.writeup.idea_folder import make_idea_folder
from tests.fixtures.writeup.script import WriterScript

runner = CliRunner()


class ScriptedGateway:
    """Stands in for ``Gateway`` in the CLI: ``from_settings`` gives a scripted gateway."""

    script = WriterScript()

    @classmethod
    def from_settings(cls, settings: Settings, run_dir: Path | None = None) -> Gateway:
        return Gateway(settings, backend=ScriptedLLM(cls.script))


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writeup_cli, "Gateway", ScriptedGateway)
    monkeypatch.setattr(writeup_cli, "build_literature_for", lambda settings: FakeLiterature())


def _invoke(*args: str, tmp_path: Path) -> Any:
    flags = ["--preset", "debug", "--set", f"data_dir={tmp_path / 'data'}"]
    return runner.invoke(app, ["write", *args, *flags])


def test_write_every_idea_with_weasyprint(scripted: None, tmp_path: Path) -> None:
    run = tmp_path / "run"
    folder = make_idea_folder(run)
    result = _invoke(
        str(run),
        "--pdf-engine",
        "weasyprint",
        "--page-limit",
        "5",
        "--citation-rounds",
        "0",
        tmp_path=tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert str(folder / "paper" / "paper.pdf") in result.stdout.replace("\n", "")
    assert "LLM usage" in result.stdout and "writer" in result.stdout
    record = json.loads((folder / "paper" / "writeup.json").read_text())
    assert record["page_limit"] == 5 and record["engine"] == "weasyprint"
    assert record["citation_rounds"] == 0 and record["status"] == "ok"


def test_unknown_idea_and_missing_ideas_json_are_clear_errors(
    scripted: None, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    make_idea_folder(run)
    result = _invoke(str(run), "--idea", "nope", tmp_path=tmp_path)
    assert result.exit_code == 2 and "No idea named 'nope'" in result.output
    (run / "ideas.json").unlink()
    result = _invoke(str(run), tmp_path=tmp_path)
    assert result.exit_code == 2 and "ideas.json does not exist" in result.output


def test_idea_without_experiments_is_refused(scripted: None, tmp_path: Path) -> None:
    run = tmp_path / "run"
    folder = make_idea_folder(run)
    (folder / "experiments.json").unlink()
    result = _invoke(str(run), "--idea", "layerwise_lr_grokking", tmp_path=tmp_path)
    assert result.exit_code == 2 and "run the experiments" in result.output


def test_bad_pdf_engine_is_rejected(scripted: None, tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_idea_folder(run)
    result = _invoke(str(run), "--pdf-engine", "word", tmp_path=tmp_path)
    assert result.exit_code != 0 and "latex or weasyprint" in result.output
