"""Rate limits (per-token submissions, per-address failed logins) and bounded request bodies.

Every body the service reads is bounded before it is read whole: a PDF upload by the upload
limit (:func:`limited_body`), everything else (the login and run forms, ``POST /v1/runs``)
by ``service.max_form_kb`` in :class:`BodyLimitMiddleware`; form fields are bounded in
number and length by :func:`read_small_form` and the upload form's parser.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from dataclasses import dataclass

from starlette.datastructures import FormData, Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.clock import Clock
from core.settings import ServiceSettings
from service.errors import ApiError

WINDOW_S = 60.0
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and the form fields beside the file
SWEEP_ABOVE_KEYS = 4096  # forget idle keys once this many are tracked
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class SlidingWindowLimiter:
    """At most ``limit`` events per key in any ``window_s`` seconds."""

    def __init__(
        self, limit: int, window_s: float = WINDOW_S, clock: Clock = time.monotonic
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float | None:
        """Count one event; None when allowed, else seconds until the next one would be."""
        with self._lock:
            now = self.clock()
            wait = self._wait(key, now)
            if wait is None:
                self._events[key].append(now)
            return wait

    def retry_after(self, key: str) -> float | None:
        """None while ``key`` is under its limit, else seconds until it is; counts nothing."""
        with self._lock:
            return self._wait(key, self.clock())

    def record(self, key: str) -> None:
        """Count one event for ``key`` (a failed login), whatever the count so far."""
        with self._lock:
            now = self.clock()
            if len(self._events) > SWEEP_ABOVE_KEYS:
                self._sweep(now)
            self._events[key].append(now)

    def tracked(self) -> int:
        """How many keys the limiter holds events for."""
        with self._lock:
            return len(self._events)

    def _wait(self, key: str, now: float) -> float | None:
        events = self._events.get(key)
        if not events:
            return None
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if len(events) < self.limit:
            return None
        return events[-self.limit] + self.window_s - now

    def _sweep(self, now: float) -> None:
        idle = [k for k, e in self._events.items() if not e or e[-1] <= now - self.window_s]
        for key in idle:
            del self._events[key]

    def check(self, key: str) -> None:
        """Count one submission or raise 429 with Retry-After."""
        wait = self.acquire(key)
        if wait is not None:
            retry = retry_seconds(wait)
            raise ApiError(
                429,
                "rate_limited",
                f"More than {self.limit} submissions in {self.window_s:g} s with this token; "
                f"retry in {retry} s.",
                headers={"Retry-After": str(retry)},
            )


def retry_seconds(wait: float) -> int:
    """A Retry-After value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


def login_limiter(service: ServiceSettings, clock: Clock = time.monotonic) -> SlidingWindowLimiter:
    """Failed web logins per client address (``service.login_max_failures``)."""
    return SlidingWindowLimiter(service.login_max_failures, service.login_window_s, clock)


def login_throttled(limiter: SlidingWindowLimiter, wait: float) -> ApiError:
    """429 for a client address with too many failed logins in the window."""
    retry = retry_seconds(wait)
    return ApiError(
        429,
        "too_many_failed_logins",
        f"{limiter.limit} failed logins from this address in {limiter.window_s:g} s; "
        f"try again in {retry} s with the token the operator gave you.",
        headers={"Retry-After": str(retry)},
    )


def client_address(request: Request) -> str:
    """The peer's address (behind a proxy: the proxy's, unless uvicorn is told to trust it)."""
    return request.client.host if request.client else "unknown"


def too_large(limit_mb: float) -> ApiError:
    """413 for an upload over ``service.max_upload_mb``."""
    return ApiError(
        413,
        "too_large",
        f"The upload is larger than the limit of {limit_mb:g} MB; compress the PDF "
        "(e.g. qpdf or ghostscript) or ask the operator to raise service.max_upload_mb.",
    )


def form_too_large(limit_kb: float) -> ApiError:
    """413 for a form or JSON body over ``service.max_form_kb``."""
    return ApiError(
        413,
        "too_large",
        f"The request body is larger than the limit of {limit_kb:g} KB for forms and JSON "
        "requests; send less (a PDF goes to POST /v1/reviews or the upload form) or ask the "
        "operator to raise service.max_form_kb.",
    )


def check_declared_length(request: Request, limit_bytes: int, limit_mb: float) -> None:
    """Refuse at once when Content-Length already says the body is too large."""
    if _declared_length(request.headers) > limit_bytes:
        raise too_large(limit_mb)


def _declared_length(headers: Headers) -> int:
    declared = headers.get("content-length", "")
    return int(declared) if declared.isdigit() else 0


async def limited_body(
    request: Request, limit_bytes: int, limit_mb: float
) -> AsyncGenerator[bytes, None]:
    """The request body, chunk by chunk, stopping with 413 once it passes ``limit_bytes``."""
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit_bytes:
            raise too_large(limit_mb)
        yield chunk


@dataclass(frozen=True)
class FormLimits:
    """How many fields a form may have and how long each may be (``service.max_form_*``)."""

    max_fields: int
    max_field_kb: float

    @classmethod
    def of(cls, service: ServiceSettings) -> FormLimits:
        """The operator's form limits."""
        return cls(service.max_form_fields, service.max_form_field_kb)

    @property
    def max_field_bytes(self) -> int:
        """The longest field in bytes."""
        return int(self.max_field_kb * 1024)

    def refusal(self, problem: str, code: str = "bad_form") -> ApiError:
        """400 for a form over these limits (or malformed), naming the limits and settings."""
        return ApiError(
            400,
            code,
            f"The form could not be read: {problem.rstrip('.')}. A form may have at most "
            f"{self.max_fields} fields of at most {self.max_field_kb:g} KB each "
            "(service.max_form_fields, service.max_form_field_kb).",
        )


async def read_small_form(request: Request, limits: FormLimits) -> FormData:
    """A web form without files, its fields bounded in number and length (400 beyond)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(FORM_TYPES):
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the form as application/x-www-form-urlencoded (as the web page does).",
        )
    try:
        return await request.form(
            max_files=0, max_fields=limits.max_fields, max_part_size=limits.max_field_bytes
        )
    except HTTPException as exc:  # Starlette's parser reports its limits as a 400
        raise limits.refusal(str(exc.detail)) from exc


Refuse = Callable[[Request, Exception], Awaitable[Response]]


class BodyLimitMiddleware:
    """Reads a request body of at most ``limit_kb`` before the app sees it; 413 beyond.

    Routes in ``exempt`` (``(method, path)``: the PDF uploads) bound their own bodies. A
    declared Content-Length over the limit is refused before any of the body is read, and
    a chunked body as soon as it passes the limit, so no more than the limit is ever held.
    ``refuse`` renders the :class:`ApiError` (JSON for the API, a page for the web pages).
    """

    def __init__(
        self, app: ASGIApp, limit_kb: float, exempt: Collection[tuple[str, str]], refuse: Refuse
    ) -> None:
        self.app, self.limit_kb, self.exempt, self.refuse = app, limit_kb, exempt, refuse
        self.limit_bytes = int(limit_kb * 1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read and check the body, then hand it to the app as if it came from the client."""
        if scope["type"] != "http" or (scope["method"], scope["path"]) in self.exempt:
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except ApiError as exc:
            response = await self.refuse(Request(scope), exc)
            await response(scope, receive, send)
            return
        if body is not None:
            await self.app(scope, _replay(body, receive), send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body (None: the client left), or 413 once it passes the limit."""
        if _declared_length(Headers(scope=scope)) > self.limit_bytes:
            raise form_too_large(self.limit_kb)
        chunks: list[bytes] = []
        total, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limit_bytes:
                raise form_too_large(self.limit_kb)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read once, then waits on the client as before."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
