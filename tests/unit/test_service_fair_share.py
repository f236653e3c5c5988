"""Fair share between users and backpressure on a full queue (issue #22)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.errors import QueueFullError
from service.store import JobStore
from tests.clock import ManualClock
from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401
from tests.service_support import auth, service_config


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite", clock=clock)


def _queue(
    store: JobStore, clock: ManualClock, owners: str, labels: dict[str, str] | None = None
) -> dict[str, str]:
    """One job per letter (a: alice, b: bob, c: carol), a second apart, numbered on from
    ``labels``; id → label ("a1", "a2", "b1", ...)."""
    names = {"a": "alice", "b": "bob", "c": "carol"}
    labels = dict(labels or {})
    for letter in owners:
        number = 1 + sum(label[0] == letter for label in labels.values())
        labels[store.create("review", names[letter], {}).id] = f"{letter}{number}"
        clock.now += 1
    return labels


def _claim_all(store: JobStore, labels: dict[str, str]) -> list[str]:
    order = []
    while (job := store.claim("w", lease_s=60, max_attempts=3)) is not None:
        order.append(labels[job.id])
    return order


def test_claims_alternate_between_users_with_queued_jobs(
    store: JobStore, clock: ManualClock
) -> None:
    """Alice's five uploads came first; Bob's two, later, do not wait behind all of them."""
    labels = _queue(store, clock, "aaaaabb")
    assert _claim_all(store, labels) == ["a1", "b1", "a2", "b2", "a3", "a4", "a5"]


def test_the_user_with_fewer_running_jobs_goes_first_then_the_oldest_job(
    store: JobStore, clock: ManualClock
) -> None:
    labels = _queue(store, clock, "aaa")
    assert _claim_all(store, labels) == ["a1", "a2", "a3"]  # alice runs three now
    labels = _queue(store, clock, "abcc", labels)
    # bob and carol run none: bob's is older; then carol (0 running) before alice (3) ...
    assert _claim_all(store, labels)[:2] == ["b1", "c1"]


def test_finished_jobs_do_not_count_against_their_owner(
    store: JobStore, clock: ManualClock
) -> None:
    labels = _queue(store, clock, "ab")
    first = store.claim("w", lease_s=60, max_attempts=3)
    assert first is not None and first.claim is not None and labels[first.id] == "a1"
    assert store.finish(first.id, first.claim, "done", result={})
    labels = _queue(store, clock, "a", labels)
    # alice runs nothing now; bob's b1 is older than her a2
    assert _claim_all(store, labels) == ["b1", "a2"]


def test_a_job_whose_lease_ran_out_no_longer_counts_as_running(
    store: JobStore, clock: ManualClock
) -> None:
    labels = _queue(store, clock, "aab")
    assert _claim_all(store, labels)[:1] == ["a1"]  # then b1, a2: all running
    clock.now += 120  # every lease ran out: all three are claimable, nobody counts as busy
    # a1 is the oldest; once it runs again alice is busy, so bob's b1 goes before her a2
    assert _claim_all(store, labels) == ["a1", "b1", "a2"]


def test_store_refuses_a_job_when_the_queue_is_full(store: JobStore) -> None:
    store.create("review", "alice", {})
    store.create("review", "bob", {})
    with pytest.raises(QueueFullError, match="max_queued_jobs"):
        store.create("review", "carol", {}, max_queued=2)
    assert store.counts() == {"queued": 2}
    claimed = store.claim("w", lease_s=60, max_attempts=3)  # running jobs are not queued
    assert claimed is not None
    assert store.create("review", "carol", {}, max_queued=2).status == "queued"


def _submit(client: TestClient, pdf: Path) -> Any:  # the TestClient's response
    with pdf.open("rb") as handle:
        return client.post("/v1/reviews", files={"file": (pdf.name, handle, "application/pdf")})


def test_a_full_queue_answers_429_with_retry_after_and_stores_nothing(
    tmp_path: Path, pdf_fixtures: PdfFixtures
) -> None:
    app = create_app(service_config(tmp_path, max_queued_jobs=2))
    state = app.state.service
    for owner in ("bob", "bob"):
        state.store.create("review", owner, {"filename": "x.pdf"})
    with TestClient(app, headers=auth("alice")) as client:  # closes the upload checker
        jobs_dir = state.paths.root / "jobs"
        before = sorted(jobs_dir.iterdir()) if jobs_dir.is_dir() else []

        refused = _submit(client, pdf_fixtures.clean)
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "30"
        assert refused.json()["error"] == "queue_full"
        assert "max_queued_jobs" in refused.json()["detail"]
        run = client.post("/v1/runs", json={"template": "nanoGPT_lite"})
        assert run.status_code == 429 and run.json()["error"] == "queue_full"
        assert state.store.counts() == {"queued": 2}
        assert state.store.jobs_of("alice") == []
        assert (sorted(jobs_dir.iterdir()) if jobs_dir.is_dir() else []) == before

        assert state.store.claim("w", lease_s=60, max_attempts=3) is not None  # one drains
        accepted = _submit(client, pdf_fixtures.clean)
        assert accepted.status_code == 202, accepted.text
