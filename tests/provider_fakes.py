"""Loopback fakes of OpenAI, Anthropic and Gemini that speak the wire protocols litellm sends.

One threaded HTTP server on 127.0.0.1 answers each provider under its own prefix:

- ``/openai/v1/chat/completions``: OpenAI chat completions (``response_format`` json_schema);
  usage with ``prompt_tokens_details.cached_tokens``.
- ``/anthropic/v1/messages``: Anthropic Messages. litellm sends a schema as ``output_format``
  (models with native structured output, every Claude in its price map today) or as a
  forced tool (older models): the reply is a text block or a ``tool_use`` block. Usage with
  ``cache_read_input_tokens`` / ``cache_creation_input_tokens``, simulated from the request's
  ``cache_control`` breakpoints.
- ``/gemini/v1beta/models/{model}:generateContent``: Gemini ``generateContent`` with
  ``generationConfig`` (``response_mime_type``, ``response_json_schema``/``responseSchema``);
  ``usageMetadata`` with ``cachedContentTokenCount``.

OpenAI and Gemini cache long prompt prefixes on their own; the fakes do too (a prefix seen
before, from ``min_cache_tokens`` tokens up, is read from the cache). Tokens are counted as
one per four characters. What a reply says is up to a responder (``tests/provider_replies``).

Use ``with serve_provider_fakes() as fakes:`` then ``load_settings(..., fakes.overrides())``
with :data:`DUMMY_ENV` set in the environment (litellm wants an Anthropic and a Gemini key).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, get_args

from core.settings import Role
from tests.provider_replies import Asked, GPT4oResponder, Responder

Provider = Literal["openai", "anthropic", "gemini"]
PROVIDERS: tuple[Provider, ...] = get_args(Provider)
# Each priced in litellm's bundled map, with a cache-read rate.
MODELS: dict[Provider, str] = {
    "openai": "openai/gpt-4o",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
}
# What litellm appends to an api_base, per provider, is the rest of each path.
BASE_SUFFIX: dict[Provider, str] = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta"}
DUMMY_ENV = {
    "ANTHROPIC_API_KEY": "sk-ant-fake",
    "GEMINI_API_KEY": "fake-gemini-key",
    # litellm otherwise fetches Anthropic's beta-header list from GitHub on first use.
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}
# The providers' documented minimum cacheable prompt (Claude Sonnet, GPT-4o, Gemini 2.5 Flash).
MIN_CACHE_TOKENS = 1024
OPENAI_CACHE_STEP = 128  # OpenAI reports cache hits in 128-token increments


def tokens(text: str) -> int:
    """The fakes' token count: one per four characters, at least one."""
    return max(1, -(-len(text) // 4))


@dataclass(frozen=True)
class Received:
    """One request a fake received."""

    provider: Provider
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Answer:
    """One reply and its usage, before it is put in a provider's wire format."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cache_read: int = 0
    cache_write: int = 0


@dataclass
class PromptCache:
    """Provider-side prompt caches: automatic prefixes, and Anthropic-style breakpoints."""

    min_tokens: int = MIN_CACHE_TOKENS
    _prompts: dict[str, list[str]] = field(default_factory=dict)
    _breakpoints: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def automatic(self, model: str, prompt: str, step: int = 1) -> int:
        """Tokens of ``prompt`` served from cache: the longest prefix seen before, stepped."""
        with self._lock:
            seen = self._prompts.setdefault(model, [])
            shared = max((_common_prefix(prompt, old) for old in seen), default=0)
            seen.append(prompt)
        cached = shared // 4
        if tokens(prompt) < self.min_tokens or cached < self.min_tokens:
            return 0
        return cached - cached % step

    def explicit(self, model: str, segments: list[tuple[str, bool]]) -> tuple[int, int]:
        """(read, written) tokens for segments in cache order, each marked as a breakpoint."""
        read, longest, text = 0, 0, ""
        with self._lock:
            for segment, breakpoint in segments:
                text += segment
                size = tokens(text)
                if not breakpoint or size < self.min_tokens:
                    continue
                key = hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()
                if key in self._breakpoints:
                    read = size
                self._breakpoints.add(key)
                longest = size
        return read, max(0, longest - read)


def _common_prefix(a: str, b: str) -> int:
    """Characters ``a`` and ``b`` share from the start."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


@dataclass
class RateLimitStorm:
    """Answer 429 (with ``Retry-After: retry_after_s``, or none) to every request for
    ``duration_s`` from the first request; count what was refused and what went through."""

    duration_s: float
    retry_after_s: float | None = 1.0
    refused: int = 0
    served: int = 0
    _started: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse(self) -> bool:
        """Whether this request gets a 429."""
        with self._lock:
            now = time.monotonic()
            if self._started is None:
                self._started = now
            if now - self._started < self.duration_s:
                self.refused += 1
                return True
            self.served += 1
            return False


@dataclass
class ProviderFakes:
    """The running fakes: base URLs, model strings, requests received, settings overrides.

    ``latency_s`` delays every answer (a provider's real latency, for the benchmarks);
    ``storm`` answers 429 for a while.
    """

    responder: Responder
    cache: PromptCache
    base: str = ""
    requests: list[Received] = field(default_factory=list)
    latency_s: float = 0.0
    storm: RateLimitStorm | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, provider: Provider) -> str:
        """The ``api_base`` that points litellm's ``provider`` client at its fake."""
        return f"{self.base}/{provider}{BASE_SUFFIX[provider]}"

    @staticmethod
    def model(provider: Provider) -> str:
        """The litellm model string the fakes answer for ``provider``."""
        return MODELS[provider]

    def requests_to(self, provider: Provider) -> list[Received]:
        """The requests ``provider``'s fake received, in order."""
        with self._lock:
            return [r for r in self.requests if r.provider == provider]

    def overrides(
        self,
        provider: Provider = "openai",
        *,
        reviewers: Sequence[Provider] = (),
        **per_role: Provider,
    ) -> dict[str, Any]:
        """Settings overrides: every role on ``provider``'s model (or ``role=provider``).

        ``reviewers`` gives the ensemble one provider per reviewer (``review.models``), e.g.
        ``reviewers=PROVIDERS`` for an OpenAI, an Anthropic and a Gemini reviewer.
        """
        roles: tuple[str, ...] = get_args(Role)
        models = {role: MODELS[per_role.get(role, provider)] for role in roles}
        bases = {MODELS[p]: self.url(p) for p in PROVIDERS}
        found: dict[str, Any] = {"llm": {"models": models, "api_bases": bases}}
        if reviewers:
            found["review"] = {"models": [MODELS[p] for p in reviewers]}
        return found

    def record(self, received: Received) -> None:
        """Keep ``received`` for the test's assertions."""
        with self._lock:
            self.requests.append(received)


# --- OpenAI ------------------------------------------------------------------------------


def _block_text(content: Any) -> str:
    """The text of a message's content: a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_block_text(block) for block in content)
    if isinstance(content, dict):
        if "text" in content:
            return str(content["text"])
        if "input" in content:  # a tool_use block
            return json.dumps(content["input"])
        return _block_text(content.get("content", ""))
    return ""


def _openai(fakes: ProviderFakes, body: dict[str, Any]) -> dict[str, Any]:
    turns = tuple((m["role"], _block_text(m.get("content"))) for m in body["messages"])
    fmt = body.get("response_format") or {}
    wire = fmt.get("json_schema", {}).get("schema") or fmt.get("schema")
    asked = Asked("openai", body["model"], turns, wire)
    prompt = "".join(f"{role}: {text}\n" for role, text in turns) + json.dumps(fmt)
    text = fakes.responder(asked)
    read = fakes.cache.automatic(body["model"], prompt, OPENAI_CACHE_STEP)
    usage = {
        "prompt_tokens": tokens(prompt),
        "completion_tokens": tokens(text),
        "total_tokens": tokens(prompt) + tokens(text),
        "prompt_tokens_details": {"cached_tokens": read},
    }
    message = {"role": "assistant", "content": text}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": usage,
    }


# --- Anthropic ---------------------------------------------------------------------------


def _anthropic_segments(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """The prompt in Anthropic's cache order (tools, system, messages), block by block."""
    segments: list[tuple[str, bool]] = [(json.dumps(body.get("tools", [])), False)]
    system = body.get("system", [])
    blocks = [{"text": system}] if isinstance(system, str) else list(system)
    for message in body.get("messages", []):
        content = message.get("content")
        blocks += [{"text": content}] if isinstance(content, str) else list(content)
    segments += [(_block_text(b), "cache_control" in b) for b in blocks]
    return segments


def _anthropic_schema(body: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The schema sent, and the forced tool's name when it came as a tool."""
    output = body.get("output_format") or body.get("output_config", {}).get("format")
    if output:
        return output.get("schema"), None
    forced = (body.get("tool_choice") or {}).get("name")
    for tool in body.get("tools", []):
        if tool.get("name") == forced:
            return tool.get("input_schema"), forced
    return None, None


def _anthropic(fakes: ProviderFakes, body: dict[str, Any]) -> dict[str, Any]:
    system = _block_text(body.get("system", ""))
    turns = ((("system", system),) if system else ()) + tuple(
        (m["role"], _block_text(m.get("content"))) for m in body["messages"]
    )
    wire, tool = _anthropic_schema(body)
    text = fakes.responder(Asked("anthropic", body["model"], turns, wire))
    segments = _anthropic_segments(body)
    read, written = fakes.cache.explicit(body["model"], segments)
    total = tokens("".join(s for s, _ in segments) + json.dumps(wire or {}))
    content: dict[str, Any] = {"type": "text", "text": text}
    if tool is not None:
        content = {"type": "tool_use", "id": "toolu_fake", "name": tool, "input": json.loads(text)}
    usage = {
        "input_tokens": max(0, total - read - written),
        "output_tokens": tokens(text),
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    }
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [content],
        "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


# --- Gemini ------------------------------------------------------------------------------

GEMINI_SCHEMA_KEYS = (
    "response_json_schema",
    "responseJsonSchema",
    "response_schema",
    "responseSchema",
)


def _gemini(fakes: ProviderFakes, body: dict[str, Any], model: str) -> dict[str, Any]:
    system = _block_text(body.get("system_instruction", {}).get("parts", []))
    turns = ((("system", system),) if system else ()) + tuple(
        ("assistant" if c.get("role") == "model" else "user", _block_text(c.get("parts", [])))
        for c in body.get("contents", [])
    )
    config = body.get("generationConfig", {})
    wire = next((config[k] for k in GEMINI_SCHEMA_KEYS if k in config), None)
    text = fakes.responder(Asked("gemini", model, turns, wire))
    prompt = "".join(f"{role}: {part}\n" for role, part in turns) + json.dumps(wire or {})
    read = fakes.cache.automatic(model, prompt)
    usage = {
        "promptTokenCount": tokens(prompt),
        "candidatesTokenCount": tokens(text),
        "totalTokenCount": tokens(prompt) + tokens(text),
    }
    if read:
        usage["cachedContentTokenCount"] = read
    candidate = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "finishReason": "STOP",
        "index": 0,
    }
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}


# --- the server --------------------------------------------------------------------------


def answer(fakes: ProviderFakes, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The provider's answer to a request on ``path``; None for a path no fake serves."""
    if path.startswith("/openai/") and path.endswith("/chat/completions"):
        return _openai(fakes, body)
    if path.startswith("/anthropic/") and path.endswith("/v1/messages"):
        return _anthropic(fakes, body)
    if path.startswith("/gemini/") and ":generateContent" in path:
        model = path.rsplit("/models/", 1)[1].split(":", 1)[0]
        return _gemini(fakes, body, model)
    return None


def _provider_of(path: str) -> Provider | None:
    head = path.strip("/").split("/", 1)[0]
    return next((p for p in PROVIDERS if p == head), None)


def _handler(fakes: ProviderFakes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            path = self.path.split("?", 1)[0]
            provider = _provider_of(path)
            if provider is not None:
                fakes.record(Received(provider, path, dict(self.headers), body))
            if fakes.latency_s:
                time.sleep(fakes.latency_s)
            if fakes.storm is not None and fakes.storm.refuse():
                self._send_rate_limited(fakes.storm.retry_after_s)
                return
            try:
                payload = answer(fakes, path, body)
            except Exception as exc:  # a responder bug: say so to the client and the test
                self._send(400, {"error": {"message": f"fake failed: {exc!r}"}})
                return
            if payload is None:
                self._send(404, {"error": {"message": f"no fake at {path}"}})
                return
            self._send(200, payload)

        def _send(
            self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_rate_limited(self, retry_after_s: float | None) -> None:
            error = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}
            headers = {} if retry_after_s is None else {"Retry-After": f"{retry_after_s:g}"}
            self._send(429, {"error": error}, headers)

    return Handler


@contextmanager
def serve_provider_fakes(
    responder: Responder | None = None,
    *,
    min_cache_tokens: int = MIN_CACHE_TOKENS,
    latency_s: float = 0.0,
    storm: RateLimitStorm | None = None,
) -> Iterator[ProviderFakes]:
    """Serve the three fakes on a free loopback port for the duration of the block."""
    fakes = ProviderFakes(
        responder=responder or GPT4oResponder(),
        cache=PromptCache(min_cache_tokens),
        latency_s=latency_s,
        storm=storm,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fakes))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fakes.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fakes
    finally:
        server.shutdown()
        server.server_close()


def set_dummy_env(setenv: Callable[[str, str], None]) -> None:
    """Put the dummy keys litellm asks for in the environment (``monkeypatch.setenv``)."""
    for name, value in DUMMY_ENV.items():
        setenv(name, value)
