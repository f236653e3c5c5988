"""Offline literature index: build time and query latency (p50/p95) over the ICLR corpus.

Builds the SQLite FTS5 index from ``../shared/data/iclr2022/calibration.jsonl`` (relative
to the repository) ``--builds`` times (median reported), then times ``OfflineIndex.search``
for topic queries and for every paper's exact title (``--limit`` results each), and the
same queries through the cascade once its response cache is warm. Prints a table and, as
the last stdout line, one JSON object; without the corpus it prints ``{"skipped": reason}``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import emit_json, fmt, make_console, median, percentile
from rich.table import Table

from core.literature.corpus import read_corpus
from core.literature.factory import build_literature
from core.literature.offline import OfflineIndex, build_index
from core.settings import load_settings

CORPUS = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "iclr2022"
    / "calibration.jsonl"
)
TOPICS = [
    "grokking modular arithmetic",
    "sparse attention transformers",
    "graph neural networks oversmoothing",
    "contrastive self-supervised learning",
    "reinforcement learning reward shaping",
    "federated learning heterogeneity",
    "adversarial robustness certification",
    "knowledge distillation language models",
    "diffusion models image generation",
    "meta-learning few-shot classification",
    "neural network pruning lottery ticket",
    "continual learning catastrophic forgetting",
    "optimal transport domain adaptation",
    "bayesian optimisation hyperparameters",
    "label noise robust training",
    "weight decay generalisation",
    "curriculum learning",
    "normalising flows density estimation",
    "prompt tuning",
    "active learning uncertainty sampling",
]


def time_queries(search: Callable[[str], Any], queries: list[str]) -> list[float]:
    """Milliseconds per query, after one untimed warm-up query."""
    search(queries[0])
    times = []
    for query in queries:
        start = time.perf_counter()
        search(query)
        times.append((time.perf_counter() - start) * 1000)
    return times


def stats(times: list[float]) -> dict[str, Any]:
    """Count, p50, p95 and max in ms."""
    return {
        "queries": len(times),
        "p50_ms": round(percentile(times, 50) or 0, 3),
        "p95_ms": round(percentile(times, 95) or 0, 3),
        "max_ms": round(max(times), 3),
    }


def measure(corpus: Path, builds: int, limit: int) -> dict[str, Any]:
    """Build times and query latencies."""
    with tempfile.TemporaryDirectory() as tmp:
        index_file = Path(tmp) / "index.sqlite"
        build_s = [build_index([corpus], index_file).seconds for _ in range(builds)]
        index = OfflineIndex(index_file)
        titles = [r.title for r in read_corpus(corpus)]
        settings = load_settings(
            "default",
            {
                "data_dir": tmp,
                "literature": {"sources": ["offline"], "index_path": str(index_file)},
            },
        )
        cascade = build_literature(settings)
        for query in TOPICS:
            cascade.search(query, limit)  # fill the response cache
        return {
            "records": index.count(),
            "index_mb": round(index_file.stat().st_size / 1e6, 2),
            "builds": builds,
            "build_s": round(median(build_s) or 0, 3),
            "topic": stats(time_queries(lambda q: index.search(q, limit), TOPICS)),
            "title": stats(time_queries(lambda q: index.search(q, limit), titles)),
            "cascade_cached": stats(time_queries(lambda q: cascade.search(q, limit), TOPICS)),
        }


def report(figures: dict[str, Any]) -> None:
    """Print the table."""
    table = Table(
        title=f"Offline index over {figures['records']} ICLR abstracts "
        f"({figures['index_mb']} MB, built in {figures['build_s']:.2f} s, median of "
        f"{figures['builds']})"
    )
    for column in ("queries", "n", "p50 ms", "p95 ms", "max ms"):
        table.add_column(column, justify="left" if column == "queries" else "right")
    for label, key in (
        ("topic queries (BM25)", "topic"),
        ("exact titles (BM25)", "title"),
        ("topic queries, cascade, cache warm", "cascade_cached"),
    ):
        row = figures[key]
        table.add_row(
            label,
            str(row["queries"]),
            fmt(row["p50_ms"], 2),
            fmt(row["p95_ms"], 2),
            fmt(row["max_ms"], 2),
        )
    make_console().print(table)


def main() -> None:
    """Measure and print the table and the JSON figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="A .jsonl corpus.")
    parser.add_argument("--builds", type=int, default=3, help="Index builds timed.")
    parser.add_argument("--limit", type=int, default=10, help="Results per query.")
    args = parser.parse_args()
    if not args.corpus.is_file():
        reason = f"no corpus at {args.corpus}"
        print(f"skipped: {reason}")
        emit_json({"skipped": reason})
        return
    figures = measure(args.corpus, args.builds, args.limit)
    report(figures)
    emit_json({"corpus": str(args.corpus), "limit": args.limit, **figures})


if __name__ == "__main__":
    main()
