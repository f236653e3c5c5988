"""The one door to LLMs: ``Gateway.complete(messages, role=..., schema=...)``."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from gateway._litellm import load_litellm
from gateway.backends import Backend, LiteLLMBackend, price
from gateway.cache import ResponseCache, cache_key
from gateway.errors import (
    AuthenticationFailedError,
    LLMTimeoutError,
    LocalModelError,
    RateLimitError,
    StructuredOutputError,
)
from gateway.ledger import Ledger
from gateway.local import LocalServer, shared_server
from gateway.prompts import GATEWAY_PROMPTS, render
from gateway.ratelimit import PROCESS_GATES, CallWaits, ModelGates
from gateway.retry import RetryPolicy
from gateway.settings import GatewaySettings, Role
from gateway.structured import (
    InvalidReply,
    parse_reply,
    response_format,
    schema_text,
    structured_mode,
)
from gateway.types import ChatMessage, LedgerEntry, LLMRequest, LLMResponse

T = TypeVar("T", bound=BaseModel)
MessageLike = ChatMessage | Mapping[str, object]
LOCAL_KEY = "sk-no-key-required"
DEFAULT_CONTEXT_TOKENS = 8192


def as_messages(messages: Sequence[MessageLike]) -> list[ChatMessage]:
    """Accept ``{"role", "content"}`` dicts or ChatMessages."""
    return [m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m) for m in messages]


class Gateway:
    """Structured output, retries, cache, ledger and budgets around one backend per model.

    ``backend`` replaces every real backend (tests pass a ScriptedLLM); ``local_server``
    replaces the process-wide embedded server; ``clock`` is the latency clock; ``gates``
    replaces the process-wide per-model gates (in-flight cap, shared 429 backoff).
    """

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        ledger: Ledger | None = None,
        cache: ResponseCache | None = None,
        backend: Backend | None = None,
        retry: RetryPolicy | None = None,
        local_server: LocalServer | None = None,
        clock: Callable[[], float] = time.perf_counter,
        gates: ModelGates | None = None,
    ) -> None:
        llm = settings.llm
        self.settings = settings
        self.ledger = ledger or Ledger()
        self.cache = cache
        self._backend = backend
        self._real = LiteLLMBackend()
        self._local = local_server
        self._clock = clock
        self._checked_keys: set[str] = set()
        self.gates = gates or PROCESS_GATES
        self.retry = retry or RetryPolicy(llm.max_retries, llm.backoff_initial_s, llm.backoff_max_s)

    @classmethod
    def from_settings(cls, settings: GatewaySettings, run_dir: Path | None = None) -> Gateway:
        """A gateway with the cache and a ledger file (``run_dir/ledger.jsonl``) per settings."""
        cache = ResponseCache(settings.cache_file()) if settings.llm.cache_enabled else None
        ledger = Ledger(run_dir / "ledger.jsonl" if run_dir else None)
        return cls(settings, ledger=ledger, cache=cache)

    @overload
    def complete(
        self,
        messages: Sequence[MessageLike],
        *,
        role: Role,
        schema: None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        model: str | None = None,
    ) -> str: ...

    @overload
    def complete(
        self,
        messages: Sequence[MessageLike],
        *,
        role: Role,
        schema: type[T],
        temperature: float | None = None,
        max_tokens: int | None = None,
        model: str | None = None,
    ) -> T: ...

    def complete(
        self,
        messages: Sequence[MessageLike],
        *,
        role: Role,
        schema: type[T] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        model: str | None = None,
    ) -> str | T:
        """Ask the role's model (or ``model``); with ``schema``, return a validated instance."""
        model = model or self.settings.llm.models.for_role(role)
        msgs = as_messages(messages)
        sampling = {"temperature": temperature, "max_tokens": max_tokens}
        if schema is None:
            return self._call(role, model, msgs, None, sampling, None).text
        return self._complete_structured(role, model, msgs, schema, sampling)

    def with_ledger(self, ledger: Ledger) -> Gateway:
        """The same gateway (backend, cache, server, retry) recording into another ledger."""
        clone = copy.copy(self)
        clone.ledger = ledger
        return clone

    def max_concurrency(self, role: Role, models: Sequence[str] = ()) -> int | None:
        """How many calls of ``role`` may run at once: 1 when every model it uses (the role's
        model, or ``models`` when the role spreads over several, as a reviewer ensemble
        does) is the embedded server; no limit (None) otherwise.

        The embedded llama.cpp server answers one request at a time and reuses the KV cache
        of the longest prefix shared with the previous request; parallel branches would only
        queue there and evict each other's cache.
        """
        used = list(models) or [self.settings.llm.models.for_role(role)]
        return 1 if all(model == "local" for model in used) else None

    def context_tokens(self, model: str) -> int:
        """The model's input context window (the embedded server's ``n_ctx`` for ``local``)."""
        if model == "local":
            return self.settings.local.n_ctx
        try:
            info = load_litellm().get_model_info(model)
        except Exception:  # litellm does not know the model: assume a modest window
            return DEFAULT_CONTEXT_TOKENS
        return int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_CONTEXT_TOKENS)

    def _complete_structured(
        self,
        role: Role,
        model: str,
        msgs: list[ChatMessage],
        schema: type[T],
        sampling: dict[str, Any],
    ) -> T:
        fmt = response_format(structured_mode(model, self.settings.llm.structured_modes), schema)
        instruction = render(
            GATEWAY_PROMPTS, "structured_instruction.j2", schema_json=schema_text(schema)
        )
        msgs = _with_instruction(msgs, instruction)
        attempts = self.settings.llm.structured_reasks + 1
        for _ in range(attempts):
            reply = self._call(role, model, msgs, fmt, sampling, schema.__name__)
            try:
                return parse_reply(reply.text, schema)
            except InvalidReply as exc:
                errors = exc.errors + _truncation_note(reply)
                msgs = [
                    *msgs,
                    ChatMessage(role="assistant", content=reply.text),
                    ChatMessage(
                        role="user", content=render(GATEWAY_PROMPTS, "reask.j2", errors=errors)
                    ),
                ]
        raise StructuredOutputError(
            f"{model} (role {role}) returned no valid {schema.__name__} in {attempts} attempts. "
            f"Last errors:\n{errors}\nLast reply: {reply.text[:600]!r}\nTry a more capable model "
            "for this role, raise llm.structured_reasks, or raise the profile's output cap "
            "(profiles.compact.* or profiles.full.*) if the "
            "reply was cut off.",
            model=model,
            raw=reply.text,
        )

    def _call(
        self,
        role: Role,
        model: str,
        msgs: list[ChatMessage],
        fmt: dict[str, Any] | None,
        sampling: dict[str, Any],
        schema_name: str | None,
    ) -> LLMResponse:
        request = self._request(model, msgs, fmt, sampling)
        key = cache_key({**request.cache_payload(), "variant": self._variant(model)})
        start = self._clock()
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            self._record(
                role, model, cached, start, cache_hit=True, attempts=0, schema_name=schema_name
            )
            return cached
        self._check_key(request, role)
        self._check_budget(request)
        waits = CallWaits()
        response, attempts = self.retry.run(lambda: self._gated_attempt(request, waits))
        self._record(
            role,
            model,
            response,
            start,
            cache_hit=False,
            attempts=attempts,
            schema_name=schema_name,
            waits=waits,
        )
        if self.cache is not None:
            self.cache.put(key, model, response)
        return response

    def _request(
        self,
        model: str,
        msgs: list[ChatMessage],
        fmt: dict[str, Any] | None,
        sampling: dict[str, Any],
    ) -> LLMRequest:
        llm = self.settings.llm
        temperature = sampling["temperature"]
        return LLMRequest(
            model=model,
            messages=msgs,
            response_format=fmt,
            temperature=llm.temperature if temperature is None else temperature,
            max_tokens=sampling["max_tokens"] or self.settings.profile(model).default_max_tokens,
            timeout_s=llm.request_timeout_s,
            api_base=llm.api_bases.get(model),
        )

    def _variant(self, model: str) -> str:
        """What else decides a reply: for the embedded model, the weights served."""
        local = self.settings.local
        return f"{local.gguf_path or local.quantization}" if model == "local" else ""

    def _gated_attempt(self, request: LLMRequest, waits: CallWaits) -> LLMResponse:
        """One attempt through the model's gate; a 429 closes the gate for every job in this
        process and is waited out (up to ``llm.rate_limit_max_waits``) rather than failed."""
        llm = self.settings.llm
        gate = self.gates.gate(request.model)
        while True:
            try:
                with gate.slot(llm.max_inflight_per_model, waits):
                    response = self._attempt(request)
            except RateLimitError as exc:
                waits.rate_limited += 1
                gate.rate_limited(exc.retry_after_s, llm.backoff_initial_s, llm.backoff_max_s)
                if waits.rate_limited > llm.rate_limit_max_waits:
                    raise
                continue
            gate.succeeded()
            return response

    def _attempt(self, request: LLMRequest) -> LLMResponse:
        """One try; routing per try restarts an embedded server that died since the last one."""
        backend, routed = self._route(request)
        try:
            return backend.generate(routed)
        except LLMTimeoutError as exc:
            if request.model != "local":
                raise
            # The embedded server answers one request at a time and keeps working on an
            # abandoned one: a retry would only queue behind it.
            raise LocalModelError(
                f"The embedded model did not answer within {routed.timeout_s:.0f} s "
                f"({request.max_tokens} tokens allowed). Lower the role's max output tokens "
                "or raise local.min_tokens_per_s / llm.request_timeout_s.",
                model=request.model,
            ) from exc

    def _route(self, request: LLMRequest) -> tuple[Backend, LLMRequest]:
        if self._backend is not None:
            return self._backend, request
        if request.model == "local":
            server = self._local or shared_server(self.settings.local, self.settings.data_dir)
            routed = request.model_copy(
                update={
                    "model": "openai/local",
                    "api_base": server.base_url(),
                    "api_key": LOCAL_KEY,
                    "timeout_s": self._local_timeout(request),
                }
            )
            return self._real, routed
        if (
            request.api_base
            and request.model.startswith("openai/")
            and not os.environ.get("OPENAI_API_KEY")
        ):  # OpenAI-compatible servers (vLLM, llama.cpp) often need no key; the client does
            request = request.model_copy(update={"api_key": LOCAL_KEY})
        return self._real, request

    def _local_timeout(self, request: LLMRequest) -> float:
        """Enough time for the embedded server to generate every allowed token, slowly."""
        floor = request.max_tokens / self.settings.local.min_tokens_per_s + 120.0
        return max(request.timeout_s, floor)

    def _check_key(self, request: LLMRequest, role: Role) -> None:
        """Fail before the first request when the provider's key is not set."""
        if (
            self._backend is not None
            or request.model == "local"
            or request.api_base
            or request.model in self._checked_keys
        ):
            return
        litellm = load_litellm()

        try:
            found = litellm.validate_environment(model=request.model)
        except Exception:  # litellm cannot tell for this provider; let the request decide
            found = {"keys_in_environment": True}
        if not found.get("keys_in_environment", True):
            missing = ", ".join(found.get("missing_keys", [])) or "the provider's API key"
            raise AuthenticationFailedError(
                f"{request.model} (role {role}) needs {missing} in the environment; export it, "
                f"or choose another model for the {role} role (e.g. "
                f"AUTOSCHOLAR_LLM__MODELS__{role.upper()}=local).",
                model=request.model,
            )
        self._checked_keys.add(request.model)

    def _check_budget(self, request: LLMRequest) -> None:
        # The ledger decides: a scoped ledger (one idea) has a budget of its own.
        budget = self.settings.budget
        prompt = estimate_prompt_tokens(request)
        cost = price(request.model, prompt, request.max_tokens)
        self.ledger.check_budget(budget, tokens=prompt + request.max_tokens, cost_usd=cost)

    def _record(
        self,
        role: Role,
        model: str,
        response: LLMResponse,
        start: float,
        *,
        cache_hit: bool,
        attempts: int,
        schema_name: str | None,
        waits: CallWaits | None = None,
    ) -> None:
        waits = waits or CallWaits()
        self.ledger.record(
            LedgerEntry(
                role=role,
                model=model,
                prompt_tokens=response.prompt_tokens,
                completion_tokens=response.completion_tokens,
                cost_usd=0.0 if cache_hit else response.cost_usd,
                latency_s=self._clock() - start,
                cache_hit=cache_hit,
                attempts=attempts,
                schema_name=schema_name,
                cached_prompt_tokens=response.cached_prompt_tokens,
                cache_write_tokens=response.cache_write_tokens,
                uncached_cost_usd=0.0 if cache_hit else response.uncached_cost_usd,
                rate_limited=waits.rate_limited,
                backoff_wait_s=waits.backoff_wait_s,
            )
        )


def _truncation_note(reply: LLMResponse) -> str:
    if reply.finish_reason != "length":
        return ""
    return "\n- the reply was cut off at the token limit: be more concise"


def estimate_prompt_tokens(request: LLMRequest) -> int:
    """Prompt tokens by litellm's counter (tiktoken for unknown models), for budget checks."""
    litellm = load_litellm()

    messages = [m.wire() for m in request.messages]
    try:
        return int(litellm.token_counter(model=request.model, messages=messages))
    except Exception:  # a tokenizer it cannot load: fall back to ~4 characters per token
        return sum(len(m.content) for m in request.messages) // 4 + 4 * len(messages)


def _with_instruction(msgs: list[ChatMessage], text: str) -> list[ChatMessage]:
    """Append ``text`` to the last user message, or add a user message with it.

    At the end, not in the system message: calls that share a long prefix (every reviewer's
    and every reflection's guidelines and paper) but ask for different schemas then still
    share it, for providers' prompt caches and the embedded server's prefix reuse alike.
    """
    if msgs and msgs[-1].role == "user":
        last = msgs[-1]
        return [*msgs[:-1], last.model_copy(update={"content": f"{last.content}\n\n{text}"})]
    return [*msgs, ChatMessage(role="user", content=text)]
