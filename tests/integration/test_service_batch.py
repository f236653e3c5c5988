"""Batch submission (issue #22): ``POST /v1/reviews:batch`` and ``reviewer review DIR --service``.

The service runs with the real app, SQLite store and upload checkers; jobs run on real
workers with the scripted reviewer model (``tests/service_support.py``).
"""

from __future__ import annotations

import csv
import json
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from reviewer.cli import app as reviewer_app
from reviewer.cli.remote import RemoteReview, run_remote
from service.app import create_app
from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401
from tests.service_support import TOKENS, auth, finished, live_service, service_config, wait_for

pytestmark = pytest.mark.integration


def _post_batch(
    client: httpx.Client | TestClient, pdfs: list[Path], **options: str
) -> Any:  # httpx's Response, or the TestClient's own
    """POST /v1/reviews:batch with each PDF in a 'files' part."""
    with ExitStack() as stack:
        files = [
            ("files", (pdf.name, stack.enter_context(pdf.open("rb")), "application/pdf"))
            for pdf in pdfs
        ]
        return client.post("/v1/reviews:batch", files=files, data=options)


def _folder(root: Path, fixtures: PdfFixtures) -> Path:
    """Two real PDFs and a text file named like one."""
    folder = root / "papers"
    folder.mkdir()
    shutil.copy(fixtures.clean, folder / "a_first.pdf")
    shutil.copy(fixtures.clean, folder / "b_second.pdf")
    shutil.copy(fixtures.not_a_pdf, folder / "c_notes.pdf")
    return folder


def test_a_batch_queues_each_pdf_and_refuses_the_one_that_is_not(
    tmp_path: Path, pdf_fixtures: PdfFixtures
) -> None:
    config = service_config(tmp_path, max_concurrent_jobs=10)
    folder = _folder(tmp_path, pdf_fixtures)
    with live_service(config, workers=1) as server, server.client() as client:
        pdfs = sorted(folder.iterdir())
        response = _post_batch(client, pdfs, num_reviewers="1", num_reflections="0")
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["accepted"], body["refused"]) == (2, 1)
        assert [item["file"] for item in body["items"]] == [p.name for p in pdfs]
        refused = body["items"][2]
        assert refused["status"] == "refused" and refused["id"] is None
        assert (refused["http_status"], refused["error"]) == (415, "not_a_pdf")
        assert "c_notes.pdf" in refused["detail"]
        assert "retry-after" not in response.headers
        for item in body["items"][:2]:
            job = wait_for(client, item["links"]["self"], finished)
            assert job["status"] == "done", job
            assert job["filename"] == item["file"]
            assert job["options"]["num_reviewers"] == 1
        assert len(server.store.jobs_of("alice", "review")) == 2  # the refusal stored nothing
        schema = client.get("/openapi.json").json()
        operation = schema["paths"]["/v1/reviews:batch"]["post"]
        [requirement] = operation["security"]
        assert schema["components"]["securitySchemes"][next(iter(requirement))]["scheme"] == (
            "bearer"
        )
        assert "files" in json.dumps(operation["requestBody"])


def test_queue_full_refuses_the_overflow_file_by_file(
    tmp_path: Path, pdf_fixtures: PdfFixtures
) -> None:
    """No workers: the queue only fills. The batch that overflows it is cut per file."""
    config = service_config(tmp_path, max_concurrent_jobs=10, max_queued_jobs=2, max_batch_files=3)
    pdfs = [pdf_fixtures.clean] * 3
    with TestClient(create_app(config)) as client:
        client.headers.update(auth())
        too_many = _post_batch(client, [pdf_fixtures.clean] * 4)
        assert too_many.status_code == 400 and too_many.json()["error"] == "too_many_files"
        assert client.app.state.service.store.queued() == 0  # type: ignore[attr-defined]
        wrong_part = [("file", ("a.pdf", pdf_fixtures.clean.read_bytes(), "application/pdf"))]
        missing = client.post("/v1/reviews:batch", files=wrong_part)
        assert missing.status_code == 422 and missing.json()["error"] == "missing_file"
        response = _post_batch(client, pdfs)
        assert response.status_code == 202, response.text
        body = response.json()
        assert [i["status"] for i in body["items"]] == ["queued", "queued", "refused"]
        overflow = body["items"][2]
        assert (overflow["http_status"], overflow["error"]) == (429, "queue_full")
        assert overflow["retry_after_s"] == int(response.headers["retry-after"]) > 0
        assert client.app.state.service.store.queued() == 2  # type: ignore[attr-defined]

        whole = _post_batch(client, pdfs[:1])
        assert whole.status_code == 429 and whole.json()["error"] == "queue_full"
        assert "retry-after" in whole.headers

        anonymous = client.post("/v1/reviews:batch", headers={"Authorization": ""})
        assert anonymous.status_code == 401


def test_the_client_resubmits_what_had_no_room_until_all_are_reviewed(
    tmp_path: Path, pdf_fixtures: PdfFixtures
) -> None:
    """One unfinished job per user: each batch is cut to one job, and the client comes back."""
    config = service_config(tmp_path, max_concurrent_jobs=1, rate_limit_per_minute=1000)
    pdfs = [pdf_fixtures.clean, pdf_fixtures.clean, pdf_fixtures.clean]
    with live_service(config, workers=1) as server:
        job = RemoteReview(
            pdfs=pdfs,
            service=server.url,
            token=TOKENS["alice"],
            options={"num_reviewers": "1", "num_reflections": "0"},
            poll_s=0.1,
        )
        papers = run_remote(job, lambda _: None)
        jobs = server.store.jobs_of("alice", "review")
    assert [p.status for p in papers] == ["reviewed"] * 3, papers
    assert sorted(p.job_id or "" for p in papers) == sorted(j.id for j in jobs)
    assert all(j.status == "done" for j in jobs) and len(jobs) == 3


def test_reviewer_review_dir_on_the_service_writes_the_export(
    tmp_path: Path, pdf_fixtures: PdfFixtures
) -> None:
    config = service_config(tmp_path, max_concurrent_jobs=10)
    folder = _folder(tmp_path, pdf_fixtures)
    out = tmp_path / "out"
    with live_service(config, workers=1) as server:
        result = CliRunner().invoke(
            reviewer_app,
            ["review", str(folder), "--service", server.url, "--out", str(out), "--json"],
            env={"AUTOSCHOLAR_SERVICE_TOKEN": TOKENS["alice"]},
        )
        jobs = {j.id: j for j in server.store.jobs_of("alice", "review")}
    assert result.exit_code == 1, result.output  # one file refused, two reviewed
    document = json.loads(result.stdout)
    assert document["exit_code"] == 1
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    with (out / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(p["file"]).name for p in lines] == ["a_first.pdf", "b_second.pdf", "c_notes.pdf"]
    assert [r["job_id"] for r in rows] == [p["job_id"] or "" for p in lines]
    assert lines == document["papers"]
    for line in lines[:2]:
        job = jobs[line["job_id"]]
        assert job.status == "done" and job.params["filename"] == Path(line["file"]).name
        assert line["status"] == "reviewed" and line["decision"] in ("accept", "reject")
        assert line["overall_mean"] is not None
        review = json.loads((server.state.paths.review_dir(job.id) / "review.json").read_text())
        assert line["decision"] == review["decision"]["decision"]
        assert line["overall_mean"] == review["scores"]["Overall"]["mean"]
    assert lines[2]["status"] == "refused" and lines[2]["job_id"] is None
    assert "not_a_pdf" in lines[2]["error"]
    assert len(jobs) == 2


def test_reviewer_review_on_the_service_needs_a_token_and_a_reachable_service(
    tmp_path: Path, pdf_fixtures: PdfFixtures
) -> None:
    folder = _folder(tmp_path, pdf_fixtures)
    runner = CliRunner()
    no_token = runner.invoke(
        reviewer_app, ["review", str(folder), "--service", "http://127.0.0.1:9"], env={}
    )
    assert no_token.exit_code == 2
    local_flag = runner.invoke(
        reviewer_app,
        ["review", str(folder), "--service", "http://127.0.0.1:9", "--model", "openai/x"],
        env={"AUTOSCHOLAR_SERVICE_TOKEN": "t"},
    )
    assert local_flag.exit_code == 2 and "local reviews only" in local_flag.output
    config = service_config(tmp_path / "svc")
    with live_service(config, workers=0) as server:
        refused = runner.invoke(
            reviewer_app,
            ["review", str(folder), "--service", server.url, "--out", str(tmp_path / "o")],
            env={"AUTOSCHOLAR_SERVICE_TOKEN": "wrong-token"},
        )
    assert refused.exit_code == 3 and "refused the token" in refused.output
