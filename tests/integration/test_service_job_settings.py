"""A run job's settings through the real HTTP API: refusals are 422s that queue nothing,
and a lowered budget reaches the worker's pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.runstore import RunPaths
from core.settings import Settings
from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401
from tests.service_support import (
    FakePipeline,
    FakeRunSummary,
    finished,
    live_service,
    service_config,
    wait_for,
)

pytestmark = pytest.mark.integration


@dataclass
class RecordingPipeline(FakePipeline):
    """The fake pipeline, keeping the settings each run was launched with."""

    seen: list[Settings] = field(default_factory=list)

    def __call__(
        self,
        settings: Settings,
        template: str,
        run_paths: RunPaths,
        *,
        on_event: Callable[[Any], None] | None = None,
    ) -> FakeRunSummary:
        self.seen.append(settings)
        return super().__call__(settings, template, run_paths, on_event=on_event)


def _refused(client: httpx.Client, settings: dict[str, Any]) -> str:
    response = client.post("/v1/runs", json={"template": "toy", "settings": settings})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_settings", body
    return str(body["detail"])


def test_run_settings_are_bounded_over_http(tmp_path: Path, pdf_fixtures: PdfFixtures) -> None:
    config = service_config(tmp_path, max_concurrent_jobs=10, rate_limit_per_minute=100)
    config.overrides["budget"] = {"max_cost_usd": 5.0}
    pipeline = RecordingPipeline(pdf_fixtures.clean)
    with (
        live_service(config, launcher=pipeline, templates=["toy"]) as live,
        live.client() as client,
    ):
        uncapped = _refused(client, {"budget": {"max_cost_usd": None}})
        assert "budget.max_cost_usd" in uncapped and "0 to 5" in uncapped
        slow = _refused(client, {"experiments.run_timeout_s": 1e9})
        assert "experiments.run_timeout_s" in slow and "10 to 300" in slow
        assert "may not set review.max_pages" in _refused(client, {"review.max_pages": 10**6})
        assert "llm.models.writer" in _refused(client, {"llm.models.writer": "openai/gpt-4o"})
        assert live.store.jobs_of("alice", "run") == []  # nothing was queued

        lower = {"budget.max_cost_usd": 1.5, "experiments": {"run_timeout_s": 60}}
        response = client.post("/v1/runs", json={"template": "toy", "settings": lower})
        assert response.status_code == 202, response.text
        body = wait_for(client, f"/v1/runs/{response.json()['id']}", finished)
        assert body["status"] == "done", body
    [settings] = pipeline.seen
    assert settings.budget.max_cost_usd == 1.5 and settings.experiments.run_timeout_s == 60
