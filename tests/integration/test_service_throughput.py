"""Many reviews per worker against a provider over real HTTP: a 429 storm slows them, fails
none, and the shared backoff shows in the job ledgers (issue #22)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.settings import deep_merge
from gateway.ledger import read_entries
from service.config import ServiceConfig
from service.jobs import default_gateway
from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401
from tests.provider_fakes import ProviderFakes, RateLimitStorm
from tests.service_support import finished, live_service, service_config, submit_pdf, wait_for

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, fakes: ProviderFakes, **service: Any) -> ServiceConfig:
    base = service_config(tmp_path, max_concurrent_jobs=10, **service)
    llm = {"max_inflight_per_model": 4, "backoff_initial_s": 0.2, "backoff_max_s": 1.0}
    overrides = deep_merge(deep_merge(base.overrides, fakes.overrides()), {"llm": llm})
    return ServiceConfig(base.preset, overrides)


def test_a_429_storm_slows_concurrent_reviews_without_failing_them(
    provider_fakes: ProviderFakes, pdf_fixtures: PdfFixtures, tmp_path: Path
) -> None:
    provider_fakes.storm = RateLimitStorm(duration_s=1.5, retry_after_s=0.5)
    config = _config(tmp_path, provider_fakes, jobs_per_worker=3)
    papers = [pdf_fixtures.clean, pdf_fixtures.injected, pdf_fixtures.many_pages]
    with live_service(config, workers=1, gateway_factory=default_gateway) as server:
        with server.client() as client:
            ids = [
                submit_pdf(client, pdf, num_reviewers=2, num_reflections=1).json()["id"]
                for pdf in papers
            ]
            bodies = [wait_for(client, f"/v1/reviews/{i}", finished, 120) for i in ids]
            scraped = client.get("/metrics").text
        jobs = [server.store.get(i) for i in ids]

    assert [b["status"] for b in bodies] == ["done"] * 3, [b.get("error") for b in bodies]
    assert all(j is not None and j.completions == 1 for j in jobs)
    entries = [e for i in ids for e in read_entries(server.state.paths.job_dir(i) / "ledger.jsonl")]
    storm = provider_fakes.storm
    assert storm.refused > 0 and storm.served == len(entries)
    # Every 429 the provider sent is on the ledger of the call that got it.
    assert sum(e.rate_limited for e in entries) == storm.refused
    # Each refused call waited at the shared gate, at least Retry-After per 429 it got.
    refused = [e for e in entries if e.rate_limited]
    assert refused and all(e.backoff_wait_s >= 0.4 * e.rate_limited for e in refused)
    assert all(e.attempts == 1 for e in entries)
    # ... and the shared backoff is visible in /metrics, equal to the ledgers.
    metrics: dict[str, float] = {}  # summed over models
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            metrics[sample.name] = metrics.get(sample.name, 0.0) + sample.value
    assert metrics["autoscholar_provider_rate_limited_total"] == storm.refused
    assert metrics["autoscholar_provider_calls_total"] == len(entries)
    waited = metrics["autoscholar_provider_backoff_wait_seconds_total"]
    assert waited == pytest.approx(sum(e.backoff_wait_s for e in entries)) and waited > 0
