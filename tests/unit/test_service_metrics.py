"""``GET /metrics`` (Prometheus text) and the worker's JSON logs (issue #22).

Jobs run through a real :class:`~service.worker.Worker` on a real SQLite store; their
handler writes ledger rows the way the gateway does, so the counters can be checked
against the ledgers themselves.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.errors import AutoscholarError
from gateway.ledger import Ledger, read_entries
from gateway.types import LedgerEntry
from service.app import create_app
from service.jobs import JobContext
from service.logs import JsonFormatter
from service.models import JobStatus
from service.store import JobStore
from service.usage import ModelUsage, ledger_path
from service.worker import Worker
from tests.clock import ManualClock
from tests.service_support import auth, service_config

MODELS = ("openai/gpt-4o", "anthropic/claude-sonnet-4-5")


def _entry(model: str, n: int, **extra: Any) -> LedgerEntry:
    fields: dict[str, Any] = {
        "role": "reviewer",
        "model": model,
        "prompt_tokens": 1000 + n,
        "completion_tokens": 200 + n,
        "cost_usd": 0.01 * (n + 1),
        "latency_s": 2.0,
        "cache_hit": False,
    }
    return LedgerEntry(**{**fields, **extra})


class LedgerWriter:
    """Writes a few ledger rows per job, as the gateway would, then succeeds or fails."""

    kind = "review"

    def run(self, ctx: JobContext) -> dict[str, Any]:
        ledger = Ledger(ledger_path(ctx.paths, ctx.job.id, "review"))
        n = int(ctx.job.params["n"])
        ledger.record(_entry(MODELS[0], n, rate_limited=n, backoff_wait_s=0.5 * n))
        ledger.record(_entry(MODELS[1], n))
        ledger.record(_entry(MODELS[0], n, cache_hit=True))  # counted as a call, paid nothing
        logging.getLogger("tests.handler").info("reviewing %s", ctx.job.params["filename"])
        if ctx.job.params.get("fail"):
            raise AutoscholarError("the paper has no text")
        return {"n": n}


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(service_config(tmp_path))


def _run_jobs(app: FastAPI, params: list[dict[str, Any]]) -> list[str]:
    state = app.state.service
    ids = [state.store.create("review", "alice", {"filename": "p.pdf", **p}).id for p in params]
    worker = Worker(state.config, {"review": LedgerWriter()})
    while worker.run_once():
        pass
    return ids


def _scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name → labels → value, from the text format parser."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_counters_equal_the_ledgers_of_finished_jobs(app: FastAPI) -> None:
    state = app.state.service
    ids = _run_jobs(app, [{"n": 1}, {"n": 2}, {"n": 3, "fail": True}])
    state.store.create("review", "bob", {"filename": "later.pdf"})  # still queued
    entries = [e for i in ids for e in read_entries(ledger_path(state.paths, i, "review"))]
    assert len(entries) == 9

    samples = _scrape(TestClient(app))

    def by_model(name: str, **labels: str) -> dict[str, float]:
        return {
            dict(k)["model"]: v
            for k, v in samples[name].items()
            if all(dict(k).get(a) == b for a, b in labels.items())
        }

    paid = [e for e in entries if not e.cache_hit]
    for model in MODELS:
        mine = [e for e in entries if e.model == model]
        mine_paid = [e for e in paid if e.model == model]
        assert by_model("autoscholar_provider_calls_total")[model] == len(mine)
        assert by_model("autoscholar_provider_cache_hits_total")[model] == sum(
            e.cache_hit for e in mine
        )
        assert by_model("autoscholar_provider_tokens_total", type="prompt")[model] == sum(
            e.prompt_tokens for e in mine_paid
        )
        assert by_model("autoscholar_provider_tokens_total", type="completion")[model] == sum(
            e.completion_tokens for e in mine_paid
        )
        cost = by_model("autoscholar_provider_cost_usd_total")[model]
        assert cost == pytest.approx(sum(e.cost_usd for e in mine_paid))
        assert by_model("autoscholar_provider_rate_limited_total")[model] == sum(
            e.rate_limited for e in mine
        )
        wait = by_model("autoscholar_provider_backoff_wait_seconds_total")[model]
        assert wait == pytest.approx(sum(e.backoff_wait_s for e in mine))
    assert by_model("autoscholar_provider_rate_limited_total")[MODELS[0]] == 6  # 1 + 2 + 3

    assert samples["autoscholar_queue_depth"][()] == 1
    jobs = {
        dict(k)["state"]: v
        for k, v in samples["autoscholar_jobs"].items()
        if ("kind", "review") in k
    }
    assert jobs == {"queued": 1, "running": 0, "done": 2, "failed": 1, "cancelled": 0}
    done = [state.store.get(i) for i in ids[:2]]
    latencies = [j.finished_at - j.created_at for j in done if j and j.finished_at]
    assert samples["autoscholar_review_latency_seconds_count"][()] == 2
    total = samples["autoscholar_review_latency_seconds_sum"][()]
    assert total == pytest.approx(sum(latencies))
    buckets = samples["autoscholar_review_latency_seconds_bucket"]
    assert buckets[(("le", "30.0"),)] == 2 and buckets[(("le", "+Inf"),)] == 2


def test_review_latency_histogram_buckets_submission_to_completion(app: FastAPI) -> None:
    clock = ManualClock()
    store = JobStore(app.state.service.paths.database, clock=clock)
    jobs = [store.create("review", "alice", {}) for _ in range(4)]
    store.create("run", "alice", {})  # runs are not reviews
    for job, seconds in zip(jobs, (45.0, 100.0, 5000.0, 10.0), strict=True):
        claimed = store.claim("w", lease_s=1e6, max_attempts=3)
        assert claimed is not None and claimed.claim is not None and claimed.id == job.id
        clock.now = jobs[0].created_at + seconds
        status: JobStatus = "failed" if seconds == 10.0 else "done"  # only done are timed
        assert store.finish(job.id, claimed.claim, status, result={})
    samples = _scrape(TestClient(app))
    buckets = {
        dict(k)["le"]: v for k, v in samples["autoscholar_review_latency_seconds_bucket"].items()
    }
    assert buckets == {
        "30.0": 0, "60.0": 1, "120.0": 2, "300.0": 2, "600.0": 2, "1200.0": 2,
        "1800.0": 2, "3600.0": 2, "7200.0": 3, "+Inf": 3,
    }  # fmt: skip
    assert samples["autoscholar_review_latency_seconds_sum"][()] == pytest.approx(5145.0)


def test_a_scrape_counts_each_job_once_and_survives_a_new_api(app: FastAPI, tmp_path: Path) -> None:
    """The sums live in the store: a second scrape and a fresh API process agree."""
    _run_jobs(app, [{"n": 1}])
    first = _scrape(TestClient(app))
    again = _scrape(TestClient(app))
    fresh = _scrape(TestClient(create_app(service_config(tmp_path))))
    calls = "autoscholar_provider_calls_total"
    assert first[calls] == again[calls] == fresh[calls]
    assert sum(first[calls].values()) == 3


def test_a_worker_that_lost_its_claim_records_no_usage(app: FastAPI) -> None:
    state = app.state.service
    job = state.store.create("review", "alice", {})
    claimed = state.store.claim("w1", lease_s=30, max_attempts=3)
    assert claimed is not None and claimed.id == job.id
    row = ModelUsage(model="m", calls=5)
    assert not state.store.finish(job.id, "not-the-claim", "done", result={}, usage=[row])
    assert state.store.usage_of(job.id) == []
    assert claimed.claim is not None
    assert state.store.finish(job.id, claimed.claim, "done", result={}, usage=[row])
    assert state.store.usage_of(job.id) == [row]


def test_metrics_open_by_default_and_guarded_by_metrics_token(tmp_path: Path) -> None:
    open_app = create_app(service_config(tmp_path / "open"))
    schema = TestClient(open_app).get("/openapi.json").json()
    assert "security" not in schema["paths"]["/metrics"]["get"]
    assert TestClient(open_app).get("/metrics").status_code == 200

    guarded = create_app(service_config(tmp_path / "guarded", metrics_token="scrape-3c1f"))
    client = TestClient(guarded)
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/metrics"]["get"]["security"]
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert client.get("/metrics", headers=auth("alice")).status_code == 401  # a user's token
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-3c1f"})
    assert ok.status_code == 200 and "autoscholar_queue_depth" in ok.text


def test_worker_json_logs_carry_the_job_id(app: FastAPI) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        [job_id] = _run_jobs(app, [{"n": 1}])
        logging.getLogger("tests.after").info("no job now")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {"ts", "level", "logger", "message", "process", "thread", "job_id"} <= set(lines[0])
    handler_line = next(x for x in lines if x["logger"] == "tests.handler")
    assert handler_line["job_id"] == job_id and handler_line["message"] == "reviewing p.pdf"
    worker_lines = [x for x in lines if x["logger"] == "service.worker"]
    assert worker_lines and all(x["job_id"] == job_id for x in worker_lines)
    assert lines[-1]["logger"] == "tests.after" and lines[-1]["job_id"] is None
