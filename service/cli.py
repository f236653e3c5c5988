"""``scientist serve``: the API (uvicorn) plus N worker processes; Ctrl-C stops them all.

This module imports nothing heavy at import time, so registering the command is cheap:
``register(app)`` adds ``serve`` to a Typer app. ``python -m service`` runs it alone.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import subprocess
import sys
import threading
import time
from typing import Annotated

import typer

from core.cli_support import PresetOpt, SetOpt, console, fail
from gateway.errors import AutoscholarError
from service.app import create_app
from service.config import ServiceConfig, service_paths

STOP_GRACE_S = 10.0
RESTART_DELAY_S = 2.0
log = logging.getLogger("service.serve")


def worker_command(preset: str | None, assignments: list[str], name: str) -> list[str]:
    """The command line of one worker process, with the server's own settings flags."""
    command = [sys.executable, "-m", "service.worker", "--name", name]
    if preset:
        command += ["--preset", preset]
    for pair in assignments:
        command += ["--set", pair]
    return command


class WorkerPool:
    """N worker subprocesses; one that crashes is restarted until the pool is stopped."""

    def __init__(self, commands: list[list[str]]) -> None:
        self.commands = commands
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="worker-pool")

    def start(self) -> None:
        """Start every worker and the watcher that restarts dead ones."""
        self.procs = [subprocess.Popen(c) for c in self.commands]
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(RESTART_DELAY_S):
            for index, proc in enumerate(self.procs):
                # 0 is a clean stop (Ctrl-C reaches the workers too); anything else a crash
                if proc.poll() not in (None, 0) and not self._stopping.is_set():
                    console.print(
                        f"[yellow]worker {index} exited ({proc.returncode}); restarting it[/]"
                    )
                    self.procs[index] = subprocess.Popen(self.commands[index])

    def stop(self) -> None:
        """SIGTERM every worker (each hands its job back to the queue), then SIGKILL laggards."""
        self._stopping.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_command(
    host: Annotated[str | None, typer.Option(help="Bind address (default service.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default service.port).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=0, help="Worker processes (default service.workers; 0: API only)."),
    ] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Serve the HTTP API and web pages, with worker processes running the jobs."""
    import uvicorn  # lazy: `scientist` starts without loading the HTTP server

    assignments = list(set_ or [])
    try:
        config = ServiceConfig.from_flags(preset, assignments)
        settings = config.settings()
        app = create_app(config)
    except AutoscholarError as exc:
        raise typer.Exit(fail(exc)) from exc
    svc = settings.service
    host, port = host or svc.host, port or svc.port
    count = svc.workers if workers is None else workers
    if not svc.tokens:
        console.print(
            "[yellow]service.tokens is empty: every request will be refused. Set e.g. "
            'AUTOSCHOLAR_SERVICE__TOKENS=\'{"alice": "<a long random token>"}\'.[/]'
        )
    if not _loopback(host):
        console.print(f"[yellow]listening on {host}, not loopback: put TLS in front of it.[/]")
    pool = WorkerPool([worker_command(preset, assignments, f"worker-{i}") for i in range(count)])
    pool.start()
    console.print(
        f"autoscholar service on http://{host}:{port} (docs: /docs), {count} worker(s), "
        f"data in {service_paths(settings).root}"
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; as
    # KeyboardInterrupt (SIGTERM too) it lets the workers be stopped below.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info")).run()
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop()
        console.print("autoscholar service stopped")


def register(app: typer.Typer) -> None:
    """Add ``serve`` to a Typer app (the ``scientist`` CLI)."""
    app.command("serve")(serve_command)


def main() -> None:
    """``python -m service``: the serve command on its own."""
    typer.run(serve_command)
