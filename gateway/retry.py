"""Bounded retries with exponential backoff and full jitter, for transient failures only."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.errors import RetriesExhaustedError, TransientLLMError

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """How often and how long to wait; ``sleep`` and ``rng`` are seams for tests."""

    max_retries: int = 4
    initial_s: float = 1.0
    max_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Wait before retry ``attempt`` (1-based): uniform in [0, min(max, initial * 2^(n-1))]."""
        ceiling = min(self.max_s, self.initial_s * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)

    def run(self, call: Callable[[], T]) -> tuple[T, int]:
        """Run ``call``; retry transient errors; return the result and the attempts made."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return call(), attempt
            except TransientLLMError as exc:
                if attempt > self.max_retries:
                    raise RetriesExhaustedError(
                        f"{exc} — still failing after {attempt} attempts; check the provider's "
                        "status or raise llm.max_retries.",
                        model=exc.model,
                    ) from exc
                self.sleep(self.delay(attempt))
