"""``python -m service`` (= ``scientist serve``): API plus workers; Ctrl-C or SIGTERM stops all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.service_support import REPO, TOKENS

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_serve_starts_api_and_workers_and_a_signal_stops_them_all(
    tmp_path: Path, stop: str
) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "service", "--port", str(port), "--workers", "2"]
    command += ["--preset", "debug", "--set", f"data_dir={tmp_path}"]
    command += ["--set", f"service.tokens={json.dumps(TOKENS)}"]
    serve = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and serve.poll() is None, "serve did not start"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {TOKENS['alice']}"}
        assert httpx.get(f"{url}/v1/jobs", headers=headers).json() == {"jobs": []}
        assert httpx.get(f"{url}/v1/jobs").status_code == 401
        workers = _children(serve.pid)
        assert len(workers) == 2
        if stop == "ctrl-c":
            os.killpg(serve.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            serve.terminate()  # SIGTERM to the server alone: it stops its workers
        assert serve.wait(timeout=30) == 0
        gone = time.monotonic() + 30  # polled: the workers' last exit steps may lag under load
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < gone:
            time.sleep(0.05)
        assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    output = serve.stdout.read().decode() if serve.stdout else ""
    assert f"http://127.0.0.1:{port}" in output and "service stopped" in output
