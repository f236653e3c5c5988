"""The paper graph's own overhead per idea, and the size of a run folder.

Every side effect is a fast fake (tests/pipeline_support.py): a zero-latency scripted model
that fills any schema, an editor that appends a comment, a runner that writes
final_info.json, a compiler that copies a sample PDF, one-paper literature. The stages' own
code (prompt rendering, LaTeX assembly, PDF text, reports) still runs.

Timed in the same run, alternating:
- graph: ``run_pipeline`` (LangGraph, SqliteSaver checkpoints, done-markers, run.json);
- direct: the same stage functions called one after another with the same deps, no graph.

Overhead per idea = (graph − direct) / ideas. Target: under 2 s per idea.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import emit_json, fmt, make_console, median, verdict
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.runstore import new_run
from gateway import Gateway
from gateway.ledger import Ledger
from gateway.scripted import ScriptedLLM
from graphs.paper import STAGE_GRAPHS
from reviewer.review.reviewing import ReviewDeps
from scientist.ideas.template import load_template
from scientist.pipeline import stages
from scientist.pipeline.deps import PipelineDeps
from scientist.runs.run import run_pipeline
from scientist.runs.wiring import RunRequest, settings_for
from tests.pipeline_support import (
    ROOT,
    FakeCompiler,
    FakeEditor,
    FakeLiterature,
    FakeRunner,
    PipelineModel,
    fake_deps_factory,
    fast_overrides,
)

TARGET_S = 2.0
TOY = str(ROOT / "tests" / "fixtures" / "template_toy")


def overrides(tmp: Path, ideas: int) -> list[str]:
    """Fast settings with ``ideas`` ideas taken through the pipeline."""
    return [
        *fast_overrides(tmp),
        f"ideas.num_ideas={ideas}",
        f"pipeline.ideas_to_run={ideas}",
        "pipeline.skip_not_novel=false",
    ]


def time_graph(tmp: Path, ideas: int) -> tuple[float, int, int]:
    """Seconds for run_pipeline, ideas that finished, and the run folder's size in bytes."""
    request = RunRequest(template=TOY, preset="debug", overrides=overrides(tmp, ideas))
    start = time.perf_counter()
    run, manifest = run_pipeline(request, deps_factory=fake_deps_factory(PipelineModel()))
    seconds = time.perf_counter() - start
    done = sum(1 for o in manifest.ideas if o.status == "done")
    size = sum(p.stat().st_size for p in run.root.rglob("*") if p.is_file())
    return seconds, done, size


def time_direct(tmp: Path, ideas: int) -> float:
    """Seconds for the same stage functions called in sequence, without the graph."""
    settings = settings_for("debug", overrides(tmp, ideas))
    run = new_run(settings.runs_dir, "direct")
    gateway = Gateway(settings, backend=ScriptedLLM(PipelineModel()), ledger=Ledger(run.ledger))
    deps = PipelineDeps(
        settings=settings,
        gateway=gateway,
        graphs=STAGE_GRAPHS,
        review=ReviewDeps.from_settings(settings, gateway),
        template=load_template(TOY),
        run=run,
        literature=FakeLiterature(),
        editor=FakeEditor(),
        runner=FakeRunner(),
        compiler=FakeCompiler(),
    )
    start = time.perf_counter()
    chosen = stages.select_ideas(stages.ideas_stage(deps, None), settings)
    for idea in chosen:
        record = stages.experiments_stage(deps, idea, None)
        stages.writeup_stage(deps, idea, record, None)
        stages.review_stage(deps, idea, revision=False)
    return time.perf_counter() - start


def main() -> None:
    """Alternate graph and direct runs; report the overhead per idea and the folder size."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ideas", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    graph_s, direct_s, sizes, done = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        time_direct(tmp / "warm", 1)  # imports, first-use costs
        for i in range(args.repeats):
            seconds, finished, size = time_graph(tmp / f"g{i}", args.ideas)
            graph_s.append(seconds)
            done.append(finished)
            sizes.append(size)
            direct_s.append(time_direct(tmp / f"d{i}", args.ideas))
    g, d = median(graph_s), median(direct_s)
    per_idea = None if g is None or d is None else (g - d) / args.ideas  # signed: noise shows
    console = make_console()
    table = Table(title=f"paper graph overhead ({args.ideas} ideas, {args.repeats} repeats)")
    for column in ("path", "median s", "per idea s"):
        table.add_column(column)
    table.add_row("graph (run_pipeline)", fmt(g, 2), fmt(None if g is None else g / args.ideas, 2))
    table.add_row("direct stage calls", fmt(d, 2), fmt(None if d is None else d / args.ideas, 2))
    table.add_row("overhead (graph − direct)", "", fmt(per_idea, 3))
    console.print(table)
    size_kb = (median([float(s) for s in sizes]) or 0) / 1024
    console.print(
        f"run folder: {size_kb:,.0f} KiB for {args.ideas} ideas; ideas finished per run: {done}"
    )
    console.print(
        f"overhead target < {TARGET_S} s per idea: "
        f"{verdict(per_idea, TARGET_S, higher_is_better=False)}"
    )
    emit_json(
        {
            "ideas": args.ideas,
            "repeats": args.repeats,
            "graph_s_median": g,
            "direct_s_median": d,
            "overhead_s_per_idea": per_idea,
            "target_s_per_idea": TARGET_S,
            "verdict": verdict(per_idea, TARGET_S, higher_is_better=False),
            "run_folder_kib": round(size_kb, 1),
            "ideas_done": done,
        }
    )


if __name__ == "__main__":
    main()
