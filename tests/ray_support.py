"""Ray for tests: a private instance or a two-node cluster on this machine, and batch task
functions on the pipeline fakes that Ray workers can import (``tests`` travels to them on
``PYTHONPATH``).

Every Ray process a test starts is stopped by its own process group, never by
``ray stop`` (which stops every Ray instance of this user on the machine).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from core.runstore import RunPaths
from core.settings import Settings
from gateway.ledger import read_entries
from gateway.local import shared_server
from scientist.pipeline.models import IdeaOutcome, PipelineEvent, RunManifest
from scientist.runs.batch import BatchResult, BatchTask, run_task
from scientist.runs.idea_task import IdeaJob, run_idea_job
from scientist.runs.ray_node import node_model, share_node_model
from scientist.runs.run import run_in_folder
from tests.pipeline_support import (
    ROOT,
    FakeEditor,
    FakeRunner,
    PipelineModel,
    fake_deps_factory,
)

TOY = ROOT / "tests" / "fixtures" / "template_toy"
RAY_BIN = Path(sys.executable).parent / "ray"
# No usage statistics (no network), no auth token written to ~/.ray: every Ray process a
# test starts, and the test process itself, run with these.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
RUNTIME_ENV = {"env_vars": {"PYTHONPATH": str(ROOT)}}


@contextmanager
def private_ray_instance(num_cpus: int = 2) -> Iterator[None]:
    """A private Ray instance for the block: usage stats and auth off, the test tree on its
    PYTHONPATH (a module-scoped fixture shares one per test module)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in RAY_ENV.items():
            env.setenv(name, value)
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            runtime_env=RUNTIME_ENV,
            logging_level=logging.WARNING,
        )
        try:
            yield
        finally:
            ray.shutdown()


def toy_templates(root: Path, *names: str, resources: dict[str, Any] | None = None) -> list[str]:
    """Copies of the toy template named ``names`` (the name is the run folder's label);
    ``resources`` becomes each copy's resources.json."""
    paths = []
    for name in names:
        target = root / name
        shutil.copytree(TOY, target)
        if resources is not None:
            (target / "resources.json").write_text(json.dumps(resources))
        paths.append(str(target))
    return paths


@dataclass(frozen=True)
class FakeTask:
    """A batch task function on the pipeline fakes; picklable, so it runs in a Ray worker
    or a process of the local pool, where it builds its fakes. Each template's model calls
    go to ``log_dir/calls-<template>.jsonl``. Under Ray it drives the run on the driver;
    ``ideas()`` is the matching function for the idea tasks on the nodes."""

    log_dir: Path
    pause_template: str | None = None  # this template's editor pauses once (kill tests)
    pause_marker: Path | None = None
    pause_s: float = 0.0
    crash_template: str | None = None  # every experiment of this template crashes
    raise_template: str | None = None  # the task itself raises for this template

    def __call__(self, task: BatchTask) -> BatchResult:
        name = Path(task.template).name
        if name == self.raise_template:
            with (self.log_dir / f"raised-{name}").open("a") as handle:
                handle.write(f"{os.getpid()}\n")
            raise RuntimeError(f"template {name} crashed outright")
        return run_task(task, deps_factory=self._factory(name))

    def ideas(self) -> FakeIdea:
        """The idea-task function with the same fakes."""
        return FakeIdea(self)

    def _factory(self, name: str) -> Callable[..., Any]:
        pausing = name == self.pause_template
        editor = FakeEditor(self.pause_marker if pausing else None, self.pause_s)
        runner = FakeRunner(crashes=1000 if name == self.crash_template else 0)
        model = PipelineModel(self.log_dir / f"calls-{name}.jsonl")
        return fake_deps_factory(model, editor=editor, runner=runner)


@dataclass(frozen=True)
class FakeIdea:
    """An idea task function on the pipeline fakes (a Ray worker builds them); it notes
    the run folder it worked in at ``log_dir/run_dir-<template>``."""

    task: FakeTask

    def __call__(self, job: IdeaJob) -> IdeaOutcome:
        name = Path(job.template).name
        (self.task.log_dir / f"run_dir-{name}").write_text(job.run_dir)
        return run_idea_job(job, deps_factory=self.task._factory(name))


def fake_run_in_folder(
    settings: Settings,
    template: str,
    run: RunPaths,
    *,
    on_event: Callable[[PipelineEvent], None] | None = None,
) -> RunManifest:
    """``run_in_folder`` on the pipeline fakes (the service's run job, on a Ray worker)."""
    model = PipelineModel(settings.data_dir / "calls.jsonl")
    return run_in_folder(
        settings, template, run, on_event=on_event, deps_factory=fake_deps_factory(model)
    )


def calls(path: Path) -> list[dict[str, str]]:
    """The model calls a ``PipelineModel`` logged."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def ledger_rows(run_dir: Path) -> list[tuple[Any, ...]]:
    """The ledger without its clock: role, model, schema, tokens, cache hit."""
    rows = read_entries(run_dir / "ledger.jsonl")
    return [
        (r.role, r.model, r.schema_name, r.prompt_tokens, r.completion_tokens, r.cache_hit)
        for r in rows
    ]


def folder_files(run_dir: Path) -> set[str]:
    """Every file of a run folder, relative to it."""
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- clusters


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ports() -> list[str]:
    """Ports of one node's side services, each free, so two nodes on one machine never meet."""
    flags = [
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--metrics-export-port",
        "--runtime-env-agent-port",
    ]
    ports = [item for flag in flags for item in (flag, str(_free_port()))]
    return [*ports, "--min-worker-port", "0", "--max-worker-port", "0"]


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@dataclass
class TwoNodes:
    """A head (``{"head": 1}``) and a second node (``{"node2": 1}``), one CPU each."""

    address: str
    head: subprocess.Popen[bytes]
    second: subprocess.Popen[bytes]


def _ray_start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``ray start --block`` in a session of its own: every process it starts shares its
    process group, which is how the test stops exactly them."""
    command = [str(RAY_BIN), "start", *args, "--num-cpus", "1", "--disable-usage-stats"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*command, *_ports(), "--block"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a ``ray start --block`` and every process of its group (ours only): SIGTERM,
    then SIGKILL for whatever is left after a few seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        if _group_gone(proc, timeout_s=5.0):
            break
    proc.wait(timeout=10)


def _group_gone(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader, or its zombie keeps the group alive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@contextmanager
def two_nodes(logs: Path) -> Iterator[TwoNodes]:
    """A head and a second node on this machine, both started with ``ray start``."""
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="asray", dir="/tmp"))  # Ray's socket paths are short
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": str(ROOT)}
    head_args = ["--head", "--port", str(port), "--temp-dir", str(temp)]
    head_args += ["--include-dashboard", "false", "--dashboard-port", str(_free_port())]
    head_args += ["--ray-client-server-port", str(_free_port()), "--resources", '{"head": 1}']
    head = _ray_start(head_args, logs / "head.log", env)
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: _port_open(port), head, logs / "head.log")
        address = f"127.0.0.1:{port}"
        second_args = ["--address", address, "--resources", '{"node2": 1}']
        second = _ray_start(second_args, logs / "second.log", env)
        yield TwoNodes(address, head, second)
    finally:
        for proc in (second, head):
            if proc is not None:
                stop_group(proc)
        shutil.rmtree(temp, ignore_errors=True)


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120  # a guard against a hang, not a performance bound
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"ray start did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def probe_node_model(settings: Settings, hold_s: float) -> tuple[str, int | None, int]:
    """In a Ray task: the embedded server this worker uses once its node's is shared (its
    URL after one completion, the server's pid) and this worker's pid."""
    share_node_model(settings)
    url = shared_server(settings.local, settings.data_dir).base_url()
    reply = httpx.post(
        f"{url}/chat/completions",
        json={"model": "local", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8},
        timeout=120,
    )
    reply.raise_for_status()
    time.sleep(hold_s)  # keep this worker busy, so the other task gets a worker of its own
    node_id = ray.get_runtime_context().get_node_id()
    pid = ray.get(node_model(node_id).pid.remote(settings.local, str(settings.data_dir)))
    return url, pid, os.getpid()


def rss_mb(pid: int) -> float:
    """A process's resident memory in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")
