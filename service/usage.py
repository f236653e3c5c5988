"""A finished job's provider usage per model, summed from its ledger by the worker.

The API process never sees the workers' calls. Rather than have every scrape of
``/metrics`` read every job's ``ledger.jsonl``, the worker sums the ledger once when the
job ends and stores the sums with the outcome (``job_usage`` rows, written in the same
transaction as the outcome, so a job's usage is counted exactly once: a worker that lost
its claim writes neither). The ledger file spans every attempt of the job, so a job resumed
after a crash is counted in full.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from core.runstore import RunPaths
from gateway.ledger import read_entries
from gateway.types import LedgerEntry
from service.config import ServicePaths
from service.models import JobKind


class ModelUsage(BaseModel):
    """One model's calls in one job (tokens and cost of paid calls only, as in the ledger)."""

    model: str
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    rate_limited: int = 0
    backoff_wait_s: float = 0.0


def usage_by_model(entries: Iterable[LedgerEntry]) -> list[ModelUsage]:
    """Ledger rows summed per model, sorted by model name."""
    usage: dict[str, ModelUsage] = {}
    for entry in entries:
        row = usage.setdefault(entry.model, ModelUsage(model=entry.model))
        row.calls += 1
        row.rate_limited += entry.rate_limited
        row.backoff_wait_s += entry.backoff_wait_s
        if entry.cache_hit:
            row.cache_hits += 1
            continue
        row.prompt_tokens += entry.prompt_tokens
        row.completion_tokens += entry.completion_tokens
        row.cost_usd += entry.cost_usd
    return [usage[m] for m in sorted(usage)]


def ledger_path(paths: ServicePaths, job_id: str, kind: JobKind) -> Path:
    """Where a job's handler keeps its ledger."""
    if kind == "run":
        return RunPaths(paths.run_dir(job_id)).ledger
    return paths.job_dir(job_id) / "ledger.jsonl"


def job_usage(paths: ServicePaths, job_id: str, kind: JobKind) -> list[ModelUsage]:
    """A job's usage per model; none when it made no call (no ledger file)."""
    path = ledger_path(paths, job_id, kind)
    return usage_by_model(read_entries(path)) if path.is_file() else []
