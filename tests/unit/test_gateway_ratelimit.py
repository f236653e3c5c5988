"""Per-model gates: an in-flight cap and a backoff shared by every call after a 429 (#22)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from gateway.errors import RateLimitError, RetriesExhaustedError
from gateway.ratelimit import CallWaits, ModelGates, retry_after_seconds
from gateway.retry import RetryPolicy
from gateway.scripted import Turn
from tests.clock import ManualClock

SettingsFactory = Callable[..., Settings]
ASK = [{"role": "user", "content": "Say hello."}]


def _manual_gates() -> tuple[ModelGates, ManualClock, list[float]]:
    clock = ManualClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    return ModelGates(clock=clock, sleep=sleep), clock, slept


def test_the_in_flight_cap_holds_across_threads() -> None:
    gate = ModelGates().gate("openai/gpt-4o")
    inside, most = 0, 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal inside, most
        with gate.slot(2, CallWaits()):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most == 2 and gate.in_flight == 0 and gate.stats.calls == 6


def test_a_429_closes_the_gate_for_every_caller_of_that_model_only() -> None:
    gates, clock, slept = _manual_gates()
    gates.gate("m").rate_limited(5.0, initial_s=1.0, max_s=30.0)
    waits = CallWaits()
    with gates.gate("m").slot(None, waits):
        assert clock.now >= 1005.0  # opened only once Retry-After passed
    assert 5.0 <= waits.backoff_wait_s <= 5.5 and len(slept) == 1
    with gates.gate("other").slot(None, CallWaits()):
        pass
    assert len(slept) == 1  # another model's calls were not held
    stats = gates.stats()["m"]
    assert (stats.rate_limited, stats.backoff_waits) == (1, 1)


def test_without_retry_after_the_backoff_doubles_until_a_success() -> None:
    gate = ModelGates(clock=ManualClock()).gate("m")
    delays = [gate.rate_limited(None, initial_s=1.0, max_s=5.0) for _ in range(4)]
    assert delays == [1.0, 2.0, 4.0, 5.0]
    gate.succeeded()
    assert gate.rate_limited(None, initial_s=1.0, max_s=5.0) == 1.0


def test_retry_after_headers() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=now.timestamp()) == 30.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds(None) is None


def _storm_gateway(
    make_settings: SettingsFactory, gates: ModelGates, turns: Sequence[Turn], **llm: object
) -> Gateway:
    settings = make_settings(llm={"models": {"writer": "openai/m"}, **llm})
    retry = RetryPolicy(max_retries=1, initial_s=0.0, max_s=0.0, sleep=lambda s: None)
    return Gateway(settings, backend=ScriptedLLM(turns), retry=retry, gates=gates)


def test_429s_slow_a_call_down_without_failing_it(make_settings: SettingsFactory) -> None:
    gates, _, _ = _manual_gates()
    storm = [RateLimitError("429", model="openai/m", retry_after_s=2.0) for _ in range(3)]
    gw = _storm_gateway(make_settings, gates, [*storm, "hello"])
    assert gw.complete(ASK, role="writer") == "hello"
    (entry,) = gw.ledger.entries
    assert (entry.attempts, entry.rate_limited) == (1, 3)
    assert 6.0 <= entry.backoff_wait_s <= 6.6


def test_another_jobs_call_waits_on_the_shared_gate(make_settings: SettingsFactory) -> None:
    gates, _, _ = _manual_gates()
    first = _storm_gateway(
        make_settings, gates, [RateLimitError("429", model="openai/m", retry_after_s=4.0), "a"]
    )
    assert first.complete(ASK, role="writer") == "a"
    gates.gate("openai/m").rate_limited(4.0, 1.0, 30.0)  # the storm goes on
    second = _storm_gateway(make_settings, gates, ["b"])
    assert second.complete(ASK, role="writer") == "b"
    (entry,) = second.ledger.entries
    assert entry.rate_limited == 0 and entry.backoff_wait_s >= 4.0  # it never got a 429


def test_past_the_wait_budget_429s_fall_to_the_retry_policy(
    make_settings: SettingsFactory,
) -> None:
    gates, _, _ = _manual_gates()
    storm = [RateLimitError("429", model="openai/m", retry_after_s=1.0) for _ in range(10)]
    gw = _storm_gateway(make_settings, gates, storm, rate_limit_max_waits=2)
    with pytest.raises(RetriesExhaustedError, match="after 2 attempts"):
        gw.complete(ASK, role="writer")
    # The budget is the call's: 2 waited out, the 3rd fails attempt 1, attempt 2 has none left.
    assert gates.stats()["openai/m"].rate_limited == 4
