"""``scientist experiment RUN_DIR --idea NAME``: reading ideas.json, running, reporting."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.runstore import RunPaths
from core.settings import Settings
from scientist.cli import app
from scientist.cli import experiments as experiments_cli
from scientist.experiments.errors import IdeaNotFoundError
from scientist.experiments.inputs import find_idea, template_of
from scientist.experiments.models import ExperimentRecord
from tests.unit.test_experiment_stage import IDEA, ScriptedEditor, value
from tests.unit.test_template_check import toy_template


def write_ideas(run: Path, data: object) -> RunPaths:
    run.mkdir(parents=True, exist_ok=True)
    (run / "ideas.json").write_text(json.dumps(data))
    return RunPaths(run)


@pytest.mark.parametrize(
    "items",
    [[IDEA.model_dump()], [{"idea": IDEA.model_dump(), "novelty": {"novel": True}}]],
)
def test_ideas_are_found_by_name_in_either_shape(tmp_path: Path, items: list[object]) -> None:
    run = write_ideas(tmp_path / "run", {"ideas": items, "template": "digits"})
    assert find_idea(run, IDEA.Name) == IDEA
    assert template_of(run, None) == "digits"
    assert template_of(run, "grokking") == "grokking"


def test_missing_or_unknown_ideas_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(IdeaNotFoundError, match="does not exist"):
        find_idea(RunPaths(tmp_path), "x")
    run = write_ideas(tmp_path / "run", {"ideas": [IDEA.model_dump()]})
    with pytest.raises(IdeaNotFoundError, match="bigger_value"):
        find_idea(run, "other")
    with pytest.raises(IdeaNotFoundError, match="--template"):
        template_of(run, None)
    bad = write_ideas(tmp_path / "bad", {"ideas": [{"Name": "x", "Title": "t"}]})
    with pytest.raises(IdeaNotFoundError, match="malformed"):
        find_idea(bad, "x")


def test_experiment_command_runs_the_stage(
    tmp_path: Path, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    template = toy_template(tmp_path / "toy")
    run = write_ideas(tmp_path / "run", {"ideas": [IDEA.model_dump()], "template": str(template)})
    editor = ScriptedEditor([value(2)])
    monkeypatch.setattr(experiments_cli, "AiderCLI", lambda cfg: editor)
    data = f"data_dir={tmp_path / 'data'}"
    result = CliRunner().invoke(
        app,
        [
            "experiment",
            str(run.root),
            "--idea",
            IDEA.Name,
            "--rounds",
            "1",
            "--set",
            data,
            "--feedback",
            "be careful",
        ],
    )
    assert result.exit_code == 0, result.output
    record = ExperimentRecord.model_validate_json(
        (run.idea(IDEA.Name).experiments_json).read_text()
    )
    assert [r.kind for r in record.rounds][:1] == ["experiment"]
    assert record.rounds[0].status == "ok"
    assert "be careful" in editor.prompts[0]
    assert "experiment rounds" in result.output


def test_experiment_command_reports_a_missing_idea(tmp_path: Path) -> None:
    run = write_ideas(tmp_path / "run", {"ideas": [], "template": "digits"})
    result = CliRunner().invoke(app, ["experiment", str(run.root), "--idea", "nope"])
    assert result.exit_code == 2
    assert "No idea named 'nope'" in result.output
