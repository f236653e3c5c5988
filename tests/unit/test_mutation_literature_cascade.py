"""The cascade and its guard, driven by scripted in-process sources on a fake clock.

``tests/unit/test_literature.py`` runs the cascade against a loopback HTTP server; here each
source is a plain object that answers from a script, so the order in which sources are
asked, when the cascade moves on, the circuit breaker, the response cache (real SQLite)
and the outcome figures can be pinned exactly. Retry waits and elapsed time go to a fake
clock; the only real waits are the worker-thread deadlines, far from binding except in the
one test about them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.literature.bibtex import make_bibtex
from core.literature.cache import SourceCache, request_key
from core.literature.cascade import GuardedSource, LiteratureCascade
from core.literature.errors import (
    MalformedResponseError,
    RateLimitedError,
    SourceError,
    SourceSkippedError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from core.literature.guard import RateLimiter, RetryPolicy
from core.literature.models import Paper, SourceName

TIMEOUT_S = 30.0  # the worker-thread deadline; never reached unless a test means it to be
START = 1000.0


class FakeTime:
    """A clock that only moves when ``sleep`` is called; every wait is recorded."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


Answer = list[Paper] | Exception


@dataclass
class ScriptedSource:
    """A source that answers from ``script`` (the last answer repeats) and records calls.

    ``takes_s`` is how long each answer takes on the fake clock ``time_``.
    """

    name: SourceName
    script: list[Answer]
    time_: FakeTime | None = None
    takes_s: float = 0.0
    tag: str = "build-1"
    calls: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def cache_tag(self) -> str:
        return self.tag

    def _answer(self) -> list[Paper]:
        if self.time_ is not None and self.takes_s:
            self.time_.now += self.takes_s
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def search(self, query: str, limit: int) -> list[Paper]:
        self.calls.append(("search", query, limit))
        return self._answer()

    def fetch(self, paper_id: str) -> Paper | None:
        self.calls.append(("fetch", paper_id, 1))
        found = [p for p in self._answer() if p.paper_id == paper_id]
        return found[0] if found else None


def paper(
    paper_id: str,
    title: str = "Grokking beyond overfitting",
    author: str = "Alethea Power",
    year: int = 2022,
    source: SourceName = "semantic_scholar",
) -> Paper:
    bibtex = make_bibtex(
        "SourceKey2022", title=title, authors=[author], year=year, venue=None, ids={}
    )
    return Paper(
        paper_id=paper_id,
        title=title,
        authors=[author],
        year=year,
        bibtex=bibtex,
        citation_key="SourceKey2022",
        source=source,
    )


def guarded(
    source: ScriptedSource,
    time_: FakeTime,
    *,
    cache: SourceCache | None = None,
    limiter: RateLimiter | None = None,
    retry: RetryPolicy | None = None,
    timeout_s: float = TIMEOUT_S,
    skip_after_failures: int = 2,
) -> GuardedSource:
    return GuardedSource(
        source=source,
        timeout_s=timeout_s,
        limiter=limiter,
        retry=retry or RetryPolicy(max_retries=2, backoff_s=0.5, backoff_max_s=8.0),
        cache=cache,
        skip_after_failures=skip_after_failures,
        skip_for_s=300.0,
        clock=time_,
        sleep=time_.sleep,
    )


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


@pytest.fixture
def cache(tmp_path: Path) -> SourceCache:
    return SourceCache(tmp_path / "cache.sqlite", ttl_s=3600.0)


# --- the order of sources and when the cascade moves on -----------------------------------


def test_the_first_source_with_papers_answers_and_later_ones_are_not_asked(
    time_: FakeTime,
) -> None:
    s2 = ScriptedSource("semantic_scholar", [[paper("s2:1")]])
    openalex = ScriptedSource("openalex", [[paper("openalex:W1", source="openalex")]])
    cascade = LiteratureCascade([guarded(s2, time_), guarded(openalex, time_)], clock=time_)
    assert cascade.source_names == ["semantic_scholar", "openalex"]
    result = cascade.search("grokking", 7)
    assert [p.paper_id for p in result.papers] == ["s2:1"] and result.query == "grokking"
    assert s2.calls == [("search", "grokking", 7)] and openalex.calls == []
    assert [o.source for o in result.outcomes] == ["semantic_scholar"]


def test_an_empty_answer_falls_through_and_is_reported_as_answered(time_: FakeTime) -> None:
    s2 = ScriptedSource("semantic_scholar", [[]])
    openalex = ScriptedSource(
        "openalex", [[paper("openalex:W1", source="openalex"), paper("openalex:W2", "Other")]]
    )
    cascade = LiteratureCascade([guarded(s2, time_), guarded(openalex, time_)], clock=time_)
    result = cascade.search("grokking", 5)
    assert [p.paper_id for p in result.papers] == ["openalex:W1", "openalex:W2"]
    first, second = result.outcomes
    assert (first.source, first.ok, first.results, first.error) == (
        "semantic_scholar",
        True,
        0,
        None,
    )
    assert (second.source, second.ok, second.results) == ("openalex", True, 2)
    assert openalex.calls == [("search", "grokking", 5)]


def test_a_failing_source_is_reported_with_its_error_and_the_next_one_answers(
    time_: FakeTime,
) -> None:
    broken = MalformedResponseError("semantic_scholar: not valid JSON", source="semantic_scholar")
    s2 = ScriptedSource("semantic_scholar", [broken])
    offline = ScriptedSource("offline", [[paper("offline:k1", source="offline")]])
    cascade = LiteratureCascade([guarded(s2, time_), guarded(offline, time_)], clock=time_)
    result = cascade.search("grokking", 5)
    assert result.answered_by == ["offline"] and result.papers[0].paper_id == "offline:k1"
    failed = result.outcomes[0]
    assert (failed.source, failed.ok, failed.results) == ("semantic_scholar", False, 0)
    assert failed.error == "semantic_scholar: not valid JSON"


def test_every_source_failing_gives_an_empty_result_listing_each_error(time_: FakeTime) -> None:
    s2 = ScriptedSource(
        "semantic_scholar", [MalformedResponseError("s2 broke", source="semantic_scholar")]
    )
    openalex = ScriptedSource(
        "openalex", [SourceUnavailableError("HTTP 503", source="openalex", status=503)]
    )
    cascade = LiteratureCascade([guarded(s2, time_), guarded(openalex, time_)], clock=time_)
    result = cascade.search("grokking", 5)
    assert result.papers == [] and result.query == "grokking"
    assert [(o.source, o.ok, o.error) for o in result.outcomes] == [
        ("semantic_scholar", False, "s2 broke"),
        ("openalex", False, "HTTP 503"),
    ]
    assert len(openalex.calls) == 3  # a 503 is retried twice before the cascade gives up


def test_outcome_seconds_are_measured_on_the_cascade_clock_to_the_millisecond(
    time_: FakeTime,
) -> None:
    slow_fail = ScriptedSource(
        "semantic_scholar",
        [MalformedResponseError("bad", source="semantic_scholar")],
        time_,
        takes_s=1.23456,
    )
    slow_ok = ScriptedSource("openalex", [[paper("openalex:W1")]], time_, takes_s=2.34567)
    cascade = LiteratureCascade([guarded(slow_fail, time_), guarded(slow_ok, time_)], clock=time_)
    result = cascade.search("grokking", 5)
    assert [o.seconds for o in result.outcomes] == [1.235, 2.346]


# --- retries and the circuit breaker ------------------------------------------------------


def test_429_is_retried_with_doubling_waits_on_the_injected_sleep(time_: FakeTime) -> None:
    limited = RateLimitedError("HTTP 429", source="semantic_scholar", status=429)
    s2 = ScriptedSource("semantic_scholar", [limited, limited, [paper("s2:1")]])
    source = guarded(s2, time_)
    papers, cached = source.search("grokking", 5)
    assert [p.paper_id for p in papers] == ["s2:1"] and not cached
    assert len(s2.calls) == 3 and time_.waits == [0.5, 1.0]


def test_retries_stop_before_the_deadline_measured_on_the_injected_clock() -> None:
    # The fake clock starts at 0, so the deadline (30) is far below the real monotonic clock:
    # a guard that read the real clock would give up at once instead of retrying.
    time_ = FakeTime(now=0.0)
    limited = RateLimitedError("HTTP 429", source="semantic_scholar", status=429)
    s2 = ScriptedSource("semantic_scholar", [limited])
    source = guarded(
        s2, time_, retry=RetryPolicy(max_retries=5, backoff_s=20.0, backoff_max_s=16.0)
    )
    with pytest.raises(RateLimitedError):
        source.search("grokking", 5)
    assert len(s2.calls) == 2 and time_.waits == [20.0]  # 20 + 16 would pass the 30 s deadline


def test_a_source_is_skipped_after_consecutive_failures_until_its_pause_ends(
    time_: FakeTime,
) -> None:
    s2 = ScriptedSource(
        "semantic_scholar", [MalformedResponseError("bad", source="semantic_scholar")]
    )
    source = guarded(s2, time_)
    for _ in range(2):
        with pytest.raises(MalformedResponseError):
            source.search("grokking", 5)
    time_.now += 100.0
    with pytest.raises(SourceSkippedError) as skipped:
        source.search("grokking", 5)
    assert len(s2.calls) == 2
    assert skipped.value.source == "semantic_scholar"
    assert str(skipped.value) == (
        "semantic_scholar: skipped for 200 s more after 2 consecutive failures "
        "(literature.skip_for_s)."
    )
    time_.now = START + 300.0  # the pause (skip_for_s) is over at exactly this instant
    s2.script = [[paper("s2:1")]]
    papers, _ = source.search("grokking", 5)
    assert [p.paper_id for p in papers] == ["s2:1"] and len(s2.calls) == 3


def test_a_success_resets_the_count_of_consecutive_failures(time_: FakeTime) -> None:
    bad = MalformedResponseError("bad", source="semantic_scholar")
    s2 = ScriptedSource("semantic_scholar", [bad, [paper("s2:1")], bad, [paper("s2:2")]])
    source = guarded(s2, time_)
    with pytest.raises(MalformedResponseError):
        source.search("a", 5)
    source.search("b", 5)
    assert source.failures == 0
    with pytest.raises(MalformedResponseError):
        source.search("c", 5)
    papers, _ = source.search("d", 5)  # one failure since the success: not skipped
    assert [p.paper_id for p in papers] == ["s2:2"] and len(s2.calls) == 4


def test_a_skipped_source_is_logged_at_info_and_a_failure_at_warning(
    time_: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    s2 = ScriptedSource(
        "semantic_scholar", [MalformedResponseError("bad json", source="semantic_scholar")]
    )
    cascade = LiteratureCascade([guarded(s2, time_, skip_after_failures=1)], clock=time_)
    with caplog.at_level(logging.INFO, logger="core.literature"):
        first = cascade.search("a", 5)
        second = cascade.search("b", 5)
    assert "bad json" in (first.outcomes[0].error or "")
    assert "skipped for 300 s" in (second.outcomes[0].error or "")
    records = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert records == [
        (logging.WARNING, "literature source semantic_scholar failed, trying the next: bad json"),
        (
            logging.INFO,
            "literature source semantic_scholar failed, trying the next: "
            + (second.outcomes[0].error or ""),
        ),
    ]


def test_an_unexpected_exception_becomes_a_source_error_that_keeps_its_cause(
    time_: FakeTime,
) -> None:
    bug = ValueError("list index out of range")
    s2 = ScriptedSource("semantic_scholar", [bug])
    source = guarded(s2, time_)
    with pytest.raises(SourceError) as raised:
        source.search("grokking", 5)
    assert str(raised.value) == "semantic_scholar: unexpected ValueError: list index out of range"
    assert raised.value.source == "semantic_scholar" and raised.value.__cause__ is bug
    assert source.failures == 1 and len(s2.calls) == 1  # a bug is not retried
    cascade = LiteratureCascade([source], clock=time_)
    assert cascade.search("grokking", 5).outcomes[0].error == str(raised.value)


def test_the_rate_limiter_gives_up_when_the_next_slot_is_past_the_deadline(
    time_: FakeTime,
) -> None:
    limiter = RateLimiter(100.0, clock=time_, sleep=time_.sleep)
    s2 = ScriptedSource("semantic_scholar", [[paper("s2:1")]])
    source = guarded(s2, time_, limiter=limiter)
    source.search("a", 5)
    with pytest.raises(SourceTimeoutError, match="past the deadline"):
        source.search("b", 5)  # the next call is allowed 100 s on; the deadline is 30 s
    assert len(s2.calls) == 1 and time_.waits == []


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let a worker thread left behind finish


def test_a_source_that_hangs_is_cut_at_its_deadline(
    time_: FakeTime, release: threading.Event
) -> None:
    class Hanging(ScriptedSource):
        def search(self, query: str, limit: int) -> list[Paper]:
            release.wait(10.0)  # bounded: a guard that never stops waiting fails the test
            return [paper("s2:late")]

    source = guarded(Hanging("semantic_scholar", [[]]), time_, timeout_s=0.2)
    with pytest.raises(SourceTimeoutError) as raised:
        source.search("grokking", 5)
    assert str(raised.value).startswith("semantic_scholar did not answer within 0.2 s")
    assert raised.value.source == "semantic_scholar" and source.failures == 1


# --- the response cache --------------------------------------------------------------------


def test_a_repeated_search_is_answered_from_the_cache_without_a_call(
    time_: FakeTime, cache: SourceCache
) -> None:
    s2 = ScriptedSource("semantic_scholar", [[paper("s2:1")]])
    cascade = LiteratureCascade([guarded(s2, time_, cache=cache)], clock=time_)
    first = cascade.search("grokking", 5)
    again = cascade.search("grokking", 5)
    assert len(s2.calls) == 1
    assert [o.cached for o in first.outcomes + again.outcomes] == [False, True]
    assert again.papers == first.papers


def test_cache_keys_are_pinned_so_a_cache_from_an_earlier_run_is_still_read(
    time_: FakeTime, cache: SourceCache
) -> None:
    stored = [paper("s2:1")]
    cache.put(request_key("semantic_scholar", "search", "grokking", 5, "build-1"), "x", stored)
    cache.put(request_key("semantic_scholar", "paper", "s2:2", 1, "build-1"), "x", [paper("s2:2")])
    s2 = ScriptedSource("semantic_scholar", [[paper("s2:other")]])
    source = guarded(s2, time_, cache=cache)
    assert source.search("grokking", 5) == (stored, True)
    found = source.fetch("s2:2")
    assert found is not None and found.paper_id == "s2:2"
    assert s2.calls == []


def test_the_cache_tells_searches_from_fetches_limits_and_index_builds(
    time_: FakeTime, cache: SourceCache
) -> None:
    s2 = ScriptedSource("semantic_scholar", [[paper("s2:x")]])
    source = guarded(s2, time_, cache=cache)
    source.search("s2:x", 1)
    assert source.fetch("s2:x") is not None  # not the search for the same text
    source.search("s2:x", 2)  # another limit
    s2.tag = "build-2"  # the index was rebuilt
    source.search("s2:x", 1)
    assert [c[0] for c in s2.calls] == ["search", "fetch", "search", "search"]
    assert [c[2] for c in s2.calls] == [1, 1, 2, 1]


def test_a_failed_call_is_not_cached(time_: FakeTime, cache: SourceCache) -> None:
    s2 = ScriptedSource(
        "semantic_scholar",
        [MalformedResponseError("bad", source="semantic_scholar"), [paper("s2:1")]],
    )
    source = guarded(s2, time_, cache=cache)
    with pytest.raises(MalformedResponseError):
        source.search("grokking", 5)
    papers, cached = source.search("grokking", 5)
    assert [p.paper_id for p in papers] == ["s2:1"] and not cached


def test_an_unknown_paper_is_none_and_that_answer_is_cached(
    time_: FakeTime, cache: SourceCache
) -> None:
    s2 = ScriptedSource("semantic_scholar", [[paper("s2:1")]])
    cascade = LiteratureCascade([guarded(s2, time_, cache=cache)], clock=time_)
    assert cascade.paper("s2:unknown") is None
    assert cascade.paper("s2:unknown") is None
    assert s2.calls == [("fetch", "s2:unknown", 1)]


# --- paper(): seen papers, the owning source, keys -----------------------------------------


@pytest.mark.parametrize(
    ("paper_id", "owner"),
    [("s2:abc:def", "semantic_scholar"), ("openalex:W7", "openalex"), ("offline:k:1", "offline")],
)
def test_paper_is_fetched_from_the_source_its_id_names(
    time_: FakeTime, paper_id: str, owner: SourceName
) -> None:
    sources = {
        name: ScriptedSource(name, [[paper(paper_id, source=name)]])
        for name in ("semantic_scholar", "openalex", "offline")
    }
    cascade = LiteratureCascade([guarded(s, time_) for s in sources.values()], clock=time_)
    found = cascade.paper(paper_id)
    assert found is not None and found.paper_id == paper_id
    assert found.citation_key == "power2022grokking"
    assert found.bibtex.startswith("@misc{power2022grokking,")
    assert {name: s.calls for name, s in sources.items() if s.calls} == {
        owner: [("fetch", paper_id, 1)]
    }
    assert cascade.paper(paper_id) == found  # remembered: no second fetch
    assert len(sources[owner].calls) == 1


def test_paper_of_a_source_not_in_the_cascade_or_unknown_prefix_is_none(time_: FakeTime) -> None:
    s2 = ScriptedSource("semantic_scholar", [[paper("s2:1")]])
    cascade = LiteratureCascade([guarded(s2, time_)], clock=time_)
    assert cascade.paper("openalex:W1") is None
    assert cascade.paper("doi:10.1/x") is None
    assert s2.calls == []


def test_paper_from_a_failing_source_is_none_and_the_failure_is_logged(
    time_: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    s2 = ScriptedSource(
        "semantic_scholar", [MalformedResponseError("bad json", source="semantic_scholar")]
    )
    cascade = LiteratureCascade([guarded(s2, time_)], clock=time_)
    with caplog.at_level(logging.INFO, logger="core.literature"):
        assert cascade.paper("s2:1") is None
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "literature source semantic_scholar failed, trying the next: bad json")
    ]


def test_keys_are_unique_across_searches_and_the_source_bibtex_is_rekeyed(
    time_: FakeTime,
) -> None:
    s2 = ScriptedSource("semantic_scholar", [[paper("s2:1")], [paper("s2:2", "Grokking again")]])
    cascade = LiteratureCascade([guarded(s2, time_)], clock=time_)
    first = cascade.search("a", 5).papers[0]
    second = cascade.search("b", 5).papers[0]
    assert (first.citation_key, second.citation_key) == ("power2022grokking", "power2022grokkinga")
    assert second.bibtex.startswith("@misc{power2022grokkinga,\n  title = {{Grokking again}}")
    assert "SourceKey2022" not in second.bibtex
    assert cascade.paper("s2:2") == second


def test_bibtex_that_cannot_be_rekeyed_is_kept_as_the_source_gave_it(time_: FakeTime) -> None:
    odd = paper("s2:1").model_copy(update={"bibtex": "not a bibtex entry"})
    s2 = ScriptedSource("semantic_scholar", [[odd]])
    cascade = LiteratureCascade([guarded(s2, time_)], clock=time_)
    adopted = cascade.search("grokking", 5).papers[0]
    assert adopted.bibtex == "not a bibtex entry" and adopted.citation_key == "power2022grokking"


def test_without_a_cache_the_source_tag_is_never_read(time_: FakeTime) -> None:
    # The offline index reads its tag from its database: with the cache off that read is
    # pointless, and it would run outside the guard (no deadline, no circuit breaker).
    class Tagged(ScriptedSource):
        tag_reads: int = 0

        @property
        def cache_tag(self) -> str:
            self.tag_reads += 1
            return self.tag

    s2 = Tagged("semantic_scholar", [[paper("s2:1")]])
    source = guarded(s2, time_)
    source.search("grokking", 5)
    source.fetch("s2:1")
    assert s2.tag_reads == 0 and len(s2.calls) == 2
