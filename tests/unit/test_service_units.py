"""Small pieces of the service: tokens, the rate limiter, job settings, charts, progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from core.settings import flatten
from gateway.errors import SettingsError
from reviewer.review.errors import EncryptedPdfError, NotAPdfError, TooManyPagesError
from service.auth import user_for_token
from service.charts import spread_svg
from service.config import ServiceConfig, check_job_overrides
from service.errors import ApiError
from service.jobs import RunProgress, as_json
from service.limits import SlidingWindowLimiter
from service.submit import pdf_refusal


def test_tokens_map_to_users_and_unknown_tokens_to_none() -> None:
    tokens = {"alice": SecretStr("a" * 20), "bob": SecretStr("b" * 20)}
    assert user_for_token("a" * 20, tokens) == "alice"
    assert user_for_token("b" * 20, tokens) == "bob"
    assert user_for_token("a" * 19, tokens) is None
    assert user_for_token("", tokens) is None


def test_sliding_window_allows_limit_per_window_and_says_when_to_retry() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(2, window_s=60, clock=lambda: now[0])
    assert limiter.acquire("alice") is None
    now[0] = 10
    assert limiter.acquire("alice") is None
    now[0] = 20
    assert limiter.acquire("alice") == pytest.approx(40)
    assert limiter.acquire("bob") is None  # per token
    with pytest.raises(ApiError) as caught:
        limiter.check("alice")
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "40"
    now[0] = 60.5  # the first request left the window
    assert limiter.acquire("alice") is None


def test_job_overrides_allow_stage_knobs_and_refuse_paths_and_executables() -> None:
    assert check_job_overrides({"ideas.num_ideas": 2, "review": {"num_reviewers": 1}}) == {
        "ideas": {"num_ideas": 2},
        "review": {"num_reviewers": 1},
    }
    for bad in (
        {"experiments.aider_bin": "/bin/sh"},
        {"review": {"calibration_path": "/etc/passwd"}},
        {"data_dir": "/tmp"},
        {"llm": {"api_bases": {"x": "http://evil"}}},
        {"service.tokens": {}},
    ):
        with pytest.raises(SettingsError, match="may not set"):
            check_job_overrides(bad)


def test_job_settings_merge_operator_overrides_under_the_jobs(tmp_path: Path) -> None:
    config = ServiceConfig("debug", {"data_dir": str(tmp_path), "review": {"num_reviewers": 3}})
    settings = config.for_job(None, {"review.num_reflections": 0})
    assert settings.data_dir == tmp_path
    assert settings.review.num_reviewers == 3 and settings.review.num_reflections == 0
    assert config.for_job("quality", {}).preset == "quality"
    with pytest.raises(SettingsError, match="Unknown preset"):
        config.for_job("/etc/passwd", {})
    with pytest.raises(SettingsError):
        config.for_job(None, {"review.num_reviewers": 99})


def test_flatten_accepts_nested_and_dotted_keys() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e.f": 3}) == {"a.b": 1, "a.c.d": 2, "e.f": 3}


def test_pdf_refusals_name_the_upload_and_pick_a_status() -> None:
    assert pdf_refusal(NotAPdfError("/srv/x/paper.pdf"), "mine.pdf").status == 415
    too_long = pdf_refusal(TooManyPagesError("/srv/x", "60 pages, the limit is 50"), "mine.pdf")
    assert too_long.status == 422 and too_long.code == "too_many_pages"
    assert too_long.detail.startswith("mine.pdf: too many pages (60 pages")
    assert "/srv" not in too_long.detail
    assert pdf_refusal(EncryptedPdfError("/srv/x"), "m.pdf").code == "encrypted_pdf"


def test_spread_chart_has_a_dot_per_reviewer_and_escapes_nothing_unsafe() -> None:
    svg = str(spread_svg("Overall", [(0, 3), (1, 7)], 5.0))
    assert svg.startswith("<svg") and svg.count("<circle") == 2
    assert "reviewer 2: 7" in svg and "mean 5.00" in svg


def test_run_progress_folds_events_of_any_shape() -> None:
    seen: list[dict[str, Any]] = []
    progress = RunProgress(seen.append)
    progress.on_event({"stage": "ideas", "status": "started"})
    progress.on_event({"stage": "experiments", "idea": "a", "status": "round 1"})
    progress.on_event("plain text")
    assert seen[-1]["ideas"] == {"a": "experiments: round 1"}
    assert seen[-1]["stage"] == "plain text"
    assert as_json({"p": Path("/x"), "t": (1, 2)}) == {"p": "/x", "t": [1, 2]}


def test_serve_registers_with_its_flags_and_workers_get_the_servers_settings() -> None:
    import sys

    import typer
    from typer.testing import CliRunner

    from service.cli import register, worker_command

    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """A root so that serve stays a subcommand."""

    register(app)
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--host", "--port", "--workers", "--preset", "--set"):
        assert flag in result.output
    assert worker_command("debug", ["review.num_reviewers=1"], "worker-0") == [
        sys.executable,
        "-m",
        "service.worker",
        "--name",
        "worker-0",
        "--preset",
        "debug",
        "--set",
        "review.num_reviewers=1",
    ]
