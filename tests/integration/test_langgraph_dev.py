"""``langgraph dev`` serves the graphs that ``langgraph.json`` names (issue #21).

The real LangGraph CLI and API server start from the checkout's ``langgraph.json`` on
127.0.0.1; both graphs must be listed and drawable, and a review run submitted over HTTP,
configured with a preset and overrides only (JSON), reaches a reviewer model: the loopback
OpenAI fake, so the test knows what was asked.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.provider_fakes import DUMMY_ENV, ProviderFakes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).with_name("langgraph")
PAPER_TEXT = (
    "Sparse Mixtures for Tabular Data\n\nAbstract\nWe propose a sparse mixture of small "
    "experts for tabular classification and report 0.91 accuracy on three datasets.\n\n"
    "1 Introduction\nTabular data is common. " * 3
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def langgraph_dev(tmp_path: Path) -> Iterator[str]:
    """``langgraph dev`` on a free loopback port, from the checkout, until the test ends."""
    if not LANGGRAPH.is_file():
        pytest.skip(f"{LANGGRAPH} is missing: `make setup` installs langgraph-cli[inmem]")
    port = _free_port()
    env = {
        **os.environ,
        **DUMMY_ENV,
        "AUTOSCHOLAR_DATA_DIR": str(tmp_path / "data"),
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
    }
    log = (tmp_path / "langgraph.log").open("w")
    command = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--config", str(ROOT / "langgraph.json")],
        cwd=tmp_path,  # its own state (.langgraph_api/) stays out of the checkout
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (tmp_path / "langgraph.log").read_text()[-3000:]
                raise AssertionError(f"langgraph dev did not start:\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(tmp_path / "data", ignore_errors=True)


def _assistants(url: str) -> dict[str, str]:
    found = httpx.post(f"{url}/assistants/search", json={}, timeout=30).json()
    return {a["graph_id"]: a["assistant_id"] for a in found}


def test_langgraph_dev_serves_both_graphs_and_runs_a_review(
    langgraph_dev: str, provider_fakes: ProviderFakes
) -> None:
    assistants = _assistants(langgraph_dev)
    assert set(assistants) == {"review", "paper"}
    drawn = {
        graph: httpx.get(
            f"{langgraph_dev}/assistants/{assistant}/graph", params={"xray": "true"}, timeout=60
        ).json()
        for graph, assistant in assistants.items()
    }
    review_nodes = {n["id"] for n in drawn["review"]["nodes"]}
    assert {"load_paper", "prepare_excerpt", "review_one", "write_meta_review", "decide"} <= (
        review_nodes
    )
    paper_nodes = {n["id"] for n in drawn["paper"]["nodes"]}
    assert {"generate_ideas", "summarize"} <= paper_nodes
    assert any(node.startswith("idea_pipeline") for node in paper_nodes)

    settings = provider_fakes.overrides("openai")
    overrides = [
        *(f"llm.models.{role}={model}" for role, model in settings["llm"]["models"].items()),
        f"llm.api_bases={json.dumps(settings['llm']['api_bases'])}",
        "llm.cache_enabled=false",
        "review.num_reviewers=2",
        "review.num_reflections=0",
        "review.num_fewshot=0",
    ]
    run = httpx.post(
        f"{langgraph_dev}/runs/wait",
        json={
            "assistant_id": assistants["review"],
            "input": {"paper_text": PAPER_TEXT, "paper_id": "p1", "title": "Sparse Mixtures"},
            "config": {"configurable": {"preset": "debug", "overrides": overrides}},
        },
        timeout=180,
    )
    assert run.status_code == 200, run.text
    state = run.json()
    assert state["decision"]["decision"] in {"accept", "reject"}, state
    assert len(state["reviews"]) == 2 and state["meta"] is not None
    asked = provider_fakes.requests_to("openai")
    assert len(asked) == 3  # two reviewers and the meta-review, through litellm over HTTP
    assert all("Sparse Mixtures" in json.dumps(r.body) for r in asked)
