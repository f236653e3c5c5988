"""Worker processes killed mid-job: the job resumes from its checkpoint and completes once."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.store import JobRecord, JobStore
from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401
from tests.service_support import (
    LiveServer,
    job_row,
    service_config,
    spawn_worker,
    submit_pdf,
)

pytestmark = pytest.mark.integration
CALLS_PER_JOB = 5  # 2 reviewers x (review + 1 reflection) + meta-review


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(service_config(tmp_path, cache=True, max_concurrent_jobs=10)).start()
    yield live
    live.stop()


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes started by a test, killed at its end whatever happens."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _wait_row(
    store: JobStore, job_id: str, ok: Callable[[JobRecord], bool], timeout: float = 90
) -> JobRecord:
    deadline = time.monotonic() + timeout
    while True:
        job = job_row(store, job_id)
        if ok(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; job is {job.model_dump()}")
        time.sleep(0.05)


def _calls(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_sigkill_mid_review_then_restart_completes_every_job_once(
    server: LiveServer,
    pdf_fixtures: PdfFixtures,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    config = service_config(tmp_path, cache=True, max_concurrent_jobs=10)
    papers = [pdf_fixtures.clean, pdf_fixtures.injected, pdf_fixtures.many_pages]
    with server.client() as client:
        ids = [
            submit_pdf(client, pdf, num_reviewers=2, num_reflections=1).json()["id"]
            for pdf in papers
        ]
    first = ids[0]
    calls_a, calls_b = tmp_path / "calls_a.log", tmp_path / "calls_b.log"
    doomed = spawn_worker(config, tmp_path, delay_s=0.5, calls_log=calls_a, name="doomed")
    procs.append(doomed)
    # Kill once reviewer 1 is done (its branch is checkpointed) and reviewer 2 is under way.
    _wait_row(
        server.store, first, lambda j: j.progress.get("reviewers", {}).get("0", {}).get("done")
    )
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    stale = job_row(server.store, first)
    assert stale.status == "running" and stale.worker == "doomed" and stale.completions == 0
    assert all(job_row(server.store, i).status == "queued" for i in ids[1:])

    procs.append(spawn_worker(config, tmp_path, calls_log=calls_b, name="rescuer"))
    jobs = [_wait_row(server.store, i, lambda j: j.status in ("done", "failed")) for i in ids]

    assert [j.status for j in jobs] == ["done"] * 3, [j.error for j in jobs]
    assert [j.completions for j in jobs] == [1, 1, 1]
    assert [j.attempts for j in jobs] == [2, 1, 1]
    assert jobs[0].worker == "rescuer"
    events = [e.event for e in server.store.log(first)]
    assert events == ["queued", "claimed", "worker_gone", "claimed", "completed"]
    for job_id in ids:
        log = [e.event for e in server.store.log(job_id)]
        assert log.count("completed") == 1
    result = jobs[0].result or {}
    assert result["resumed"] is True and len(result["review"]["reviewers"]) == 2
    assert not (jobs[1].result or {})["resumed"]
    # Resumed from the checkpoint: the paper was not read again and the calls the killed
    # worker had made (reviewer 1's review and reflection) came from the response cache.
    assert _calls(calls_a) >= 2
    assert _calls(calls_b) <= 3 * CALLS_PER_JOB - 2, (_calls(calls_a), _calls(calls_b))


def test_sigterm_hands_the_job_back_and_the_next_worker_finishes_it(
    server: LiveServer,
    pdf_fixtures: PdfFixtures,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    config = service_config(tmp_path, cache=True)
    with server.client() as client:
        job_id = submit_pdf(client, pdf_fixtures.clean, num_reviewers=1).json()["id"]
    leaving = spawn_worker(config, tmp_path, delay_s=1.0, name="leaving")
    procs.append(leaving)
    _wait_row(server.store, job_id, lambda j: j.status == "running")
    time.sleep(0.3)
    leaving.send_signal(signal.SIGTERM)
    assert leaving.wait(timeout=30) == 0
    released = job_row(server.store, job_id)
    assert released.status == "queued" and released.claim is None
    procs.append(spawn_worker(config, tmp_path, name="next"))
    done = _wait_row(server.store, job_id, lambda j: j.status == "done")
    assert done.completions == 1 and done.attempts == 2
    assert [e.event for e in server.store.log(job_id)] == [
        "queued",
        "claimed",
        "released",
        "claimed",
        "completed",
    ]


def test_sigkill_with_n_jobs_in_flight_resumes_each_and_completes_it_once(
    server: LiveServer,
    pdf_fixtures: PdfFixtures,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    config = service_config(tmp_path, cache=True, max_concurrent_jobs=10, jobs_per_worker=3)
    papers = [pdf_fixtures.clean, pdf_fixtures.injected, pdf_fixtures.many_pages]
    with server.client() as client:
        ids = [
            submit_pdf(client, pdf, num_reviewers=2, num_reflections=1).json()["id"]
            for pdf in papers
        ]
    doomed = spawn_worker(config, tmp_path, delay_s=0.5, name="wide-doomed")
    procs.append(doomed)
    for job_id in ids:  # all three under way in the one process at once
        _wait_row(server.store, job_id, lambda j: j.status == "running" and bool(j.progress))
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    stale = [job_row(server.store, i) for i in ids]
    assert {(j.status, j.worker, j.completions) for j in stale} == {("running", "wide-doomed", 0)}

    procs.append(spawn_worker(config, tmp_path, name="wide-rescuer"))
    jobs = [_wait_row(server.store, i, lambda j: j.status in ("done", "failed")) for i in ids]

    assert [j.status for j in jobs] == ["done"] * 3, [j.error for j in jobs]
    assert [(j.completions, j.attempts, j.worker) for j in jobs] == [(1, 2, "wide-rescuer")] * 3
    for job_id in ids:
        events = [e.event for e in server.store.log(job_id)]
        assert events == ["queued", "claimed", "worker_gone", "claimed", "completed"]
    # "resumed" is not asserted: a job killed before its first checkpoint starts over.


def test_sigterm_hands_every_job_in_flight_back(
    server: LiveServer,
    pdf_fixtures: PdfFixtures,
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    config = service_config(tmp_path, cache=True, max_concurrent_jobs=10, jobs_per_worker=2)
    with server.client() as client:
        ids = [
            submit_pdf(client, pdf, num_reviewers=1).json()["id"]
            for pdf in (pdf_fixtures.clean, pdf_fixtures.injected)
        ]
    leaving = spawn_worker(config, tmp_path, delay_s=1.0, name="wide-leaving")
    procs.append(leaving)
    for job_id in ids:
        _wait_row(server.store, job_id, lambda j: j.status == "running")
    leaving.send_signal(signal.SIGTERM)
    assert leaving.wait(timeout=30) == 0
    for job_id in ids:
        released = job_row(server.store, job_id)
        assert released.status == "queued" and released.claim is None
        assert [e.event for e in server.store.log(job_id)][-1] == "released"
