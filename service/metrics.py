"""``GET /metrics``: Prometheus text format, computed from the job store on each scrape.

Everything comes from the one SQLite file the API and the workers share, so any API
process answers for the whole service, and nothing is lost when one restarts:

- ``autoscholar_queue_depth``, ``autoscholar_jobs{kind,state}``: gauges from the jobs table;
- ``autoscholar_review_latency_seconds``: done reviews, submission to completion;
- ``autoscholar_provider_*_total{model}``: calls, cache hits, tokens, cost, 429 answers
  and seconds waited at the shared backoff, of finished jobs (done, failed or cancelled).
  The workers sum each job's ledger once when it ends (``service.usage``); a job's calls
  appear when it finishes, and are never counted twice.

The registry is the app's own (``CollectorRegistry`` per app), never the process-global one.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from service.models import JobKind, JobStatus
from service.store import JobStore

PREFIX = "autoscholar"
KINDS: tuple[JobKind, ...] = ("review", "run")
STATES: tuple[JobStatus, ...] = ("queued", "running", "done", "failed", "cancelled")
# A review against a remote model takes minutes; the embedded model, longer.
LATENCY_BOUNDS_S = [30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0]
# Text format 0.0.4, which every Prometheus parses (our names need no 1.0.0 escaping).
METRICS_MEDIA_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class StoreCollector(Collector):
    """Computes every metric from ``store`` when scraped."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """The metric families, fresh from the store."""
        yield from self._jobs()
        yield self._latency()
        yield from self._usage()

    def _jobs(self) -> Iterator[Metric]:
        counts = self.store.counts_by_kind()
        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Jobs waiting in the queue.")
        depth.add_metric([], sum(n for (_, state), n in counts.items() if state == "queued"))
        yield depth
        jobs = GaugeMetricFamily(
            f"{PREFIX}_jobs", "Jobs by kind and state.", labels=["kind", "state"]
        )
        for kind in KINDS:
            for state in STATES:
                jobs.add_metric([kind, state], counts.get((kind, state), 0))
        yield jobs

    def _latency(self) -> Metric:
        cumulative, count, total = self.store.latency_histogram("review", LATENCY_BOUNDS_S)
        buckets = [
            (floatToGoString(b), n) for b, n in zip(LATENCY_BOUNDS_S, cumulative, strict=True)
        ]
        return HistogramMetricFamily(
            f"{PREFIX}_review_latency_seconds",
            "Done reviews: seconds from submission to completion (queue wait included).",
            buckets=[*buckets, ("+Inf", count)],
            sum_value=total,
        )

    def _usage(self) -> Iterator[Metric]:
        usage = self.store.usage_totals()
        families = {
            "calls": ("Provider calls of finished jobs (cache hits included).", "calls"),
            "cache_hits": ("Calls answered by the response cache.", "cache_hits"),
            "cost_usd": ("Provider cost of finished jobs, USD.", "cost_usd"),
            "rate_limited": ("HTTP 429 answers the provider gave.", "rate_limited"),
            "backoff_wait_seconds": (
                "Seconds calls waited at the model's shared 429 backoff.",
                "backoff_wait_s",
            ),
        }
        for name, (doc, field) in families.items():
            family = CounterMetricFamily(f"{PREFIX}_provider_{name}", doc, labels=["model"])
            for row in usage:
                family.add_metric([row.model], getattr(row, field))
            yield family
        tokens = CounterMetricFamily(
            f"{PREFIX}_provider_tokens",
            "Paid tokens of finished jobs, by model and type (prompt, completion).",
            labels=["model", "type"],
        )
        for row in usage:
            tokens.add_metric([row.model, "prompt"], row.prompt_tokens)
            tokens.add_metric([row.model, "completion"], row.completion_tokens)
        yield tokens


def metrics_registry(store: JobStore) -> CollectorRegistry:
    """A registry of its own holding the store's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)
