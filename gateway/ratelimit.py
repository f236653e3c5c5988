"""Process-wide gates per model: a cap on calls in flight and one backoff shared on 429.

Every gateway in a process (a worker runs many jobs, each with its own gateway) takes its
calls to a model through that model's :class:`ModelGate`. At most ``limit`` calls are in
flight at once; when the provider answers 429 the gate closes for the provider's
``Retry-After`` (or an exponential backoff), and every call to that model, from any job,
waits for it to open again instead of adding to the storm.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

MAX_RETRY_AFTER_S = 600.0  # a provider's Retry-After beyond this is taken as this


@dataclass
class CallWaits:
    """What one gateway call met at its gate: 429s answered and seconds spent waiting."""

    rate_limited: int = 0
    backoff_wait_s: float = 0.0


@dataclass
class GateStats:
    """A gate's totals since the process started (what /metrics of a worker would show)."""

    calls: int = 0
    rate_limited: int = 0
    backoff_waits: int = 0
    backoff_wait_s: float = 0.0


@dataclass
class ModelGate:
    """The in-flight cap and the shared backoff of one model in this process.

    ``clock`` and ``sleep`` are seams for tests; the in-flight cap waits on a condition.
    """

    model: str
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    stats: GateStats = field(default_factory=GateStats)
    blocked_until: float = 0.0
    in_flight: int = 0
    _streak: int = 0
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def wait_open(self) -> float:
        """Wait while the gate is closed after a 429; the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                remaining = self.blocked_until - self.clock()
            if remaining <= 0:
                break
            # Spread the wake-ups a little so that the callers do not return all at once.
            pause = remaining + self.rng.uniform(0, min(remaining, 1.0) * 0.1)
            self.sleep(pause)
            waited += pause
        if waited:
            with self._lock:
                self.stats.backoff_waits += 1
                self.stats.backoff_wait_s += waited
        return waited

    @contextmanager
    def slot(self, limit: int | None, waits: CallWaits) -> Iterator[None]:
        """Hold one of ``limit`` in-flight places (None: no cap) for one attempt, once the
        gate is open."""
        waits.backoff_wait_s += self.wait_open()
        with self._lock:
            while limit is not None and self.in_flight >= limit:
                self._lock.wait()
            self.in_flight += 1
            self.stats.calls += 1
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1
                self._lock.notify()

    def rate_limited(self, retry_after_s: float | None, initial_s: float, max_s: float) -> float:
        """The provider answered 429: close the gate for ``retry_after_s`` when it said so,
        else for an exponential backoff that grows with consecutive 429s. The delay set."""
        with self._lock:
            self._streak += 1
            self.stats.rate_limited += 1
            if retry_after_s is not None:
                delay = min(max(retry_after_s, 0.0), MAX_RETRY_AFTER_S)
            else:
                delay = min(max_s, initial_s * 2 ** (self._streak - 1))
            self.blocked_until = max(self.blocked_until, self.clock() + delay)
        return delay

    def succeeded(self) -> None:
        """A call went through: the next 429 starts the backoff from the beginning."""
        with self._lock:
            self._streak = 0


@dataclass
class ModelGates:
    """One :class:`ModelGate` per model string, created on first use."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _gates: dict[str, ModelGate] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def gate(self, model: str) -> ModelGate:
        """``model``'s gate."""
        with self._lock:
            found = self._gates.get(model)
            if found is None:
                found = self._gates[model] = ModelGate(model, self.clock, self.sleep)
            return found

    def stats(self) -> dict[str, GateStats]:
        """Each model's totals."""
        with self._lock:
            return {model: gate.stats for model, gate in self._gates.items()}


# Every gateway in this process shares these, whichever job it serves.
PROCESS_GATES = ModelGates()


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms`` header."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
