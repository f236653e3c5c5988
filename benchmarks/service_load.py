"""Latency of the service under 50 concurrent review submissions, on loopback only.

The API runs as its own process (``python -m service --workers 0``, the same code as
``scientist serve``); two worker processes, started and idle before the burst, run the
real review graph with the scripted reviewer model (``tests/service_worker_entry.py``: no
model time, so what is measured is the service: upload, PDF checks, queue, graph, report
rendering). 50 clients submit the
sample PDF at once, then poll until their job is done. Reported: p50/p95/max latency of
``POST /v1/reviews`` and of ``GET /v1/reviews/{id}``, time until every job was done, and the
checks that every submission was accepted, completed, and completed exactly once.
Prints a table and, as the last stdout line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from rich.table import Table

from benchmarks._common import emit_json, fmt, make_console, percentile, verdict
from tests.service_support import TOKENS, service_config, spawn_worker

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "papers" / "multi_style_adapter.pdf"
POST_P95_TARGET_S = 1.0  # issue #15: the upload takes only the cheap checks, in warm children
POLL_S = 1.0  # each client polls its job once a second


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_api(config_overrides: dict[str, Any], port: int, log: Path) -> subprocess.Popen[bytes]:
    """``python -m service --workers 0`` with the test settings, on 127.0.0.1:port."""
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "0", "--preset", "debug"]
    for key, value in config_overrides.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.Popen(
        command, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env
    )


def wait_healthy(url: str, timeout: float = 60) -> None:
    """Until /healthz answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API at {url} did not come up")


def wait_workers_ready(logs: list[Path], timeout: float = 120) -> None:
    """Until every worker has started and logged that it watches the queue."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(log.is_file() and "watching" in log.read_text() for log in logs):
            return
        time.sleep(0.2)
    raise RuntimeError(f"workers did not start; see {logs}")


def submit(url: str, index: int) -> tuple[int, str, float]:
    """One submission: status, job id, seconds."""
    user = list(TOKENS)[index % len(TOKENS)]
    headers = {"Authorization": f"Bearer {TOKENS[user]}"}
    data = SAMPLE.read_bytes()
    start = time.perf_counter()
    response = httpx.post(
        f"{url}/v1/reviews",
        headers=headers,
        files={"file": (SAMPLE.name, data, "application/pdf")},
        data={"num_reviewers": "2", "num_reflections": "1"},
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    return response.status_code, response.json().get("id", ""), elapsed


def poll(url: str, index: int, job_id: str, get_times: list[float]) -> str:
    """Poll one job until it is finished; its final status."""
    user = list(TOKENS)[index % len(TOKENS)]
    headers = {"Authorization": f"Bearer {TOKENS[user]}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            start = time.perf_counter()
            body = client.get(f"/v1/reviews/{job_id}").json()
            get_times.append(time.perf_counter() - start)
            if body["status"] in ("done", "failed", "cancelled"):
                return str(body["status"])
            time.sleep(POLL_S)
    return "timeout"


def queue_checks(database: Path, ids: list[str]) -> dict[str, int]:
    """Completions and claims per job, straight from the job database."""
    with sqlite3.connect(database) as conn:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(
            f"SELECT completions, attempts FROM jobs WHERE id IN ({marks})", ids
        ).fetchall()
        completed_events = conn.execute(
            f"SELECT COUNT(*) FROM job_log WHERE event = 'completed' AND job_id IN ({marks})", ids
        ).fetchone()[0]
    return {
        "rows": len(rows),
        "completed_once": sum(1 for c, _ in rows if c == 1),
        "duplicated": sum(1 for c, _ in rows if c > 1),
        "reclaimed": sum(1 for _, a in rows if a > 1),
        "completed_events": int(completed_events),
    }


def run(submissions: int, workers: int, root: Path) -> dict[str, Any]:
    """Start the service, load it, stop it; the figures."""
    config = service_config(
        root, max_concurrent_jobs=submissions, rate_limit_per_minute=submissions * 2
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs = [start_api(_flat(config.overrides), port, root / "api.log")]
    try:
        wait_healthy(url)
        names = [f"bench-worker-{i}" for i in range(workers)]
        procs += [spawn_worker(config, root, name=name) for name in names]
        wait_workers_ready([root / f"{name}.log" for name in names])
        idle_status, idle_id, idle_post_s = submit(url, 0)  # one request on an idle service
        poll(url, 0, idle_id, [])
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=submissions) as pool:
            posted = list(pool.map(lambda i: submit(url, i), range(submissions)))
        get_times: list[float] = []
        ids = [job_id for _, job_id, _ in posted]
        with ThreadPoolExecutor(max_workers=submissions) as pool:
            statuses = list(pool.map(lambda a: poll(url, a[0], a[1], get_times), enumerate(ids)))
        total_s = time.perf_counter() - start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    post_times = [t for _, _, t in posted]
    checks = queue_checks(root / "data" / "service" / "jobs.sqlite", [i for i in ids if i])
    # The probe job ran alone before the burst; it is not counted in the figures below.
    return {
        "submissions": submissions,
        "workers": workers,
        "accepted": sum(1 for status, _, _ in posted if status == 202),
        "done": statuses.count("done"),
        "distinct_ids": len(set(ids)),
        **checks,
        "idle_post_s": _round(idle_post_s) if idle_status == 202 else None,
        "post_p50_s": _round(percentile(post_times, 50)),
        "post_p95_s": _round(percentile(post_times, 95)),
        "post_max_s": _round(max(post_times)),
        "get_p50_s": _round(percentile(get_times, 50)),
        "get_p95_s": _round(percentile(get_times, 95)),
        "gets": len(get_times),
        "all_done_s": round(total_s, 2),
        "jobs_per_s": round(statuses.count("done") / total_s, 2),
    }


def _flat(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, dict) and key != "tokens":
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def report(figures: dict[str, Any]) -> None:
    """The table for people."""
    console = make_console()
    table = Table(title=f"{figures['submissions']} concurrent review submissions, loopback")
    for column in ("request", "p50 (ms)", "p95 (ms)", "max (ms)", "count"):
        table.add_column(column, justify="right" if column != "request" else "left")
    ms = lambda v: fmt(None if v is None else v * 1000, 1)  # noqa: E731
    table.add_row(
        "POST /v1/reviews",
        ms(figures["post_p50_s"]),
        ms(figures["post_p95_s"]),
        ms(figures["post_max_s"]),
        str(figures["submissions"]),
    )
    table.add_row("POST /v1/reviews, idle service", ms(figures["idle_post_s"]), "", "", "1")
    table.add_row(
        "GET /v1/reviews/{id}",
        ms(figures["get_p50_s"]),
        ms(figures["get_p95_s"]),
        "",
        str(figures["gets"]),
    )
    console.print(table)
    ok = (
        figures["accepted"]
        == figures["done"]
        == figures["completed_once"]
        == figures["submissions"]
        and figures["duplicated"] == 0
    )
    console.print(
        f"accepted {figures['accepted']}, done {figures['done']}, completed exactly once "
        f"{figures['completed_once']}, duplicated {figures['duplicated']}: "
        f"{'PASS' if ok else 'MISS'}; all done after {figures['all_done_s']} s "
        f"({figures['jobs_per_s']} jobs/s with {figures['workers']} workers); "
        f"POST p95 < {POST_P95_TARGET_S:g} s: "
        f"{verdict(figures['post_p95_s'], POST_P95_TARGET_S, higher_is_better=False)}"
    )


def main() -> None:
    """Parse flags, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="service-load-") as tmp:
        figures = run(args.submissions, args.workers, Path(tmp))
    report(figures)
    emit_json(figures)


if __name__ == "__main__":
    main()
