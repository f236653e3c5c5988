"""``--version`` on both command lines (issue #21)."""

from __future__ import annotations

import importlib.metadata

import pytest
import typer
from typer.testing import CliRunner

from reviewer.cli import app as reviewer_app
from scientist.cli import app as scientist_app


@pytest.mark.parametrize(
    ("command", "app"), [("scientist", scientist_app), ("reviewer", reviewer_app)]
)
def test_version_prints_the_installed_version_and_exits_0(command: str, app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    version = importlib.metadata.version("autoscholar")
    assert result.output == f"{command} {version} (autoscholar)\n"
