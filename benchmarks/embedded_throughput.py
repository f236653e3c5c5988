"""Prompt and generation tokens/s of the embedded llama.cpp server, against the CPU roofline.

Each configuration gets its own server (``gateway.local.LocalServer``), measured with the
machine idle and with one other process spinning on a core. Over HTTP on 127.0.0.1:

- cold prompt: a ~1,400-token prompt that starts with a random nonce (no KV prefix can be
  reused), ``max_tokens=1``: prompt tok/s = usage.prompt_tokens / elapsed;
- generation: the same (cached) prompt forced to 64 new tokens (temperature 0, end-of-text
  banned by ``logit_bias``); tok/s = passes / (elapsed - a 1-token request's elapsed);
- structured generation: the same prompt, up to 128 new tokens under a JSON-schema grammar
  (what every pipeline call does); tok/s as for generation;
- warm prefix: a prompt sharing its first ~1,280 tokens with the previous one (a re-ask or
  reflection); effective tok/s = prompt tokens / elapsed, REUSING the KV cache.

Roofline: numpy float32 matmul GFLOP/s (1 and 2 BLAS threads) / 0.27 GFLOP per token,
measured idle and again with the other process spinning: the busy rows are compared with
the busy roofline, the compute the machine really offers under that load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _common import emit_json, fmt, make_console, verdict
from llama_cpp.llama_grammar import json_schema_to_gbnf
from rich.table import Table

from core.settings import LocalModelSettings, load_settings
from gateway.local import LocalServer

GFLOP_PER_TOKEN = 0.27
GEN_TOKENS = 64
STRUCT_TOKENS = 128
STRUCT_SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "findings": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["summary", "findings"],
}
BANNED = {"0": -100.0, "1": -100.0, "2": -100.0}  # <|endoftext|>, <|im_start|>, <|im_end|>
REQUEST_TIMEOUT_S = 150.0
CONDITION_BUDGET_S = 330.0
SLOW_ROUND_S = 30.0
TARGETS = {"prompt_tps": 400.0, "gen_tps": 40.0}
Q4_1_2T = {
    "quantization": "Q4_1",
    "n_threads": 2,
    "n_threads_batch": 2,
    "flash_attn": False,
    "grammar_last": False,
}
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "before": ("Q4_1 2/2 ACTIVE", {**Q4_1_2T, "omp_wait_policy": "ACTIVE"}),
    "passive": ("Q4_1 2/2 PASSIVE", {**Q4_1_2T, "omp_wait_policy": "PASSIVE"}),
    "fa_grammar_first": (
        "defaults + flash attn, grammar first",
        {"flash_attn": True, "grammar_last": False},
    ),
    "after": ("shipped defaults", {}),
    "q8_0": ("Q8_0 1/1", {"quantization": "Q8_0", "n_threads": 1, "n_threads_batch": 1}),
}
TOPICS = (
    "sparse attention",
    "curriculum learning",
    "label noise",
    "weight decay",
    "data augmentation",
    "mixture of experts",
    "contrastive pretraining",
)
FINDINGS = (
    "improves calibration",
    "reduces variance across seeds",
    "speeds up convergence",
    "hurts out-of-distribution accuracy",
    "has no measurable effect",
    "interacts with the learning rate",
    "depends on the batch size",
)
DATASETS = (
    "CIFAR-10",
    "ImageNet",
    "WikiText-103",
    "GLUE",
    "a synthetic benchmark",
    "MNIST",
    "SQuAD",
    "the Penn Treebank",
    "Atari",
    "OpenWebText",
    "LibriSpeech",
)
N_SENTENCES, N_SHARED = 45, 42
GBNF = json_schema_to_gbnf(json.dumps(STRUCT_SCHEMA))
MATMUL = """
import time, numpy as np
n = 2048
a = np.random.default_rng(0).random((n, n), dtype=np.float32); b = a.T.copy()
a @ b
best = float("inf")
for _ in range(6):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
print(2 * n ** 3 / best / 1e9)
"""


class BenchTimeout(Exception):
    """A request ran past its timeout or the condition's time budget."""


def matmul_gflops(threads: int) -> float:
    """Best-of-6 float32 2048x2048 matmul GFLOP/s in a child with ``threads`` BLAS threads."""
    env = {
        **os.environ,
        **{k: str(threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    }
    done = subprocess.run(
        [sys.executable, "-c", MATMUL],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def sentence(i: int, *, alt: bool = False) -> str:
    """One numbered sentence of varied research-notes text."""
    topic, data = TOPICS[i % 7], DATASETS[(i * 5) % 11]
    if alt:
        return f"{i}. Reviewer remark: the claim about {topic} on {data} needs more ablations."
    return (
        f"{i}. In run {i * 37 % 1000}, {topic} on {data} {FINDINGS[i * 3 % 7]} "
        f"(p = 0.{i * 13 % 97:02d})."
    )


def build_prompt(nonce: str, *, warm: bool = False) -> str:
    """~1,400 tokens opening with ``nonce``; ``warm`` keeps the head and rewrites the tail."""
    lines = [sentence(i, alt=warm and i >= N_SHARED) for i in range(1, N_SENTENCES + 1)]
    return f"{nonce} Research notes from the lab notebook.\n" + "\n".join(lines) + "\nSummary:"


def post(
    client: httpx.Client,
    url: str,
    prompt: str,
    max_tokens: int,
    deadline: float,
    grammar: str | None = None,
) -> tuple[float, dict[str, int]]:
    """One /completions request: (elapsed seconds, usage); bounded by the deadline."""
    timeout = min(REQUEST_TIMEOUT_S, deadline - time.monotonic())
    if timeout < 1.0:
        raise BenchTimeout(f"time budget of {CONDITION_BUDGET_S:.0f} s spent")
    body: dict[str, Any] = {
        "model": "local",
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
    }
    if grammar is not None:
        body["grammar"] = grammar
    elif max_tokens > 1:
        body["logit_bias"] = BANNED
    start = time.perf_counter()
    try:
        reply = client.post(f"{url}/completions", json=body, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise BenchTimeout(f"a request took over {timeout:.0f} s (timed out)") from exc
    elapsed = time.perf_counter() - start
    reply.raise_for_status()
    return elapsed, reply.json()["usage"]


def shared_prefix(client: httpx.Client, url: str, a: str, b: str) -> int:
    """How many leading tokens two prompts share (server-side tokenizer)."""
    root = url.removesuffix("/v1")
    ta, tb = (
        client.post(f"{root}/extras/tokenize", json={"input": t}).json()["tokens"] for t in (a, b)
    )
    return next(
        (i for i, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y), min(len(ta), len(tb))
    )


def generation_tps(completion_tokens: int, elapsed_s: float, base_s: float) -> float:
    """Decode passes per second beyond a 1-token request (the first token comes from cache)."""
    return max(completion_tokens - 1, 1) / max(elapsed_s - base_s, 1e-6)


def one_round(client: httpx.Client, url: str, deadline: float) -> dict[str, float]:
    """Cold prompt, 1-token baseline, 64-token and structured generation, warm prefix."""
    nonce = uuid.uuid4().hex[:12]
    prompt = build_prompt(nonce)
    cold_s, cold = post(client, url, prompt, 1, deadline)
    base_s, _ = post(client, url, prompt, 1, deadline)
    gen_s, gen = post(client, url, prompt, GEN_TOKENS, deadline)
    struct_s, struct = post(client, url, prompt, STRUCT_TOKENS, deadline, grammar=GBNF)
    warm_s, warm = post(client, url, build_prompt(nonce, warm=True), 1, deadline)
    return {
        "prompt_tps": cold["prompt_tokens"] / cold_s,
        "cold_s": cold_s,
        "gen_tps": generation_tps(gen["completion_tokens"], gen_s, base_s),
        "struct_tps": generation_tps(struct["completion_tokens"], struct_s, base_s),
        "struct_tokens": struct["completion_tokens"],
        "warm_prefix_tps": warm["prompt_tokens"] / warm_s,
        "prompt_tokens": cold["prompt_tokens"],
        "completion_tokens": gen["completion_tokens"],
        "warm_prompt_tokens": warm["prompt_tokens"],
    }


def measure(url: str, rounds: int) -> dict[str, Any]:
    """Medians over up to ``rounds`` rounds; one round only when a round is very slow."""
    deadline = time.monotonic() + CONDITION_BUDGET_S
    samples: list[dict[str, float]] = []
    error = None
    with httpx.Client() as client:
        try:
            while len(samples) < rounds:
                samples.append(one_round(client, url, deadline))
                if samples[-1]["cold_s"] > SLOW_ROUND_S:
                    break
        except BenchTimeout as exc:
            error = str(exc)
        shared = (
            None
            if error
            else shared_prefix(
                client, url, build_prompt("x" * 12), build_prompt("x" * 12, warm=True)
            )
        )
    keys = (
        "prompt_tps",
        "gen_tps",
        "struct_tps",
        "struct_tokens",
        "warm_prefix_tps",
        "prompt_tokens",
        "completion_tokens",
        "warm_prompt_tokens",
    )
    result: dict[str, Any] = {
        k: statistics.median(s[k] for s in samples) if samples else None for k in keys
    }
    tokens = result["prompt_tokens"]
    if error is None and tokens is not None and not 1350 <= tokens <= 1450:
        error = f"prompt has {tokens:.0f} tokens, outside 1,350-1,450"
    return {**result, "shared_prefix_tokens": shared, "rounds": len(samples), "error": error}


@contextmanager
def busy_cpu(active: bool) -> Iterator[None]:
    """While active, one other process spins on a core; it is always killed afterwards."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if active else None
    try:
        if proc is not None:
            time.sleep(0.5)
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)


def measure_roofline() -> dict[str, float]:
    """Matmul GFLOP/s on 1 and 2 BLAS threads, idle and with the other process spinning."""
    roof = {"1t": matmul_gflops(1), "2t": matmul_gflops(2)}
    with busy_cpu(True):
        roof |= {"busy_1t": matmul_gflops(1), "busy_2t": matmul_gflops(2)}
    return roof


def roofline_tps(roof: dict[str, float], *, busy: bool) -> float:
    """The float32 ceiling in prompt tok/s: the best thread count under that load."""
    gflops = max(roof["busy_1t"], roof["busy_2t"]) if busy else max(roof["1t"], roof["2t"])
    return gflops / GFLOP_PER_TOKEN


def run_condition(
    overrides: dict[str, Any], data_dir: Path, *, busy: bool, rounds: int, ceiling_tps: float
) -> dict[str, Any]:
    """Start a fresh server, warm it up idle, then measure (idle or busy); always stop it."""
    server = LocalServer(LocalModelSettings(**overrides), data_dir)
    try:
        url = server.base_url()
        with httpx.Client() as client:
            post(client, url, build_prompt("warmup"), 2, time.monotonic() + 2 * REQUEST_TIMEOUT_S)
        with busy_cpu(busy):
            result = measure(url, rounds)
    except BenchTimeout as exc:
        return {"error": f"warm-up: {exc}", "rounds": 0}
    finally:
        server.stop()
    tps = result["prompt_tps"]
    return {**result, "roofline_fraction": None if tps is None else tps / ceiling_tps}


def report(results: dict[str, Any], roof: dict[str, float]) -> dict[str, Any]:
    """Print the tables; return the targets' verdicts for the 'after' configuration."""
    console = make_console()
    for load, one, two in (("idle", "1t", "2t"), ("busy", "busy_1t", "busy_2t")):
        console.print(
            f"Roofline {load} (numpy float32 matmul): {roof[one]:.1f} GFLOP/s on 1 thread, "
            f"{roof[two]:.1f} GFLOP/s on 2 threads = "
            f"{roofline_tps(roof, busy=load == 'busy'):,.0f} tok/s at {GFLOP_PER_TOKEN} GFLOP/token"
        )
    table = Table(title="Embedded SmolLM2-135M server, ~1,400-token prompt, 2 cores")
    for col in (
        "config",
        "settings",
        "load",
        "prompt tok/s (cold)",
        "of roofline (same load)",
        "gen tok/s",
        "JSON-grammar tok/s",
        "warm-prefix tok/s (reuses KV)",
        "tokens p/g/w",
        "note",
    ):
        table.add_column(col, justify="left" if col in ("config", "settings", "note") else "right")
    for name, entry in results.items():
        for load in ("idle", "busy"):
            r, frac = entry[load], entry[load].get("roofline_fraction")
            toks = "/".join(
                fmt(r.get(k), 0)
                for k in ("prompt_tokens", "completion_tokens", "warm_prompt_tokens")
            )
            table.add_row(
                name,
                entry["label"],
                load,
                fmt(r.get("prompt_tps")),
                "—" if frac is None else f"{frac:.1%}",
                fmt(r.get("gen_tps")),
                fmt(r.get("struct_tps")),
                fmt(r.get("warm_prefix_tps")),
                toks,
                r.get("error") or "",
            )
    console.print(table)
    console.print(
        "warm-prefix: first ~1,300 tokens equal to the previous request's, so the "
        "server reuses its KV cache and only evaluates the tail (re-asks/reflections)."
    )
    ceiling = roofline_tps(roof, busy=True)
    console.print(
        f"The prompt target ({TARGETS['prompt_tps']:.0f} tok/s) is "
        f"{TARGETS['prompt_tps'] / ceiling:.2f}x the float32 ceiling with the other process "
        f"busy ({ceiling:,.0f} tok/s): "
        + ("above what the machine offers." if TARGETS["prompt_tps"] > ceiling else "within it.")
    )
    busy = results.get("after", {}).get("busy", {})
    targets = {
        f"{k}_busy": {
            "target": t,
            "value": busy.get(k),
            "verdict": verdict(busy.get(k), t, higher_is_better=True),
        }
        for k, t in TARGETS.items()
    }
    for key, t in targets.items():
        console.print(
            f"target 'after' {key} >= {t['target']:.0f}: {fmt(t['value'])} -> {t['verdict']}"
        )
    return targets


def main() -> None:
    """Measure the roofline, then every chosen configuration idle and busy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", default="before,fa_grammar_first,after", help="comma-separated names"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per condition (median)")
    args = parser.parse_args()
    roof = measure_roofline()
    data_dir = load_settings().data_dir
    results: dict[str, Any] = {}
    for name in args.configs.split(","):
        label, overrides = CONFIGS[name]
        settings = LocalModelSettings(**overrides).model_dump(mode="json", exclude={"gguf_path"})
        results[name] = {
            "label": label,
            "settings": settings,
            **{
                load: run_condition(
                    overrides,
                    data_dir,
                    busy=load == "busy",
                    rounds=args.rounds,
                    ceiling_tps=roofline_tps(roof, busy=load == "busy"),
                )
                for load in ("idle", "busy")
            },
        }
    targets = report(results, roof)
    emit_json(
        {
            "gflop_per_token": GFLOP_PER_TOKEN,
            "roofline_gflops_1t": roof["1t"],
            "roofline_gflops_2t": roof["2t"],
            "roofline_gflops_busy_1t": roof["busy_1t"],
            "roofline_gflops_busy_2t": roof["busy_2t"],
            "roofline_tps_idle": roofline_tps(roof, busy=False),
            "roofline_tps_busy": roofline_tps(roof, busy=True),
            "prompt_target_over_busy_roofline": (
                TARGETS["prompt_tps"] / roofline_tps(roof, busy=True)
            ),
            "configs": results,
            "targets": targets,
        }
    )


if __name__ == "__main__":
    main()
