"""Retries: transient failures only, a bounded number of times, with capped exponential waits."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from gateway.errors import (
    AuthenticationFailedError,
    RetriesExhaustedError,
    TransientLLMError,
)
from gateway.retry import RetryPolicy


class HighestDraw(random.Random):
    """Full jitter at its most patient: every wait is the top of its window."""

    def __init__(self) -> None:
        super().__init__(0)
        self.windows: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.windows.append((a, b))
        return b


def _failing(times: int, then: str = "ok") -> Callable[[], str]:
    failures = [TransientLLMError(f"429 #{n}", model="openai/m", status=429) for n in range(times)]

    def call() -> str:
        if failures:
            raise failures.pop(0)
        return then

    return call


def test_waits_double_from_the_initial_wait_up_to_the_cap() -> None:
    rng = HighestDraw()
    policy = RetryPolicy(initial_s=1.5, max_s=10.0, rng=rng)
    assert [policy.delay(n) for n in range(1, 6)] == [1.5, 3.0, 6.0, 10.0, 10.0]
    assert {low for low, _ in rng.windows} == {0}  # full jitter: anywhere from no wait


def test_transient_failures_are_retried_with_a_wait_before_each_retry() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(
        max_retries=3, initial_s=1.0, max_s=30.0, sleep=sleeps.append, rng=HighestDraw()
    )
    assert policy.run(_failing(2)) == ("ok", 3)
    assert sleeps == [1.0, 2.0]


def test_a_first_try_success_makes_one_attempt_and_no_wait() -> None:
    sleeps: list[float] = []
    assert RetryPolicy(sleep=sleeps.append).run(lambda: 42) == (42, 1)
    assert sleeps == []


def test_retries_are_bounded_and_the_error_says_what_to_do() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_retries=2, sleep=sleeps.append, rng=HighestDraw())
    with pytest.raises(RetriesExhaustedError) as info:
        policy.run(_failing(5))
    error = info.value
    assert error.model == "openai/m"
    assert isinstance(error.__cause__, TransientLLMError) and "429 #2" in str(error.__cause__)
    assert str(error) == (
        "429 #2 — still failing after 3 attempts; check the provider's status or raise "
        "llm.max_retries."
    )
    assert len(sleeps) == 2  # no wait after the last attempt


def test_no_retries_means_one_attempt() -> None:
    with pytest.raises(RetriesExhaustedError, match="after 1 attempts"):
        RetryPolicy(max_retries=0, sleep=lambda s: None).run(_failing(1))


def test_permanent_errors_are_raised_at_once() -> None:
    sleeps: list[float] = []
    calls = 0

    def bad_key() -> str:
        nonlocal calls
        calls += 1
        raise AuthenticationFailedError("401", model="openai/m")

    with pytest.raises(AuthenticationFailedError):
        RetryPolicy(max_retries=4, sleep=sleeps.append).run(bad_key)
    assert (calls, sleeps) == (1, [])
