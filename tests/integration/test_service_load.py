"""Concurrent submissions on loopback: all accepted, all completed, none run twice.

benchmarks/service_load.py is the bigger, timed version (50 submissions, p50/p95).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401
from tests.service_support import finished, live_service, service_config, submit_pdf, wait_for

pytestmark = pytest.mark.integration
SUBMISSIONS = 16


def test_concurrent_submissions_all_complete_exactly_once(
    tmp_path: Path, pdf_fixtures: PdfFixtures
) -> None:
    config = service_config(tmp_path, max_concurrent_jobs=100, rate_limit_per_minute=1000)
    with live_service(config, workers=3) as live:

        def submit(index: int) -> tuple[int, str]:
            user = "alice" if index % 2 else "bob"
            with live.client(user) as client:
                response = submit_pdf(client, pdf_fixtures.clean, num_reviewers=1)
                return response.status_code, response.json().get("id", "")

        with ThreadPoolExecutor(max_workers=SUBMISSIONS) as pool:
            results = list(pool.map(submit, range(SUBMISSIONS)))
        assert [status for status, _ in results] == [202] * SUBMISSIONS
        ids = [job_id for _, job_id in results]
        assert len(set(ids)) == SUBMISSIONS
        for index, job_id in enumerate(ids):
            with live.client("alice" if index % 2 else "bob") as client:
                body = wait_for(client, f"/v1/reviews/{job_id}", finished, timeout=120)
                assert body["status"] == "done", body
        for job_id in ids:
            row = live.store.get(job_id)
            assert row is not None and row.completions == 1 and row.attempts == 1
            events = [e.event for e in live.store.log(job_id)]
            assert events == ["queued", "claimed", "completed"]
        workers = {live.store.get(i).worker for i in ids}  # type: ignore[union-attr]
        assert len(workers) >= 2, "the jobs were shared between workers"
