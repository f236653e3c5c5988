"""What the bubblewrap box adds to one experiment run: boxed against unboxed, same run.

A minimal experiment (imports json, writes ``final_info.json``) runs ``--repeats`` times
(default 15) through ``SandboxRunner`` with ``isolation="none"`` (rlimits and a process
group only) and with ``isolation="bwrap"``, alternating, after one warm-up of each. The
figure is the difference of the medians, the time the box costs per run; the target is
under 100 ms. Both sides run in the same process on the same machine, so the difference
holds on a loaded machine where an absolute time would not. Prints a table and, as the
last stdout line, one JSON object; without bubblewrap it prints ``{"skipped": reason}``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import emit_json, fmt, make_console, median, verdict
from rich.table import Table

from scientist.experiments.runner import SandboxLimits, SandboxRunner

TARGET_MS = 100.0
EXPERIMENT = """import argparse, json, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--out_dir")
out = pathlib.Path(parser.parse_args().out_dir)
out.mkdir(exist_ok=True)
(out / "final_info.json").write_text(json.dumps({"g": {"means": {"m": 1.0}}}))
"""


def one_run(runner: SandboxRunner, work: Path) -> float:
    """Seconds for one run of the minimal experiment in ``work``, checked to succeed."""
    start = time.perf_counter()
    outcome = runner.run_experiment(work, "run_1")
    seconds = time.perf_counter() - start
    if outcome.status != "ok":
        raise SystemExit(f"the benchmark run failed: {outcome.reason}\n{outcome.error_tail}")
    return seconds


def main() -> None:
    """Time both sides and report the box's cost per run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    repeats = parser.parse_args().repeats
    console = make_console()
    if shutil.which("bwrap") is None:
        console.print("bubblewrap is not installed (make setup installs it); nothing to measure")
        emit_json({"skipped": "bubblewrap is not installed"})
        return
    limits = SandboxLimits(timeout_s=60, memory_mb=1024, cpus=1)
    runners = {
        "none": SandboxRunner(limits, isolation="none"),
        "bwrap": SandboxRunner(limits, isolation="bwrap"),
    }
    times: dict[str, list[float]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as scratch:
        work = Path(scratch)
        (work / "experiment.py").write_text(EXPERIMENT)
        for runner in runners.values():
            one_run(runner, work)  # warm-up
        for _ in range(repeats):
            for name, runner in runners.items():
                times[name].append(one_run(runner, work))
    medians = {name: median(values) or 0.0 for name, values in times.items()}
    overhead_ms = (medians["bwrap"] - medians["none"]) * 1000
    table = Table(title=f"One minimal experiment run, median of {repeats}")
    for column in ("isolation", "median ms", "min ms", "max ms"):
        table.add_column(column)
    for name, values in times.items():
        row = (medians[name] * 1000, min(values) * 1000, max(values) * 1000)
        table.add_row(name, *(fmt(v) for v in row))
    console.print(table)
    result = verdict(overhead_ms, TARGET_MS, higher_is_better=False)
    console.print(
        f"the box costs {overhead_ms:.1f} ms per run (target < {TARGET_MS:g} ms): {result}"
    )
    emit_json(
        {
            "repeats": repeats,
            "none_ms_median": round(medians["none"] * 1000, 2),
            "bwrap_ms_median": round(medians["bwrap"] * 1000, 2),
            "overhead_ms_per_run": round(overhead_ms, 2),
            "target_ms": TARGET_MS,
            "verdict": result,
        }
    )


if __name__ == "__main__":
    main()
