from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reviewer.cli import app as reviewer_app
from scientist.cli import app as scientist_app

runner = CliRunner()


def test_scientist_settings_prints_effective_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSCHOLAR_LLM__MODELS__IDEAS", "openai/gpt-4o")
    result = runner.invoke(
        scientist_app, ["settings", "--preset", "debug", "--set", "review.num_reviewers=4"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["preset"] == "debug"
    assert data["review"]["num_reviewers"] == 4
    assert data["llm"]["models"]["ideas"] == "openai/gpt-4o"


def test_bad_preset_exits_3_with_the_choices() -> None:
    """A configuration error: exit code 3 (``gateway.errors.EXIT_CONFIG``)."""
    result = runner.invoke(reviewer_app, ["settings", "--preset", "nope"])
    assert result.exit_code == 3
    assert "debug, default" in result.output
