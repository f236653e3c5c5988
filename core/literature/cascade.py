"""The literature cascade: sources tried in order, each guarded; never hangs, never crashes.

Each source sits behind a ``GuardedSource``: its own response cache, rate limiter, bounded
retry policy, deadline (a worker thread the caller stops waiting for) and a circuit breaker
that skips a source for a while after consecutive failures. The cascade asks the sources
in order and stops at the first that returns papers; every source asked is reported as a
``SourceOutcome``. Citation keys are made unique across everything the cascade has returned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from core.clock import Clock, Sleep
from core.literature.bibtex import KeyRegistry, with_key
from core.literature.cache import SourceCache, request_key
from core.literature.errors import LiteratureError, SourceError, SourceSkippedError
from core.literature.guard import RateLimiter, RetryPolicy, retry_call, run_with_deadline
from core.literature.models import Paper, SearchResult, SourceName, SourceOutcome

log = logging.getLogger("core.literature")


class Source(Protocol):
    """What every source implements; errors are typed (``LiteratureError``)."""

    name: SourceName

    @property
    def cache_tag(self) -> str:
        """Part of every cache key: changes when the source's answers would change."""
        ...

    def search(self, query: str, limit: int) -> list[Paper]:
        """Papers for ``query``, best first."""
        ...

    def fetch(self, paper_id: str) -> Paper | None:
        """One paper by its id, or None when the source does not know it."""
        ...


@dataclass
class GuardedSource:
    """A source with its cache, rate limit, retries, deadline and circuit breaker."""

    source: Source
    timeout_s: float
    limiter: RateLimiter | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache: SourceCache | None = None
    skip_after_failures: int = 2
    skip_for_s: float = 300.0
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep  # the waits between retries (a seam for tests)
    failures: int = 0
    skip_until: float = 0.0

    @property
    def name(self) -> SourceName:
        """The wrapped source's name."""
        return self.source.name

    def search(self, query: str, limit: int) -> tuple[list[Paper], bool]:
        """Papers and whether they came from the cache; raises a LiteratureError on failure."""
        return self._cached("search", query, limit, lambda: self.source.search(query, limit))

    def fetch(self, paper_id: str) -> Paper | None:
        """One paper by id (cached); raises a LiteratureError on failure."""
        papers, _ = self._cached(
            "paper", paper_id, 1, lambda: _as_list(self.source.fetch(paper_id))
        )
        return papers[0] if papers else None

    def _cached(
        self, kind: str, text: str, limit: int, call: Callable[[], list[Paper]]
    ) -> tuple[list[Paper], bool]:
        key = request_key(self.name, kind, text, limit, self.source.cache_tag) if self.cache else ""
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return hit, True
        papers = self._guarded(call)
        if self.cache is not None:
            self.cache.put(key, self.name, papers)
        return papers, False

    def _guarded(self, call: Callable[[], list[Paper]]) -> list[Paper]:
        now = self.clock()
        if now < self.skip_until:
            raise SourceSkippedError(
                f"{self.name}: skipped for {self.skip_until - now:.0f} s more after "
                f"{self.failures} consecutive failures (literature.skip_for_s).",
                source=self.name,
            )
        deadline = now + self.timeout_s

        def attempt() -> list[Paper]:
            if self.limiter is not None:
                self.limiter.wait(deadline)
            return call()

        try:
            papers = run_with_deadline(
                lambda: retry_call(
                    attempt, self.retry, deadline=deadline, clock=self.clock, sleep=self.sleep
                ),
                self.timeout_s,
                source=self.name,
            )
        except LiteratureError:
            self._failed()
            raise
        except Exception as exc:  # a library bug must not end the run: the source failed
            self._failed()
            raise SourceError(
                f"{self.name}: unexpected {type(exc).__name__}: {exc}", source=self.name
            ) from exc
        self.failures = 0
        return papers

    def _failed(self) -> None:
        self.failures += 1
        if self.failures >= self.skip_after_failures:
            self.skip_until = self.clock() + self.skip_for_s


def _as_list(paper: Paper | None) -> list[Paper]:
    return [paper] if paper is not None else []


class LiteratureCascade:
    """The ``Literature`` interface over guarded sources tried in order."""

    def __init__(self, sources: list[GuardedSource], clock: Clock = time.monotonic) -> None:
        self.sources = sources
        self._clock = clock
        self._keys = KeyRegistry()
        self._seen: dict[str, Paper] = {}
        self._lock = threading.Lock()  # novelty checks of a remote model search concurrently

    @property
    def source_names(self) -> list[SourceName]:
        """Names of the sources, in the order they are asked."""
        return [s.name for s in self.sources]

    def search(self, query: str, limit: int) -> SearchResult:
        """Ask each source in turn until one returns papers; never raises for a source."""
        outcomes: list[SourceOutcome] = []
        for source in self.sources:
            start = self._clock()
            try:
                papers, cached = source.search(query, limit)
            except LiteratureError as exc:
                outcomes.append(self._failure(source.name, exc, self._clock() - start))
                continue
            outcomes.append(
                SourceOutcome(
                    source=source.name,
                    ok=True,
                    results=len(papers),
                    seconds=round(self._clock() - start, 3),
                    cached=cached,
                )
            )
            if papers:
                return SearchResult(query=query, papers=self._adopt(papers), outcomes=outcomes)
        return SearchResult(query=query, papers=[], outcomes=outcomes)

    def paper(self, paper_id: str) -> Paper | None:
        """A paper returned earlier, else fetched from the source its id names; None if unknown."""
        with self._lock:
            if paper_id in self._seen:
                return self._seen[paper_id]
        prefix = paper_id.split(":", 1)[0]
        owner = {"s2": "semantic_scholar", "openalex": "openalex", "offline": "offline"}.get(prefix)
        for source in self.sources:
            if source.name != owner:
                continue
            try:
                found = source.fetch(paper_id)
            except LiteratureError as exc:
                self._failure(source.name, exc, 0.0)
                return None
            return self._adopt([found])[0] if found is not None else None
        return None

    def _adopt(self, papers: list[Paper]) -> list[Paper]:
        """Give each paper its run-wide unique key and remember it for ``paper()``."""
        adopted = []
        with self._lock:
            for paper in papers:
                key = self._keys.key_for(paper.paper_id, paper.authors, paper.year, paper.title)
                rekeyed = with_key(paper.bibtex, key)
                bibtex = rekeyed.text if rekeyed else paper.bibtex
                final = paper.model_copy(update={"citation_key": key, "bibtex": bibtex})
                self._seen[paper.paper_id] = final
                adopted.append(final)
        return adopted

    @staticmethod
    def _failure(name: SourceName, exc: LiteratureError, seconds: float) -> SourceOutcome:
        level = logging.INFO if isinstance(exc, SourceSkippedError) else logging.WARNING
        log.log(level, "literature source %s failed, trying the next: %s", name, exc)
        return SourceOutcome(source=name, ok=False, seconds=round(seconds, 3), error=str(exc))
