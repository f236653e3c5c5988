"""Test harness for the service: settings, a live uvicorn on loopback, workers, a fake pipeline.

The workers here use the scripted reviewer model (``tests/unit/review_script.py``); it is
injected as a gateway factory and never reachable from settings or HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import BaseModel

from core.runstore import RunPaths
from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from gateway.types import LedgerEntry, LLMRequest
from service.app import create_app
from service.config import ServiceConfig
from service.jobs import GatewayFactory, RunLauncher, cache_for, default_handlers
from service.store import JobRecord, JobStore
from service.submit import ServiceState
from service.worker import Worker
from tests.unit.review_script import obedient_reviewer

REPO = Path(__file__).resolve().parents[1]
TOKENS = {"alice": "alice-token-4f9a2c7e1b", "bob": "bob-token-8d3e6a0c5f"}
FINISHED = ("done", "failed", "cancelled")


def service_config(
    root: Path, preset: str = "debug", *, cache: bool = False, **service: Any
) -> ServiceConfig:
    """Operator settings for a test: private folders, the test tokens, a fast poll."""
    overrides: dict[str, Any] = {
        "data_dir": str(root / "data"),
        "runs_dir": str(root / "runs"),
        "llm": {"cache_enabled": cache},
        # The review's checks look references up: in tests, only in the (absent) offline
        # index, so they are `unchecked` and no test reaches the network.
        "literature": {"sources": ["offline"]},
        "service": {"tokens": TOKENS, "poll_interval_s": 0.05, "lease_s": 30.0, **service},
    }
    return ServiceConfig(preset=preset, overrides=overrides)


def scripted_gateway(delay_s: float = 0.0, calls_log: Path | None = None) -> GatewayFactory:
    """Gateways whose model is the scripted reviewer; each call optionally slow and logged."""
    reply = obedient_reviewer()

    def answer(request: LLMRequest) -> str:
        if calls_log is not None:
            with calls_log.open("a", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()} {request.response_format and 'json'}\n")
        if delay_s:
            time.sleep(delay_s)
        return reply(request)

    def factory(settings: Settings) -> Gateway:
        return Gateway(settings, backend=ScriptedLLM(answer), cache=cache_for(settings))

    return factory


def auth(user: str = "alice") -> dict[str, str]:
    """The bearer header of a test user."""
    return {"Authorization": f"Bearer {TOKENS[user]}"}


class LiveServer:
    """The app under a real uvicorn on 127.0.0.1:<free port>, in a thread."""

    def __init__(self, config: ServiceConfig, state: ServiceState | None = None) -> None:
        self.app = create_app(config, state)
        self.state: ServiceState = self.app.state.service
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        server_config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(server_config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> LiveServer:
        """Serve and wait until it answers."""
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
        self.state.pdf_checker.close()  # what the app's lifespan does (uvicorn runs it off here)

    @property
    def store(self) -> JobStore:
        return self.state.store

    def client(self, user: str | None = "alice", timeout: float = 30.0) -> httpx.Client:
        """An HTTP client for the server, authenticated as ``user`` (None: no header)."""
        headers = auth(user) if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@dataclass
class WorkerThreads:
    """In-process workers (threads), each with its own Worker and store connection."""

    config: ServiceConfig
    count: int = 1
    gateway_factory: GatewayFactory = field(default_factory=scripted_gateway)
    launcher: RunLauncher | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> WorkerThreads:
        """Start the workers."""
        for index in range(self.count):
            handlers = (
                default_handlers(self.gateway_factory, self.launcher)
                if self.launcher
                else default_handlers(self.gateway_factory)
            )
            worker = Worker(self.config, handlers, name=f"test-worker-{index}")
            thread = threading.Thread(target=worker.run_forever, args=(self.stop,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def close(self) -> None:
        """Stop after the current jobs."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


@contextmanager
def live_service(
    config: ServiceConfig,
    *,
    workers: int = 1,
    gateway_factory: GatewayFactory | None = None,
    launcher: RunLauncher | None = None,
    templates: list[str] | None = None,
) -> Iterator[LiveServer]:
    """A live server and ``workers`` worker threads for the duration of the block."""
    server = LiveServer(config)
    if templates is not None:
        server.state.templates = lambda: list(templates)
    server.start()
    pool = WorkerThreads(config, workers, gateway_factory or scripted_gateway(), launcher)
    if workers:
        pool.start()
    try:
        yield server
    finally:
        pool.close()
        server.stop()


def wait_for(
    client: httpx.Client, url: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60.0
) -> dict[str, Any]:
    """Poll ``url`` until ``done(body)``; the last body."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(url)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting on {url}: {body}")
        time.sleep(0.1)


def finished(body: dict[str, Any]) -> bool:
    """Whether a job body is in a final state."""
    return body["status"] in FINISHED


def submit_pdf(client: httpx.Client, pdf: Path, **options: Any) -> httpx.Response:
    """POST /v1/reviews with ``pdf`` and form options."""
    with pdf.open("rb") as handle:
        files = {"file": (pdf.name, handle, "application/pdf")}
        data = {k: str(v) for k, v in options.items()}
        return client.post("/v1/reviews", files=files, data=data)


# --- worker subprocesses (fault and load tests) -----------------------------------------


def spawn_worker(
    config: ServiceConfig,
    tmp: Path,
    *,
    delay_s: float = 0.0,
    calls_log: Path | None = None,
    name: str = "sub-worker",
) -> subprocess.Popen[bytes]:
    """A worker process running ``tests.service_worker_entry`` with the scripted model."""
    config_file = tmp / f"{name}.json"
    config_file.write_text(json.dumps({"preset": config.preset, "overrides": config.overrides}))
    command = [sys.executable, "-m", "tests.service_worker_entry", "--config", str(config_file)]
    command += ["--delay", str(delay_s), "--name", name]
    if calls_log is not None:
        command += ["--calls-log", str(calls_log)]
    log = (tmp / f"{name}.log").open("ab")
    return subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def job_row(store: JobStore, job_id: str) -> JobRecord:
    """The job's row, which must exist."""
    job = store.get(job_id)
    assert job is not None, job_id
    return job


# --- a fake paper pipeline (the run handler's launcher) ----------------------------------


class FakeRunSummary(BaseModel):
    """What the fake pipeline returns."""

    template: str
    ideas: list[str]
    papers: int


@dataclass
class FakePipeline:
    """Writes ideas, a ledger, one paper and its review; reports events; can block."""

    paper_pdf: Path
    review_json: dict[str, Any] | None = None
    block: threading.Event | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(
        self,
        settings: Settings,
        template: str,
        run_paths: RunPaths,
        *,
        on_event: Callable[[Any], None] | None = None,
    ) -> FakeRunSummary:
        emit = on_event or (lambda event: None)
        self.calls.append(template)
        emit({"stage": "ideas", "status": "started"})
        ideas = [self._idea("sparse_gadgets", 7, True), self._idea("dense_widgets", 4, False)]
        run_paths.ideas_json.write_text(json.dumps(ideas))
        self._ledger(run_paths.ledger)
        emit({"stage": "experiments", "idea": "sparse_gadgets", "status": "running"})
        while self.block is not None and not self.block.wait(0.05):
            emit({"stage": "experiments", "idea": "sparse_gadgets", "status": "waiting"})
        idea = run_paths.idea("sparse_gadgets")
        idea.paper_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.paper_pdf, idea.paper_pdf)
        if self.review_json is not None:
            idea.review_dir.mkdir(parents=True, exist_ok=True)
            (idea.review_dir / "review.json").write_text(json.dumps(self.review_json))
        emit({"stage": "review", "idea": "sparse_gadgets", "status": "done"})
        emit({"stage": "novelty", "idea": "dense_widgets", "status": "not novel"})
        return FakeRunSummary(template=template, ideas=[i["idea"]["Name"] for i in ideas], papers=1)

    @staticmethod
    def _idea(name: str, novelty: int, novel: bool) -> dict[str, Any]:
        return {
            "idea": {
                "Name": name,
                "Title": f"Title of {name}",
                "Experiment": "Run it.",
                "Interestingness": 6,
                "Feasibility": 8,
                "Novelty": novelty,
            },
            "novelty": {"novel": novel},
        }

    @staticmethod
    def _ledger(path: Path) -> None:
        entry = LedgerEntry(
            role="ideas",
            model="openai/fake",
            prompt_tokens=100,
            completion_tokens=50,
            cost_usd=0.0125,
            latency_s=0.1,
            cache_hit=False,
        )
        path.write_text((entry.model_dump_json() + "\n") * 2)
