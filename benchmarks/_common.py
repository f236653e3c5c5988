"""Helpers shared by the benchmarks: output, statistics and a zero-latency OpenAI server.

Everything listens on 127.0.0.1 only. Each benchmark prints a table for people and, as
its very last line of stdout, one JSON object with its figures for machines.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from rich.console import Console


def make_console() -> Console:
    """A console wide enough for the tables even when stdout is a pipe."""
    return Console(width=None if sys.stdout.isatty() else 140, highlight=False)


def emit_json(figures: dict[str, Any]) -> None:
    """Print ``figures`` as the last line of stdout (nothing may be printed after it)."""
    sys.stdout.flush()
    print(json.dumps(figures, sort_keys=False), flush=True)


def median(values: list[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def verdict(value: float | None, target: float, *, higher_is_better: bool) -> str:
    """PASS or MISS against ``target``; a missing value is a MISS, never a guess."""
    if value is None:
        return "MISS"
    ok = value >= target if higher_is_better else value < target
    return "PASS" if ok else "MISS"


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table cell, or an em dash when there is none."""
    return "—" if value is None else f"{value:,.{digits}f}"


def chat_completion_body(content: str, model: str = "bench") -> dict[str, Any]:
    """A minimal but valid OpenAI ``chat.completion`` object with usage."""
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
    }


class _Handler(BaseHTTPRequestHandler):
    """Answers every POST instantly with the server's fixed reply (keep-alive, HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no ~40 ms Nagle/delayed-ACK stall on loopback
    wbufsize = -1  # buffered: headers and body leave in one write, flushed per request
    server: _FakeHTTPServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        self._send(200, self.server.reply)

    def do_GET(self) -> None:
        self._send(200, b'{"object": "list", "data": [{"id": "bench", "object": "model"}]}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    reply: bytes = b""


class FakeOpenAIServer:
    """A zero-latency OpenAI-compatible server on 127.0.0.1:<free port>, as a context manager.

    ``POST .../chat/completions`` returns ``content`` in a fixed chat.completion; ``url``
    is the ``/v1`` base URL to hand to litellm or the gateway.
    """

    def __init__(self, content: str) -> None:
        self._httpd = _FakeHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.reply = json.dumps(chat_completion_body(content)).encode("utf-8")
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
