"""``scientist run`` and ``scientist resume`` exit 1 when the run failed (issue #21)."""

from __future__ import annotations

import pytest

from scientist.cli.pipeline import run_exit_code
from scientist.pipeline.models import IdeaOutcome, RunManifest


def manifest(status: str, *ideas: str) -> RunManifest:
    outcomes = [IdeaOutcome(name=f"idea_{i}", title="t", status=s) for i, s in enumerate(ideas)]  # type: ignore[arg-type]
    return RunManifest(
        template="digits", status=status, started_at="2026-12-01T00:00:00", ideas=outcomes
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("run", "code"),
    [
        (manifest("done", "done"), 0),
        (manifest("done", "failed", "done"), 0),
        (manifest("done", "failed", "stopped: budget"), 1),
        (manifest("done", "failed"), 1),
        (manifest("no_ideas"), 1),
        (manifest("failed", "done"), 1),
        (manifest("interrupted"), 1),
    ],
)
def test_a_run_exits_0_only_when_an_idea_was_done(run: RunManifest, code: int) -> None:
    assert run_exit_code(run) == code
