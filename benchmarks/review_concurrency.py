"""Wall time of a 5-reviewer ensemble against a single reviewer, with 200 ms per LLM call.

The sample paper's text is extracted once, before timing. A local OpenAI-compatible server
answers every call after a fixed 200 ms with JSON valid for
the schema asked for. Three configurations run in the same process, on the same paper:
one reviewer; five reviewers run concurrently (our graph); five reviewers one after another
(LangGraph ``max_concurrency=1``, as The AI Scientist does). Each has 2 reflection rounds.
Target: the concurrent ensemble takes at most 1.5x the single reviewer's wall time.
Tokens per review are counted with litellm's tokenizer (cl100k) on the real prompts.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import chat_completion_body, emit_json, make_console, verdict
from core.settings import load_settings
from gateway import Gateway
from gateway._litellm import load_litellm
from graphs.review import build_review_graph
from reviewer.review.nodes import assemble_report
from reviewer.review.pdf_text import extract_paper
from reviewer.review.reviewing import ReviewDeps
from tests.unit.review_script import review_json

LATENCY_S = 0.2
MODEL = "openai/bench-reviewer"
SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "papers" / "layerwise_lr_grokking.pdf"
)


def _reply_for(body: dict[str, Any]) -> str:
    name = body.get("response_format", {}).get("json_schema", {}).get("name", "")
    if name == "MetaReviewReply":
        return json.dumps(
            {"summary": "s", "strengths": ["a"], "weaknesses": ["b"], "disagreements": []}
        )
    if name == "ReflectionReply":
        return json.dumps({"thought": "t", "review": review_json(5), "done": False})
    return json.dumps(review_json(5))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        time.sleep(LATENCY_S)
        content = _reply_for(body)
        data = json.dumps(chat_completion_body(content)).encode()
        with self.server.lock:  # tokens are counted after the timed runs, off the clock
            self.server.exchanges.append((body["messages"], content))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    lock = threading.Lock()
    exchanges: list[tuple[list[dict[str, str]], str]] = []  # noqa: RUF012


def _tokens(exchanges: list[tuple[list[dict[str, str]], str]]) -> int:
    """Prompt plus completion tokens of the exchanges (cl100k, litellm's default counter)."""
    count = load_litellm().token_counter
    return sum(
        count(model="gpt-4o", messages=m) + count(model="gpt-4o", text=c) for m, c in exchanges
    )


def _inputs() -> dict[str, str]:
    """The sample paper's text, extracted once before any timing (PDF work is not measured)."""
    if SAMPLE.is_file():
        paper = extract_paper(SAMPLE, max_pages=50, max_mb=30)
        return {"paper_text": paper.text, "paper_id": SAMPLE.stem, "title": paper.title}
    text = "Abstract\nA study.\n\n1 Introduction\n" + "Grokking is delayed generalisation. " * 400
    return {"paper_text": text, "paper_id": "synthetic"}


def _run(
    server: _Server, url: str, inputs: dict[str, str], reviewers: int, concurrency: int | None
) -> dict[str, Any]:
    settings = load_settings(
        "default",
        {
            "llm": {
                "models": {"reviewer": MODEL, "meta_reviewer": MODEL},
                "api_bases": {MODEL: url},
                "structured_modes": {MODEL: "json_schema"},
                "cache_enabled": False,
            },
            "review": {"num_reviewers": reviewers, "num_reflections": 2, "num_fewshot": 1},
        },
    )
    deps = ReviewDeps(gateway=Gateway(settings), settings=settings)
    server.exchanges.clear()
    config = {"max_concurrency": concurrency} if concurrency else {}
    start = time.perf_counter()
    state = build_review_graph().invoke(inputs, config=config, context=deps)
    wall = time.perf_counter() - start
    report = assemble_report(state, deps, wall)
    return {
        "wall_s": wall,
        "calls": len(deps.gateway.ledger.entries),
        "overall": report.scores["Overall"].mean,
        "exchanges": list(server.exchanges),
        "reviewers": reviewers,
    }


def main() -> None:
    """Run the three configurations and print the table and the JSON line."""
    console = make_console()
    server = _Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    inputs = _inputs()
    try:
        _run(server, url, inputs, 1, None)  # warm-up: imports, connection pool
        results = {
            "single": _run(server, url, inputs, 1, None),
            "ensemble_concurrent": _run(server, url, inputs, 5, None),
            "ensemble_sequential": _run(server, url, inputs, 5, 1),
        }
    finally:
        server.shutdown()
        server.server_close()
    for r in results.values():
        exchanges = r.pop("exchanges")
        reviews = [x for x in exchanges if "area chair" not in x[0][0]["content"]]
        r["tokens_per_review"] = _tokens(reviews) / r.pop("reviewers")
    ratio = results["ensemble_concurrent"]["wall_s"] / results["single"]["wall_s"]
    seq_ratio = results["ensemble_sequential"]["wall_s"] / results["single"]["wall_s"]
    console.print(f"Review wall time, {LATENCY_S * 1000:.0f} ms per LLM call, 2 reflections each")
    console.print(
        f"{'configuration':<22}{'reviewers':>10}{'calls':>7}{'wall s':>9}"
        f"{'x single':>10}{'tokens/review':>15}"
    )
    for name, r in results.items():
        n = 1 if name == "single" else 5
        console.print(
            f"{name:<22}{n:>10}{r['calls']:>7}{r['wall_s']:>9.2f}"
            f"{r['wall_s'] / results['single']['wall_s']:>10.2f}"
            f"{r['tokens_per_review']:>15,.0f}"
        )
    console.print(
        f"target: concurrent ensemble <= 1.5x single: {ratio:.2f}x "
        f"{verdict(ratio, 1.5, higher_is_better=False)}"
    )
    emit_json(
        {
            "latency_ms": LATENCY_S * 1000,
            "reflections": 2,
            "results": results,
            "concurrent_over_single": ratio,
            "sequential_over_single": seq_ratio,
            "target_max_ratio": 1.5,
            "pass": ratio <= 1.5,
        }
    )


if __name__ == "__main__":
    main()
