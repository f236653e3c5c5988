"""The literature cascade against a loopback server speaking Semantic Scholar and OpenAlex.

Every failure mode (429 storm, 500, a hang, malformed JSON, a dead host) must end in the
next source's answer or a clear outcome, within the configured time.

No assertion depends on how fast this machine is: deadlines are far from binding except in
the tests about them, retry waits go to a fake clock, and the time bounds left are generous
(a loaded machine makes one Semantic Scholar request take over a second).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.literature.bibtex import KeyRegistry, base_key, make_bibtex, with_key
from core.literature.cascade import LiteratureCascade
from core.literature.errors import RateLimitedError
from core.literature.factory import build_literature, index_path
from core.literature.guard import RateLimiter, RetryPolicy, retry_call
from core.literature.offline import build_index
from core.settings import Settings
from tests.fakes_literature import GROKKING_S2, Act, FakeLiterature, fake_literature_server

FIXTURE = Path(__file__).resolve().parents[2] / "samples" / "calibration" / "iclr_small.jsonl"
SettingsFactory = Callable[..., Settings]
TIMEOUT_S = 30.0  # never reached unless a test means it to be
HANG_TIMEOUT_S = 2.0  # the deadline a hanging source (30 s) must be cut at


@pytest.fixture
def fake() -> Iterator[FakeLiterature]:
    with fake_literature_server() as server:
        yield server


def _dead_url() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeTime:
    """A clock that only moves when ``sleep`` is called; every wait is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _cascade(
    make_settings: SettingsFactory,
    url: str,
    sources: list[str],
    time_: FakeTime | None = None,
    **lit: Any,
) -> tuple[LiteratureCascade, Settings]:
    settings = make_settings(
        literature={
            "sources": sources,
            "s2_api_url": url,
            "openalex_url": url,
            "openalex_mailto": "me@example.org",
            "s2_min_interval_s": 0,
            "openalex_min_interval_s": 0,
            "timeout_s": TIMEOUT_S,
            "connect_timeout_s": 10.0,
            "backoff_s": 0.05,
            "max_retries": 2,
            **lit,
        }
    )
    if time_ is None:
        return build_literature(settings, http_client=httpx.Client()), settings
    cascade = build_literature(settings, http_client=httpx.Client(), clock=time_)
    for source in cascade.sources:
        source.sleep = time_.sleep
    return cascade, settings


BOTH = ["semantic_scholar", "openalex"]


def test_semantic_scholar_answers_with_rekeyed_bibtex(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    cascade, _ = _cascade(make_settings, fake.url, BOTH)
    result = cascade.search("grokking", 5)
    assert result.answered_by == ["semantic_scholar"] and len(result.papers) == 2
    first, second = result.papers
    assert first.paper_id == "s2:" + "a" * 40 and first.citation_key == "power2022grokking"
    assert first.bibtex.startswith("@Article{power2022grokking,")
    assert "Power2022GrokkingGB" not in first.bibtex and first.ids["arxiv"] == "2201.02177"
    assert second.citation_key == "nanda2023progress"
    assert second.bibtex.startswith("@inproceedings{nanda2023progress,")  # generated
    request = fake.s2.requests[0]
    assert "citationStyles" in request["query"]["fields"][0]
    assert request["query"]["limit"] == ["5"] and len(fake.s2.requests) == 1
    assert not fake.openalex.requests
    cascade.search("loss & grokking #2", 5)
    assert fake.s2.requests[-1]["query"]["query"] == ["loss & grokking #2"]


def test_paper_returns_seen_papers_and_fetches_unseen_ones(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    cascade, _ = _cascade(make_settings, fake.url, BOTH)
    seen = cascade.search("grokking", 5).papers[0]
    assert cascade.paper(seen.paper_id) == seen
    fresh, _ = _cascade(make_settings, fake.url, BOTH, cache_enabled=False)
    fetched = fresh.paper("s2:" + "b" * 40)
    assert fetched is not None and fetched.title.startswith("Progress measures")
    assert "citationStyles" in fake.s2.requests[-1]["query"]["fields"][0]
    assert fresh.paper("s2:" + "c" * 40) is None  # 404
    assert fresh.paper("unknown:1") is None


def _timed(cascade: LiteratureCascade) -> tuple[Any, float]:
    start = time.monotonic()
    result = cascade.search("grokking", 5)
    return result, time.monotonic() - start


def test_429_storm_falls_through_to_openalex_after_bounded_retries(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    fake.s2.default = Act("status", 429)
    time_ = FakeTime()
    cascade, _ = _cascade(make_settings, fake.url, BOTH, time_)
    result = cascade.search("grokking", 5)
    assert result.answered_by == ["openalex"]
    assert result.papers[0].paper_id == "openalex:W4226399794"
    failed = result.outcomes[0]
    assert failed.source == "semantic_scholar" and not failed.ok and "429" in (failed.error or "")
    assert len(fake.s2.requests) == 3  # one try and max_retries=2 retries, then give up
    assert time_.waits == [0.05, 0.1]  # backoff_s, doubled; no wait after the last try


def test_500_is_retried_then_skipped(make_settings: SettingsFactory, fake: FakeLiterature) -> None:
    fake.s2.default = Act("status", 500)
    time_ = FakeTime()
    cascade, _ = _cascade(make_settings, fake.url, BOTH, time_)
    result = cascade.search("grokking", 5)
    assert result.answered_by == ["openalex"] and "500" in (result.outcomes[0].error or "")
    assert len(fake.s2.requests) == 3 and time_.waits == [0.05, 0.1]


def test_no_retry_is_made_whose_wait_would_end_past_the_deadline(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    fake.s2.default = Act("status", 429)
    time_ = FakeTime()
    cascade, _ = _cascade(make_settings, fake.url, BOTH, time_, backoff_s=20.0, max_retries=5)
    result = cascade.search("grokking", 5)
    assert result.answered_by == ["openalex"] and "429" in (result.outcomes[0].error or "")
    # Fake time: 20 s, then the doubling capped at 8 s, ends at 28 s; the next 8 s wait would
    # end past the 30 s deadline, so 3 of the 6 tries allowed are made.
    assert len(fake.s2.requests) == 3 and time_.waits == [20.0, 8.0]


def test_retry_call_gives_up_when_the_next_wait_reaches_the_deadline() -> None:
    time_ = FakeTime()
    tries: list[float] = []

    def storm() -> None:
        tries.append(time_.now)
        raise RateLimitedError("HTTP 429", source="fake", status=429)

    policy = RetryPolicy(max_retries=5, backoff_s=1.0, backoff_max_s=8.0)
    with pytest.raises(RateLimitedError):
        retry_call(storm, policy, deadline=1003.0, clock=time_, sleep=time_.sleep)
    assert tries == [1000.0, 1001.0] and time_.waits == [1.0]  # 1001 + 2 reaches 1003
    tries.clear()
    with pytest.raises(RateLimitedError):
        retry_call(storm, policy, deadline=1e9, clock=time_, sleep=time_.sleep)
    assert len(tries) == 6 and time_.waits[1:] == [1.0, 2.0, 4.0, 8.0, 8.0]  # capped doubling


def test_a_500_then_success_is_recovered_by_a_retry(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    fake.s2.script = [Act("status", 500)]
    cascade, _ = _cascade(make_settings, fake.url, BOTH)
    result = cascade.search("grokking", 5)
    assert result.answered_by == ["semantic_scholar"] and len(fake.s2.requests) == 2


def test_hang_past_the_timeout_moves_on_in_time(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    fake.s2.default = Act("hang")  # for 30 s
    cascade, _ = _cascade(make_settings, fake.url, BOTH, timeout_s=HANG_TIMEOUT_S)
    result, elapsed = _timed(cascade)
    assert result.answered_by == ["openalex"]
    assert "did not answer" in (result.outcomes[0].error or "") or "timed out" in (
        result.outcomes[0].error or ""
    )
    # Cut at the deadline: never before it; the upper bound is 10x the deadline (a loaded
    # machine is slow) and still well short of the 30 s hang.
    assert HANG_TIMEOUT_S * 0.9 <= elapsed < 10 * HANG_TIMEOUT_S


def test_malformed_json_is_not_retried(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    fake.s2.default = Act("malformed")
    fake.openalex.default = Act("malformed")
    time_ = FakeTime()
    cascade, _ = _cascade(make_settings, fake.url, BOTH, time_)
    result = cascade.search("grokking", 5)
    assert result.papers == [] and [o.ok for o in result.outcomes] == [False, False]
    assert all("not valid JSON" in (o.error or "") for o in result.outcomes)
    assert len(fake.s2.requests) == 1 and len(fake.openalex.requests) == 1
    assert time_.waits == []


def test_wrong_shape_is_a_clear_error(make_settings: SettingsFactory, fake: FakeLiterature) -> None:
    fake.s2.default = Act("ok", body={"error": "something"})
    fake.openalex.default = Act("ok", body={"meta": {}, "results": "nope"})
    cascade, _ = _cascade(make_settings, fake.url, BOTH)
    result = cascade.search("grokking", 5)
    assert result.papers == [] and "no 'data' list" in (result.outcomes[0].error or "")
    assert "no 'results' list" in (result.outcomes[1].error or "")


def test_dead_hosts_fail_fast_and_the_offline_index_answers(
    make_settings: SettingsFactory,
) -> None:
    cascade, settings = _cascade(
        make_settings, _dead_url(), [*BOTH, "offline"], timeout_s=60.0, connect_timeout_s=60.0
    )
    build_index([FIXTURE], index_path(settings))
    waits: list[float] = []
    for source in cascade.sources:
        source.sleep = waits.append
    start = time.monotonic()
    result = cascade.search("graph neural networks", 3)
    elapsed = time.monotonic() - start
    assert result.answered_by == ["offline"] and result.papers[0].title.endswith("NETWORKS")
    assert [o.source for o in result.outcomes] == [*BOTH, "offline"]
    assert "cannot reach" in (result.outcomes[0].error or "")
    assert "cannot reach" in (result.outcomes[1].error or "")
    assert waits == []  # a refused connection is not retried
    # Refused at once, not waited out: far below the 60 s timeouts (and ~100x the time
    # it takes on an idle machine).
    assert elapsed < 20.0


def test_everything_down_gives_an_empty_result_not_an_error(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    fake.s2.default = Act("hang")  # for 30 s
    fake.openalex.default = Act("status", 503)
    cascade, _ = _cascade(  # no index built
        make_settings, fake.url, [*BOTH, "offline"], timeout_s=HANG_TIMEOUT_S
    )
    result, elapsed = _timed(cascade)
    assert result.papers == [] and not any(o.ok for o in result.outcomes)
    assert "scientist literature index" in (result.outcomes[2].error or "")
    assert elapsed < 10 * HANG_TIMEOUT_S  # generous, and still short of the 30 s hang


def test_a_repeated_query_is_served_from_the_cache(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    cascade, _ = _cascade(make_settings, fake.url, BOTH)
    first = cascade.search("grokking", 5)
    again = cascade.search("  Grokking ", 5)
    assert len(fake.s2.requests) == 1 and again.outcomes[0].cached
    assert [p.paper_id for p in again.papers] == [p.paper_id for p in first.papers]
    assert again.papers[0].citation_key == first.papers[0].citation_key


def test_a_failing_source_is_skipped_after_repeated_failures(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    fake.s2.default = Act("malformed")
    cascade, _ = _cascade(make_settings, fake.url, BOTH, skip_after_failures=2)
    for query in ("a", "b", "c"):
        result = cascade.search(query, 5)
    assert len(fake.s2.requests) == 2
    assert "skipped" in (result.outcomes[0].error or "") and result.answered_by == ["openalex"]


def test_openalex_sends_mailto_and_rebuilds_the_abstract(
    make_settings: SettingsFactory, fake: FakeLiterature
) -> None:
    cascade, _ = _cascade(make_settings, fake.url, ["openalex"])
    paper = cascade.search("grokking", 5).papers[0]
    assert fake.openalex.requests[0]["query"]["mailto"] == ["me@example.org"]
    assert paper.abstract == "Networks generalise late" and paper.ids["doi"].startswith("10.48550")
    assert paper.venue == "arXiv (Cornell University)" and paper.citation_count == 120
    assert paper.bibtex.startswith("@article{power2022grokking,")


def test_s2_key_comes_from_the_environment_at_call_time(
    make_settings: SettingsFactory, fake: FakeLiterature, monkeypatch: pytest.MonkeyPatch
) -> None:
    cascade, _ = _cascade(make_settings, fake.url, ["semantic_scholar"], cache_enabled=False)
    cascade.search("grokking", 5)
    monkeypatch.setenv("S2_API_KEY", "secret-key")
    cascade.search("grokking", 5)
    headers = [{k.lower(): v for k, v in r["headers"].items()} for r in fake.s2.requests]
    assert "x-api-key" not in headers[0] and headers[1]["x-api-key"] == "secret-key"


def test_rate_limiter_spaces_calls() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(1.0, clock=lambda: now[0], sleep=sleep)
    limiter.wait()
    limiter.wait()
    now[0] += 0.25
    limiter.wait()
    assert slept == [1.0, 0.75]


def test_citation_keys_are_stable_and_unique() -> None:
    keys = KeyRegistry()
    a = keys.key_for("s2:1", ["Alethea Power"], 2022, "Grokking: generalization")
    b = keys.key_for("openalex:W1", ["Power, Alethea"], 2022, "Grokking beyond")
    assert (a, b) == ("power2022grokking", "power2022grokkinga")
    assert keys.key_for("s2:1", [], None, "anything") == a
    assert base_key([], None, "The 2nd Look at Ünïcode") == "anon2nd"
    assert base_key(["Zoë Müller"], 2021, "A study") == "muller2021study"


def test_bibtex_is_escaped_and_rekeyed() -> None:
    entry = make_bibtex(
        "smith2020deep",
        title="Deep {Nets} & 100% of_it",
        authors=["Ann Smith", "Bo Li"],
        year=2020,
        venue="Journal of ML",
        ids={"doi": "10.1/x", "arxiv": "2001.1"},
    )
    assert entry.startswith("@article{smith2020deep,")
    assert r"title = {{Deep Nets \& 100\% of\_it}}" in entry
    assert "author = {Ann Smith and Bo Li}" in entry and "eprint = {2001.1}" in entry
    rekeyed = with_key(str(GROKKING_S2["citationStyles"]["bibtex"]), "k1")
    assert rekeyed is not None and rekeyed.text.startswith("@Article{k1,")
    assert with_key("not bibtex", "k") is None
