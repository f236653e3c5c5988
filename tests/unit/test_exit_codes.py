"""The documented exit codes of both command lines (issue #21; README, "Exit codes")."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core.isolation import IsolationUnavailableError
from gateway.errors import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_USAGE,
    AuthenticationFailedError,
    AutoscholarError,
    BudgetExceededError,
    SettingsError,
    StructuredOutputError,
    UnknownModelError,
)
from reviewer.cli import app as reviewer_app
from reviewer.cli import review_exit_code
from reviewer.review.errors import NotAPdfError
from scientist.cli import app as scientist_app
from scientist.errors import TemplateError
from scientist.experiments.errors import AiderNotFoundError
from scientist.writeup.errors import PaperCompileError, ToolchainMissingError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SettingsError("x"), EXIT_CONFIG),
        (AuthenticationFailedError("x"), EXIT_CONFIG),
        (UnknownModelError("x"), EXIT_CONFIG),
        (AiderNotFoundError("x"), EXIT_CONFIG),
        (ToolchainMissingError("x"), EXIT_CONFIG),
        (IsolationUnavailableError("x"), EXIT_CONFIG),
        (NotAPdfError("paper.pdf"), EXIT_USAGE),
        (TemplateError("x"), EXIT_USAGE),
        (StructuredOutputError("x"), EXIT_FAILED),
        (BudgetExceededError("x"), EXIT_FAILED),
        (PaperCompileError("x"), EXIT_FAILED),
    ],
)
def test_each_kind_of_error_has_its_documented_code(error: AutoscholarError, code: int) -> None:
    assert error.exit_code == code


def test_a_review_exits_with_the_shared_code_only_when_every_paper_failed_alike() -> None:
    bad = NotAPdfError("a.pdf")
    assert review_exit_code([], 3) == 0
    assert review_exit_code([bad], 1) == EXIT_USAGE
    assert review_exit_code([bad, SettingsError("x")], 2) == EXIT_FAILED
    assert review_exit_code([bad], 2) == EXIT_FAILED  # one of two papers failed


def test_usage_and_configuration_errors_from_the_command_lines() -> None:
    runner = CliRunner()
    assert runner.invoke(scientist_app, ["run"]).exit_code == EXIT_USAGE  # click: no TEMPLATE
    assert runner.invoke(reviewer_app, ["settings", "--preset", "nope"]).exit_code == EXIT_CONFIG
    bad_set = runner.invoke(scientist_app, ["settings", "--set", "review.num_reviewers=0"])
    assert bad_set.exit_code == EXIT_CONFIG
