"""Bounded request bodies and the failed-login limiter, without a server.

The body limit is driven through its ASGI interface with a client that never stops
sending, so a test can tell how much of a body was read before the refusal.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from core.settings import ServiceSettings
from service.errors import ApiError
from service.limits import (
    BodyLimitMiddleware,
    FormLimits,
    SlidingWindowLimiter,
    login_limiter,
    login_throttled,
)

CHUNK = b"x" * 1024


class EndlessClient:
    """An ASGI receive that sends 1 KB chunks forever, counting what was taken."""

    def __init__(self) -> None:
        self.taken = 0

    async def __call__(self) -> Message:
        self.taken += len(CHUNK)
        return {"type": "http.request", "body": CHUNK, "more_body": True}


class Recorder:
    """An ASGI app that records the body it was given; and a send that keeps messages."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.sent: list[Message] = []

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await Request(scope, receive).body()
        self.bodies.append(body)
        await Response(b"ok")(scope, receive, send)

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


async def refuse(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)


def scope(path: str = "/login", headers: dict[str, str] | None = None) -> Scope:
    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "method": "POST", "path": path, "headers": raw, "query_string": b""}


def middleware(recorder: Recorder, limit_kb: float = 4) -> BodyLimitMiddleware:
    return BodyLimitMiddleware(recorder.app, limit_kb, {("POST", "/upload")}, refuse)


def test_a_streamed_body_is_refused_once_it_passes_the_limit_not_read_to_its_end() -> None:
    recorder, client = Recorder(), EndlessClient()
    asyncio.run(middleware(recorder)(scope(), client, recorder.send))
    assert recorder.status == 413 and recorder.bodies == []
    assert client.taken == 5 * 1024  # the 4 KB allowed and the chunk that passed them
    assert "service.max_form_kb" in recorder.json()["detail"]


def test_a_declared_length_over_the_limit_is_refused_before_any_of_it_is_read() -> None:
    recorder, client = Recorder(), EndlessClient()
    headers = {"content-length": str(10**9)}
    asyncio.run(middleware(recorder)(scope(headers=headers), client, recorder.send))
    assert recorder.status == 413 and client.taken == 0
    assert recorder.json()["error"] == "too_large"


def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    recorder = Recorder()
    messages = iter([b"token=", b"abc"])

    async def receive() -> Message:
        chunk = next(messages, b"")
        return {"type": "http.request", "body": chunk, "more_body": chunk != b""}

    asyncio.run(middleware(recorder)(scope(), receive, recorder.send))
    assert recorder.status == 200 and recorder.bodies == [b"token=abc"]


def test_upload_routes_are_left_to_their_own_limit() -> None:
    recorder = Recorder()
    chunks = iter([CHUNK] * 8)

    async def receive() -> Message:
        chunk = next(chunks, b"")
        return {"type": "http.request", "body": chunk, "more_body": chunk != b""}

    asyncio.run(middleware(recorder)(scope("/upload"), receive, recorder.send))
    assert recorder.status == 200 and len(recorder.bodies[0]) == 8 * 1024


def test_form_refusals_name_the_limits_and_their_settings() -> None:
    service = ServiceSettings(max_form_fields=3, max_form_field_kb=0.5)
    limits = FormLimits.of(service)
    assert limits.max_field_bytes == 512
    refusal = limits.refusal("Too many fields.")
    assert refusal.status == 400 and refusal.code == "bad_form"
    assert "at most 3 fields of at most 0.5 KB" in refusal.detail
    assert "service.max_form_fields" in refusal.detail


def test_failures_are_counted_per_address_and_expire_with_the_window() -> None:
    now = [0.0]
    service = ServiceSettings(login_max_failures=2, login_window_s=60)
    limiter = login_limiter(service, clock=lambda: now[0])
    assert limiter.retry_after("10.0.0.1") is None  # looking counts nothing
    limiter.record("10.0.0.1")
    now[0] = 10
    limiter.record("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == pytest.approx(50)  # the first leaves at 60
    assert limiter.retry_after("10.0.0.2") is None
    now[0] = 60
    assert limiter.retry_after("10.0.0.1") is None  # the first failure left the window
    limiter.record("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == pytest.approx(10)


def test_the_throttle_refusal_is_a_429_with_retry_after_in_whole_seconds() -> None:
    limiter = SlidingWindowLimiter(5, window_s=300)
    refusal = login_throttled(limiter, 12.2)
    assert refusal.status == 429 and refusal.headers == {"Retry-After": "13"}
    assert "5 failed logins from this address in 300 s" in refusal.detail
    assert login_throttled(limiter, 0.01).headers == {"Retry-After": "1"}


def test_idle_addresses_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.limits.SWEEP_ABOVE_KEYS", 3)
    now = [0.0]
    limiter = SlidingWindowLimiter(1, window_s=10, clock=lambda: now[0])
    for index in range(4):
        limiter.record(f"10.0.0.{index}")
    now[0] = 20
    limiter.record("10.0.1.1")
    assert limiter.tracked() == 1


@pytest.mark.parametrize(
    "field, value",
    [("max_form_kb", 0), ("max_form_fields", 0), ("login_max_failures", 0), ("login_window_s", 0)],
)
def test_limits_must_be_positive(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        ServiceSettings.model_validate({field: value})
