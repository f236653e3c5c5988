"""``build_literature(settings)``: the cascade that ``literature.sources`` asks for."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from core.clock import Clock
from core.literature.cache import SourceCache
from core.literature.cascade import GuardedSource, LiteratureCascade, Source
from core.literature.guard import RateLimiter, RetryPolicy
from core.literature.http import timeouts
from core.literature.models import SourceName
from core.literature.offline import OfflineIndex
from core.literature.openalex import OpenAlexSource
from core.literature.semantic_scholar import SemanticScholarSource
from core.settings import LiteratureSettings, Settings

SECONDS_PER_DAY = 86400.0


def index_path(settings: Settings) -> Path:
    """Where the offline index lives."""
    return settings.literature.index_path or settings.data_dir / "literature" / "index.sqlite"


def cache_path(settings: Settings) -> Path:
    """Where the literature response cache lives."""
    return settings.literature.cache_path or settings.data_dir / "literature" / "cache.sqlite"


def make_source(
    name: SourceName, settings: Settings, http_client: httpx.Client | None = None
) -> Source:
    """One unguarded source, configured from settings."""
    lit = settings.literature
    limits = timeouts(lit.timeout_s, lit.connect_timeout_s)
    if name == "semantic_scholar":
        key = lit.s2_api_key.get_secret_value() if lit.s2_api_key else None
        return SemanticScholarSource(api_url=lit.s2_api_url, key=key, timeout=limits)
    if name == "openalex":
        return OpenAlexSource(
            http_client or httpx.Client(),
            base_url=lit.openalex_url,
            mailto=lit.openalex_mailto,
            timeout=limits,
        )
    return OfflineIndex(index_path(settings))


def _interval(name: SourceName, lit: LiteratureSettings) -> float:
    return {"semantic_scholar": lit.s2_min_interval_s, "openalex": lit.openalex_min_interval_s}.get(
        name, 0.0
    )


def build_literature(
    settings: Settings,
    *,
    http_client: httpx.Client | None = None,
    sources: dict[SourceName, Source] | None = None,
    clock: Clock = time.monotonic,
) -> LiteratureCascade:
    """The cascade over ``literature.sources`` in order; ``sources`` replaces any by name."""
    lit = settings.literature
    cache = (
        SourceCache(cache_path(settings), lit.cache_ttl_days * SECONDS_PER_DAY)
        if lit.cache_enabled
        else None
    )
    guarded = []
    for name in dict.fromkeys(lit.sources):
        source = (sources or {}).get(name) or make_source(name, settings, http_client)
        interval = _interval(name, lit)
        guarded.append(
            GuardedSource(
                source=source,
                timeout_s=lit.timeout_s,
                limiter=RateLimiter(interval, clock=clock) if interval > 0 else None,
                retry=RetryPolicy(max_retries=lit.max_retries, backoff_s=lit.backoff_s),
                cache=cache,
                skip_after_failures=lit.skip_after_failures,
                skip_for_s=lit.skip_for_s,
                clock=clock,
            )
        )
    return LiteratureCascade(guarded, clock=clock)
