"""A local OpenAI-compatible HTTP server that misbehaves on purpose (127.0.0.1 only)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    """What the server does with one request: answer, fail with a status, or drop the socket."""

    kind: str = "ok"  # ok | status | drop
    content: str = "hello"
    status: int = 200
    prompt_tokens: int = 11
    completion_tokens: int = 7
    error: str = ""


@dataclass
class FakeOpenAI:
    """Scripted behaviours (default: ok) and every request body received."""

    script: list[Behaviour] = field(default_factory=list)
    default: Behaviour = field(default_factory=Behaviour)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_behaviour(self, body: dict[str, Any]) -> Behaviour:
        with self.lock:
            self.requests.append(body)
            return self.script.pop(0) if self.script else self.default


def _completion(b: Behaviour, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": b.content},
            }
        ],
        "usage": {
            "prompt_tokens": b.prompt_tokens,
            "completion_tokens": b.completion_tokens,
            "total_tokens": b.prompt_tokens + b.completion_tokens,
        },
    }


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            b = fake.next_behaviour(body)
            if b.kind == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if b.kind == "status":
                payload = {
                    "error": {
                        "message": b.error or f"fake error {b.status}",
                        "type": "fake",
                        "code": str(b.status),
                    }
                }
            else:
                payload = _completion(b, body.get("model", "fake"))
            data = json.dumps(payload).encode()
            self.send_response(b.status if b.kind == "status" else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """Serve a FakeOpenAI on a free loopback port for the duration of the block."""
    fake = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
