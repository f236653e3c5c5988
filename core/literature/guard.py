"""What keeps a source from hanging or hammering: deadlines, rate limits, bounded retries.

- ``run_with_deadline`` runs a call in a daemon worker thread and stops waiting at the
  deadline, so a library that blocks (or sleeps through its own retries) cannot hang a run;
  a daemon thread left behind never blocks interpreter exit.
- ``RateLimiter`` spaces calls to one source at least ``min_interval_s`` apart.
- ``retry_call`` retries 429 and 5xx answers with doubling waits, never past the deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from core.clock import Clock, Sleep
from core.literature.errors import (
    RateLimitedError,
    SourceError,
    SourceTimeoutError,
    SourceUnavailableError,
)

T = TypeVar("T")


def run_with_deadline(call: Callable[[], T], timeout_s: float, *, source: str) -> T:
    """``call()``'s result, or ``SourceTimeoutError`` once ``timeout_s`` has passed."""
    box: dict[str, object] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name=f"literature-{source}", daemon=True).start()
    if not done.wait(timeout_s):
        raise SourceTimeoutError(
            f"{source} did not answer within {timeout_s:g} s (literature.timeout_s).",
            source=source,
        )
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


@dataclass
class RateLimiter:
    """At most one call per ``min_interval_s`` (thread-safe); waits are bounded by the caller."""

    min_interval_s: float
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep
    _next_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, deadline: float | None = None) -> None:
        """Sleep until the next call is allowed; raise if that would pass ``deadline``."""
        with self._lock:
            now = self.clock()
            start = max(now, self._next_at)
            if deadline is not None and start > deadline:
                raise SourceTimeoutError(
                    "rate limit: the next allowed call is past the deadline", source="limiter"
                )
            self._next_at = start + self.min_interval_s
        if start > now:
            self.sleep(start - now)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of transient answers (HTTP 429 and 5xx)."""

    max_retries: int = 2
    backoff_s: float = 1.0
    backoff_max_s: float = 8.0


def retry_call(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    deadline: float,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> T:
    """``call()``, retried on rate limits and server errors while retries and time remain."""
    wait = policy.backoff_s
    for attempt in range(policy.max_retries + 1):
        try:
            return call()
        except (RateLimitedError, SourceUnavailableError) as exc:
            if attempt == policy.max_retries or _unreachable(exc):
                raise
            if clock() + wait >= deadline:
                raise
            sleep(wait)
            wait = min(wait * 2, policy.backoff_max_s)
    raise AssertionError("unreachable")  # pragma: no cover


def _unreachable(exc: SourceError) -> bool:
    """A host that cannot be reached will not be reachable a second later."""
    return exc.status is None and isinstance(exc, SourceUnavailableError)
