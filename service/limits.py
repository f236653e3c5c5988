"""Per-token submission rate limit (a sliding 60 s window) and bounded request bodies."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, Callable

from starlette.requests import Request

from service.errors import ApiError

WINDOW_S = 60.0
MULTIPART_OVERHEAD = 64 * 1024  # boundaries and the form fields beside the file


class SlidingWindowLimiter:
    """At most ``limit`` events per key in any ``window_s`` seconds."""

    def __init__(
        self, limit: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float | None:
        """Count one event; None when allowed, else seconds until the next one would be."""
        now = self.clock()
        with self._lock:
            events = self._events[key]
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if len(events) >= self.limit:
                return events[0] + self.window_s - now
            events.append(now)
            return None

    def check(self, key: str) -> None:
        """Count one submission or raise 429 with Retry-After."""
        wait = self.acquire(key)
        if wait is not None:
            retry = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "rate_limited",
                f"More than {self.limit} submissions in {self.window_s:g} s with this token; "
                f"retry in {retry} s.",
                headers={"Retry-After": str(retry)},
            )


def too_large(limit_mb: float) -> ApiError:
    """413 for an upload over ``service.max_upload_mb``."""
    return ApiError(
        413,
        "too_large",
        f"The upload is larger than the limit of {limit_mb:g} MB; compress the PDF "
        "(e.g. qpdf or ghostscript) or ask the operator to raise service.max_upload_mb.",
    )


def check_declared_length(request: Request, limit_bytes: int, limit_mb: float) -> None:
    """Refuse at once when Content-Length already says the body is too large."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise too_large(limit_mb)


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
