"""The HTTP API under a real uvicorn on 127.0.0.1 with a real SQLite file and real workers.

The workers run the real review graph with the scripted reviewer model; runs use a fake
pipeline launcher.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from graphs.review import review_alone as review
from reviewer.review.reviewing import ReviewDeps
from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401
from tests.service_support import (
    TOKENS,
    FakePipeline,
    LiveServer,
    finished,
    live_service,
    service_config,
    submit_pdf,
    wait_for,
)
from tests.unit.review_script import obedient_reviewer

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """A live service with one scripted worker; PDFs of at most 4 pages."""
    config = service_config(tmp_path, max_concurrent_jobs=10, rate_limit_per_minute=100)
    config.overrides["review"] = {"max_pages": 4}
    with live_service(config, workers=1) as live:
        yield live


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code, body
    assert len(body["detail"]) > 20
    return str(body["detail"])


def test_submit_poll_and_fetch_a_review(server: LiveServer, pdf_fixtures: PdfFixtures) -> None:
    with server.client() as client:
        response = submit_pdf(client, pdf_fixtures.clean, num_reviewers=2, num_reflections=1)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert response.headers["location"] == f"/v1/reviews/{job_id}"
        body = wait_for(client, f"/v1/reviews/{job_id}", finished)
        assert body["status"] == "done", body
        assert body["progress"]["fraction"] == 1.0
        assert body["attempts"] == 1 and body["filename"] == "clean.pdf"
        report = body["review"]
        assert len(report["reviewers"]) == 2
        assert report["scores"]["Overall"]["mean"] == 4
        assert report["paper"]["source"] == "clean.pdf"
        assert set(body["links"]["files"]) == {"md", "pdf", "html", "json"}
        md = client.get(f"/v1/reviews/{job_id}/report.md")
        assert md.status_code == 200 and "Overall" in md.text
        assert md.headers["content-type"].startswith("text/markdown")
        pdf = client.get(f"/v1/reviews/{job_id}/report.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        html = client.get(f"/v1/reviews/{job_id}/report.html")
        assert "default-src 'none'" in html.headers["content-security-policy"]
        listed = client.get("/v1/reviews").json()["jobs"]
        assert [j["id"] for j in listed] == [job_id]
    row = server.store.get(job_id)
    assert row is not None and row.completions == 1


def test_auth_is_required_and_jobs_are_private(
    server: LiveServer, pdf_fixtures: PdfFixtures
) -> None:
    with server.client() as alice:
        job_id = submit_pdf(alice, pdf_fixtures.clean).json()["id"]
        wait_for(alice, f"/v1/reviews/{job_id}", finished)
    with server.client(user=None) as anonymous:
        missing = anonymous.get(f"/v1/reviews/{job_id}")
        assert "Bearer" in _error(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.get("/v1/jobs", headers={"Authorization": "Bearer not-a-token"})
        _error(wrong, 401, "unauthorized")
        _error(submit_pdf(anonymous, pdf_fixtures.clean), 401, "unauthorized")
        assert anonymous.get("/healthz").json()["status"] == "ok"
        assert anonymous.get("/docs").status_code == 200
        paths = anonymous.get("/openapi.json").json()["paths"]
        assert {"/v1/reviews", "/v1/runs", "/v1/templates", "/healthz"} <= set(paths)
    with server.client(user="bob") as bob:
        _error(bob.get(f"/v1/reviews/{job_id}"), 404, "not_found")
        _error(bob.get(f"/v1/reviews/{job_id}/report.pdf"), 404, "not_found")
        _error(bob.post(f"/v1/reviews/{job_id}/cancel"), 404, "not_found")
        assert bob.get("/v1/jobs").json()["jobs"] == []


def test_a_scan_is_accepted_and_its_job_says_why_it_failed(
    server: LiveServer, pdf_fixtures: PdfFixtures
) -> None:
    """Upload takes only the cheap checks (issue #15); text extraction is the job's, so a PDF
    without a text layer is accepted and its job fails with the reviewer's own message."""
    with server.client() as client:
        response = submit_pdf(client, pdf_fixtures.image_only)
        assert response.status_code == 202, response.text
        body = wait_for(client, f"/v1/reviews/{response.json()['id']}", finished)
        assert body["status"] == "failed", body
        assert "no extractable text" in body["error"] and "OCR" in body["error"]
        assert body["attempts"] == 1  # not retryable: the same file fails the same way


@pytest.mark.parametrize(
    ("fixture", "status", "code", "says"),
    [
        ("not_a_pdf", 415, "not_a_pdf", "no %PDF- signature"),
        ("many_pages", 422, "too_many_pages", "5 pages, the limit is 4"),
        ("encrypted", 422, "encrypted_pdf", "remove the password"),
        ("truncated", 422, "corrupt_pdf", "download or export the PDF again"),
    ],
)
def test_bad_pdfs_are_refused_with_a_clear_message(
    server: LiveServer,
    pdf_fixtures: PdfFixtures,
    fixture: str,
    status: int,
    code: str,
    says: str,
) -> None:
    path: Path = getattr(pdf_fixtures, fixture)
    with server.client() as client:
        detail = _error(submit_pdf(client, path), status, code)
        assert says in detail and detail.startswith(path.name)
        assert client.get("/v1/jobs").json()["jobs"] == []
    assert not list((server.state.paths.root / "jobs").glob("*"))


def test_empty_wrong_type_missing_file_and_bad_options_are_refused(
    server: LiveServer, pdf_fixtures: PdfFixtures, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with server.client() as client:
        assert "empty" in _error(submit_pdf(client, empty), 422, "empty_file")
        text = client.post(
            "/v1/reviews", files={"file": ("paper.txt", b"%PDF-1.4 hello", "text/plain")}
        )
        assert "application/pdf" in _error(text, 415, "unsupported_media_type")
        no_file = client.post("/v1/reviews", data={"num_reviewers": "1"}, files={"x": b"1"})
        assert "'file'" in _error(no_file, 422, "missing_file")
        as_json = client.post("/v1/reviews", json={"file": "x"})
        assert "multipart/form-data" in _error(as_json, 415, "unsupported_media_type")
        bad = submit_pdf(client, pdf_fixtures.clean, num_reviewers=99)
        assert "num_reviewers" in _error(bad, 422, "invalid_options")
        unknown = submit_pdf(client, pdf_fixtures.clean, preset="../../etc/passwd")
        assert "Unknown preset" in _error(unknown, 422, "invalid_settings")
        extra = submit_pdf(client, pdf_fixtures.clean, model="openai/gpt-4o")
        _error(extra, 422, "invalid_options")


def test_too_large_uploads_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    config = service_config(tmp_path, max_upload_mb=0.05)
    big = b"%PDF-1.4\n" + b"0" * 200_000
    with live_service(config, workers=0) as live, live.client() as client:
        declared = client.post("/v1/reviews", files={"file": ("big.pdf", big, "application/pdf")})
        assert "0.05 MB" in _error(declared, 413, "too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            boundary = b"--b0undary\r\n"
            yield boundary + b'Content-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            yield b"Content-Type: application/pdf\r\n\r\n"
            for _ in range(20):
                yield b"1" * 10_000
            yield b"\r\n--b0undary--\r\n"

        streamed = client.post(
            "/v1/reviews",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        )
        _error(streamed, 413, "too_large")
        assert live.store.jobs_of("alice") == []


def test_rate_limit_and_unfinished_job_limit(tmp_path: Path, pdf_fixtures: PdfFixtures) -> None:
    config = service_config(tmp_path, rate_limit_per_minute=3, max_concurrent_jobs=2)
    with live_service(config, workers=0) as live, live.client() as client:
        assert submit_pdf(client, pdf_fixtures.clean).status_code == 202
        assert submit_pdf(client, pdf_fixtures.clean).status_code == 202
        full = submit_pdf(client, pdf_fixtures.clean)
        assert "2 unfinished jobs" in _error(full, 429, "too_many_jobs")
        limited = submit_pdf(client, pdf_fixtures.clean)
        assert "retry in" in _error(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        with live.client(user="bob") as bob:
            assert submit_pdf(bob, pdf_fixtures.clean).status_code == 202


def test_a_failing_job_records_its_error_and_keeps_the_upload(
    tmp_path: Path, pdf_fixtures: PdfFixtures
) -> None:
    def nonsense(settings: Settings) -> Gateway:
        return Gateway(settings, backend=ScriptedLLM(lambda request: "not json"))

    config = service_config(tmp_path)
    with live_service(config, gateway_factory=nonsense) as live, live.client() as client:
        job_id = submit_pdf(client, pdf_fixtures.clean, num_reflections=0).json()["id"]
        body = wait_for(client, f"/v1/reviews/{job_id}", finished)
        assert body["status"] == "failed"
        assert "every reviewer failed" in body["error"]
        detail = _error(client.get(f"/v1/reviews/{job_id}/report.pdf"), 404, "not_ready")
        assert "failed" in detail
        assert live.state.paths.upload(job_id).is_file()


def _review_json(settings: Settings) -> dict[str, Any]:
    deps = ReviewDeps(
        gateway=Gateway(settings, backend=ScriptedLLM(obedient_reviewer())), settings=settings
    )
    text = "A Title Of A Paper\nAbstract\n" + "We study widgets and gadgets. " * 80
    return review({"paper_text": text}, deps).model_dump(mode="json")


def test_run_endpoints_with_a_fake_pipeline(tmp_path: Path, pdf_fixtures: PdfFixtures) -> None:
    config = service_config(tmp_path)
    pipeline = FakePipeline(pdf_fixtures.clean, _review_json(config.settings()))
    with (
        live_service(config, launcher=pipeline, templates=["toy"]) as live,
        live.client() as client,
    ):
        assert client.get("/v1/templates").json() == {"templates": ["toy"]}
        response = client.post(
            "/v1/runs", json={"template": "toy", "settings": {"ideas.num_ideas": 2}}
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        body = wait_for(client, f"/v1/runs/{job_id}", finished)
        assert body["status"] == "done", body
        ideas = {i["name"]: i for i in body["ideas"]}
        assert ideas["sparse_gadgets"]["stage"] == "review: done"
        assert ideas["sparse_gadgets"]["novel"] is True and ideas["sparse_gadgets"]["has_paper"]
        assert ideas["dense_widgets"]["novelty"] == 4 and ideas["dense_widgets"]["novel"] is False
        assert body["cost_usd"] == pytest.approx(0.025) and body["llm_calls"] == 2
        assert body["summary"] == {"template": "toy", "ideas": list(ideas), "papers": 1}
        paper = client.get(f"/v1/runs/{job_id}/ideas/sparse_gadgets/paper.pdf")
        assert paper.status_code == 200 and paper.content.startswith(b"%PDF-")
        _error(client.get(f"/v1/runs/{job_id}/ideas/dense_widgets/paper.pdf"), 404, "not_ready")
        traversal = client.get(f"/v1/runs/{job_id}/ideas/..%2F..%2Fjobs.sqlite/paper.pdf")
        assert traversal.status_code == 404
        review_body = client.get(f"/v1/runs/{job_id}/ideas/sparse_gadgets/review").json()
        assert review_body["decision"]["decision"] in ("accept", "reject")
        unknown = client.post("/v1/runs", json={"template": "nope"})
        assert "toy" in _error(unknown, 422, "unknown_template")
        unsafe = client.post(
            "/v1/runs", json={"template": "toy", "settings": {"experiments.aider_bin": "/bin/sh"}}
        )
        assert "aider_bin" in _error(unsafe, 422, "invalid_settings")
        _error(client.post("/v1/runs", json={"templat": "toy"}), 422, "invalid_request")
        with live.client(user="bob") as bob:
            _error(bob.get(f"/v1/runs/{job_id}"), 404, "not_found")
    assert pipeline.calls == ["toy"]


def test_a_running_run_can_be_cancelled(tmp_path: Path, pdf_fixtures: PdfFixtures) -> None:
    import threading

    pipeline = FakePipeline(pdf_fixtures.clean, block=threading.Event())
    config = service_config(tmp_path)
    with (
        live_service(config, launcher=pipeline, templates=["toy"]) as live,
        live.client() as client,
    ):
        job_id = client.post("/v1/runs", json={"template": "toy"}).json()["id"]
        wait_for(client, f"/v1/runs/{job_id}", lambda b: b["status"] == "running")
        cancelled = client.post(f"/v1/runs/{job_id}/cancel")
        assert cancelled.status_code == 200
        body = wait_for(client, f"/v1/runs/{job_id}", finished)
        assert body["status"] == "cancelled" and body["error"] == "cancelled by its owner"
        assert body["cost_usd"] > 0  # what it spent is still shown


def test_web_pages_log_in_upload_and_show_the_review(
    server: LiveServer, pdf_fixtures: PdfFixtures
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        first = browser.get("/jobs")
        assert first.status_code == 303 and first.headers["location"].startswith("/login")
        bad = browser.post("/login", data={"token": "nope", "next": "/jobs"})
        assert bad.status_code == 401 and "Unknown token" in bad.text
        ok = browser.post("/login", data={"token": TOKENS["alice"], "next": "https://evil/"})
        assert ok.status_code == 303 and ok.headers["location"] == "/jobs"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        jobs = browser.get("/jobs")
        assert jobs.status_code == 200 and 'id="upload-form"' in jobs.text
        with pdf_fixtures.clean.open("rb") as handle:
            files = {"file": ("clean.pdf", handle, "application/pdf")}
            posted = browser.post("/jobs/review", files=files)
        assert posted.status_code == 303
        page_url = posted.headers["location"]
        job_id = page_url.rsplit("/", 1)[1]
        running = browser.get(page_url)
        assert running.status_code == 200
        wait_for(browser, f"/v1/reviews/{job_id}", finished)  # the cookie works on API GETs
        done = browser.get(page_url)
        assert 'id="scores"' in done.text and "<svg" in done.text and "Meta-review" in done.text
        assert '<h2 id="checks">Checks</h2>' in done.text and "References:" in done.text
        assert 'http-equiv="refresh"' not in done.text
        with pdf_fixtures.not_a_pdf.open("rb") as handle:
            refused = browser.post("/jobs/review", files={"file": ("x.pdf", handle, "text/plain")})
        assert refused.status_code == 415 and "upload a PDF" in refused.text
        other = browser.get("/reviews/0123")
        assert other.status_code == 404 and "not_found" in other.text
        json.loads(browser.get("/healthz").text)


def test_the_schema_declares_bearer_auth_and_a_client_driven_by_it_gets_in(
    server: LiveServer, pdf_fixtures: PdfFixtures
) -> None:
    """The OpenAPI schema says how to authenticate (the Authorize button of /docs, and what a
    generated client sends); a client that builds its header from the schema alone is let
    in, and one that sends nothing is not."""
    schema = httpx.get(f"{server.url}/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    operation = schema["paths"]["/v1/reviews"]["post"]
    [requirement] = operation["security"]
    [name] = requirement
    scheme = schemes[name]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert "security" not in schema["paths"]["/healthz"]["get"]
    header = {"Authorization": f"{scheme['scheme'].title()} {TOKENS['alice']}"}
    with pdf_fixtures.clean.open("rb") as handle:
        files = {"file": ("clean.pdf", handle, "application/pdf")}
        accepted = httpx.post(f"{server.url}/v1/reviews", files=files, headers=header)
    assert accepted.status_code == 202, accepted.text
    with pdf_fixtures.clean.open("rb") as handle:
        files = {"file": ("clean.pdf", handle, "application/pdf")}
        refused = httpx.post(f"{server.url}/v1/reviews", files=files)
    _error(refused, 401, "unauthorized")
