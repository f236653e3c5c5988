"""Bounded forms and the login rate limit, over real HTTP on 127.0.0.1 (a real uvicorn).

The login limiter runs on an injected clock, so the window passes without sleeping.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from service.submit import ServiceState
from tests.clock import ManualClock
from tests.service_support import TOKENS, LiveServer, auth, service_config

pytestmark = pytest.mark.integration

WRONG = {"token": "not-a-token", "next": "/jobs"}
RIGHT = {"token": TOKENS["alice"], "next": "/jobs"}
SOCKET_TIMEOUT_S = 10.0


@contextmanager
def serving(
    tmp_path: Path, clock: ManualClock | None = None, **service: Any
) -> Iterator[LiveServer]:
    """A live server (no workers) whose limiters run on ``clock``."""
    config = service_config(tmp_path, **service)
    state = ServiceState.build(config, clock=clock or ManualClock())
    server = LiveServer(config, state).start()
    try:
        yield server
    finally:
        server.stop()


def browser(server: LiveServer, address: str = "127.0.0.1") -> httpx.Client:
    """A client without a bearer header, connecting from ``address`` (any of 127.0.0.0/8)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=30)


def raw_exchange(server: LiveServer, head: str, body: bytes) -> bytes:
    """Send ``head`` and ``body`` on a socket, never finishing the body; the reply's head.

    A server that waits for the whole body before answering times out here.
    """
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.sendall(head.encode("ascii"))
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(body)  # the server may answer and close before taking all of it
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def test_an_oversized_login_form_is_refused_and_the_server_stays_responsive(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as server, browser(server) as client:
        big = client.post("/login", data={"token": "x" * 300_000, "next": "/jobs"})
        assert big.status_code == 413, big.text[:300]
        assert "64 KB" in big.text and "service.max_form_kb" in big.text
        assert client.get("/healthz").status_code == 200
        ok = client.post("/login", data=RIGHT)
        assert ok.status_code == 303 and ok.headers["location"] == "/jobs"


def test_a_body_declared_too_large_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        head = (
            "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 50000000\r\n\r\n"
        )
        reply = raw_exchange(server, head, b"token=abc")  # 9 of the 50 MB announced
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        with server.client() as client:
            assert client.get("/healthz").status_code == 200


def test_a_chunked_body_is_refused_once_it_passes_the_limit(tmp_path: Path) -> None:
    with serving(tmp_path) as server:
        head = (
            "POST /v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {auth()['Authorization']}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"400\r\n" + b" " * 1024 + b"\r\n"  # 1 KB chunks, never the final 0-chunk
        reply = raw_exchange(server, head, chunk * 70)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
            assert server.store.jobs_of("alice") == []


def test_the_run_api_body_is_bounded(tmp_path: Path) -> None:
    with serving(tmp_path) as server, server.client() as client:
        body = {"template": "toy", "settings": {"ideas.num_ideas": 1, "pad": "x" * 100_000}}
        refused = client.post("/v1/runs", json=body)
        assert refused.status_code == 413, refused.text
        assert refused.json()["error"] == "too_large"
        assert "service.max_form_kb" in refused.json()["detail"]
        assert server.store.jobs_of("alice") == []


def test_too_many_or_too_long_form_fields_are_refused(tmp_path: Path) -> None:
    with serving(tmp_path) as server, browser(server) as client:
        many = client.post("/login", data={f"f{i}": "1" for i in range(30)} | RIGHT)
        assert many.status_code == 400 and "service.max_form_fields" in many.text
        long = client.post("/login", data={"token": "x" * 20_000, "next": "/jobs"})
        assert long.status_code == 400 and "service.max_form_field_kb" in long.text
        assert client.post("/login", data=RIGHT).status_code == 303
        run = client.post("/jobs/run", data={"template": "t" * 20_000, "preset": ""})
        assert run.status_code == 400 and "8 KB" in run.text
        upload = client.post(
            "/v1/reviews",
            headers=auth(),
            data={"num_reviewers": "1" * 20_000},
            files={"file": ("paper.pdf", b"%PDF-1.4\n", "application/pdf")},
        )
        assert upload.status_code == 400, upload.text
        assert upload.json()["error"] == "bad_multipart"
        assert "service.max_form_field_kb" in upload.json()["detail"]
        assert server.store.jobs_of("alice") == []


def test_failed_logins_are_limited_per_address_until_the_window_passes(tmp_path: Path) -> None:
    clock = ManualClock()
    limits = serving(tmp_path, clock, login_max_failures=3, login_window_s=60.0)
    with limits as server, browser(server) as client:
        for _ in range(3):
            assert client.post("/login", data=WRONG).status_code == 401
        blocked = client.post("/login", data=WRONG)
        assert blocked.status_code == 429, blocked.text[:300]
        assert blocked.headers["retry-after"] == "60" and "try again in 60 s" in blocked.text
        assert client.post("/login", data=RIGHT).status_code == 429  # no oracle for guesses
        with browser(server, "127.0.0.2") as other:
            assert other.post("/login", data=RIGHT).status_code == 303  # per address
        clock.now += 45
        assert client.post("/login", data=WRONG).headers["retry-after"] == "15"
        clock.now += 15  # the first failures leave the window
        assert client.post("/login", data=RIGHT).status_code == 303
        assert client.post("/login", data=WRONG).status_code == 401


def test_successful_logins_are_not_counted(tmp_path: Path) -> None:
    with (
        serving(tmp_path, login_max_failures=2, login_window_s=60.0) as server,
        browser(server) as client,
    ):
        assert client.post("/login", data=WRONG).status_code == 401
        for _ in range(5):
            assert client.post("/login", data=RIGHT).status_code == 303
        assert client.post("/login", data=WRONG).status_code == 401
        assert client.post("/login", data=WRONG).status_code == 429
