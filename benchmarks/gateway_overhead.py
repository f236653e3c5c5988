"""The gateway's own cost per call, against litellm.completion on the same zero-latency server.

A local OpenAI-compatible server (127.0.0.1, answers instantly with a fixed chat.completion)
takes every call, so what is timed is client-side work only. Paths, timed in the same run:

- httpx: one raw POST (what the HTTP round trip itself costs, for reference);
- litellm: ``litellm.completion`` directly, with the same arguments the gateway sends;
- gateway: ``Gateway.complete(..., role="writer")`` (no cache);
- gateway structured: the same with a pydantic schema (JSON mode, validation);
- gateway cache hit: a Gateway with a SQLite ResponseCache, the same call repeated.

Each path is warmed up, then timed N times in alternating blocks (A B C ... then ... C B A)
so that a noisy machine hurts all paths alike. Overhead = gateway median - litellm median.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from _common import FakeOpenAIServer, emit_json, fmt, make_console, median, percentile, verdict
from pydantic import BaseModel, Field
from rich.table import Table

import gateway
from core.settings import load_settings
from gateway._litellm import load_litellm

TARGET_MS = 5.0
MESSAGES = [{"role": "user", "content": "hi"}]
LABELS = {
    "httpx": "httpx POST (raw HTTP, reference)",
    "litellm": "litellm.completion (direct)",
    "gateway": "Gateway.complete",
    "gateway_structured": "Gateway.complete(schema=...)",
    "gateway_cache_hit": "Gateway.complete, cache hit",
}


class Verdict(BaseModel):
    """The small schema of the structured path."""

    title: str
    score: int = Field(ge=1, le=10)
    accept: bool


CONTENT = json.dumps({"title": "A fine paper", "score": 7, "accept": True})


def make_paths(url: str, cache_dir: Path) -> dict[str, Callable[[], Any]]:
    """One zero-argument callable per timed path, all aimed at the fake server."""
    litellm = load_litellm()  # the bundled price map, no fetch
    settings = load_settings(
        "default",
        {
            "llm": {
                "models": {"writer": "openai/bench"},
                "api_bases": {"openai/bench": url},
                "cache_enabled": False,
            }
        },
    )
    plain = gateway.Gateway(settings)
    cached = gateway.Gateway(settings, cache=gateway.ResponseCache(cache_dir / "llm.sqlite"))
    llm = settings.llm
    cap = settings.profile("openai/bench").default_max_tokens
    client = httpx.Client()
    body = {
        "model": "bench",
        "messages": MESSAGES,
        "temperature": llm.temperature,
        "max_tokens": cap,
    }
    return {
        "httpx": lambda: client.post(f"{url}/chat/completions", json=body).json(),
        "litellm": lambda: litellm.completion(
            model="openai/bench",
            messages=MESSAGES,
            api_base=url,
            api_key="x",
            num_retries=0,
            max_retries=0,
            temperature=llm.temperature,
            max_tokens=cap,
            timeout=llm.request_timeout_s,
        ),
        "gateway": lambda: plain.complete(MESSAGES, role="writer"),
        "gateway_structured": lambda: plain.complete(MESSAGES, role="writer", schema=Verdict),
        "gateway_cache_hit": lambda: cached.complete(MESSAGES, role="writer"),
    }


def check_paths(paths: dict[str, Callable[[], Any]]) -> None:
    """Fail loudly unless every path really returns what it should (warm-up call)."""
    litellm_reply = paths["litellm"]()
    assert litellm_reply.choices[0].message.content == CONTENT, litellm_reply
    assert paths["gateway"]() == CONTENT
    assert paths["gateway_structured"]() == Verdict.model_validate_json(CONTENT)
    assert paths["gateway_cache_hit"]() == CONTENT  # the first call fills the cache
    assert paths["httpx"]()["choices"][0]["message"]["content"] == CONTENT


def time_paths(
    paths: dict[str, Callable[[], Any]], n: int, block: int, warmup: int
) -> dict[str, list[float]]:
    """Milliseconds per call, ``n`` per path, in blocks whose order alternates."""
    for call in paths.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for index in range(-(-n // block)):
        for name in names if index % 2 == 0 else reversed(names):
            call = paths[name]
            for _ in range(min(block, n - len(times[name]))):
                start = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def summarise(times: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
    """Median, p95 and mean per path, plus the median overhead over direct litellm."""
    base = median(times["litellm"]) or 0.0
    stats: dict[str, dict[str, float | None]] = {}
    for name, values in times.items():
        mid = median(values)
        stats[name] = {
            "median_ms": mid,
            "p95_ms": percentile(values, 95),
            "mean_ms": sum(values) / len(values) if values else None,
            "overhead_ms": None if mid is None else mid - base,
            "calls": len(values),
        }
    return stats


def report(stats: dict[str, dict[str, float | None]], n: int) -> dict[str, Any]:
    """Print the table and the verdicts; return the targets."""
    console = make_console()
    table = Table(title=f"Per-call cost against a zero-latency local server ({n} calls per path)")
    for col in ("path", "median ms", "p95 ms", "mean ms", "vs litellm (median)"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for name, row in stats.items():
        over = row["overhead_ms"]
        table.add_row(
            LABELS[name],
            fmt(row["median_ms"], 2),
            fmt(row["p95_ms"], 2),
            fmt(row["mean_ms"], 2),
            "—" if over is None else f"{over:+.2f}",
        )
    console.print(table)
    targets = {}
    for name in ("gateway", "gateway_structured"):
        value = stats[name]["overhead_ms"]
        targets[f"{name}_overhead_ms"] = {
            "target": TARGET_MS,
            "value": value,
            "verdict": verdict(value, TARGET_MS, higher_is_better=False),
        }
        console.print(
            f"target {LABELS[name]} overhead < {TARGET_MS:.0f} ms: "
            f"{fmt(value, 2)} ms -> {targets[f'{name}_overhead_ms']['verdict']}"
        )
    return targets


def main() -> None:
    """Start the fake server, check and time every path, print the table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="timed calls per path")
    parser.add_argument("--block", type=int, default=25, help="calls per alternating block")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls per path")
    args = parser.parse_args()
    with FakeOpenAIServer(CONTENT) as server, tempfile.TemporaryDirectory() as tmp:
        paths = make_paths(server.url, Path(tmp))
        check_paths(paths)
        times = time_paths(paths, args.n, args.block, args.warmup)
    stats = summarise(times)
    targets = report(stats, args.n)
    emit_json(
        {
            "n": args.n,
            "block": args.block,
            "litellm_version": version("litellm"),
            "paths": stats,
            "targets": targets,
        }
    )


if __name__ == "__main__":
    main()
