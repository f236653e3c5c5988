"""Backends: one ``generate(request) -> response`` contract; litellm for every real provider."""

from __future__ import annotations

from typing import Any, Protocol

from gateway._litellm import load_litellm
from gateway.errors import (
    AuthenticationFailedError,
    BadRequestError,
    ContextLengthError,
    LLMError,
    LLMTimeoutError,
    RateLimitError,
    TransientLLMError,
    UnknownModelError,
)
from gateway.ratelimit import retry_after_seconds
from gateway.types import ChatMessage, LLMRequest, LLMResponse

# Providers that cache a prompt prefix only where the request marks it (``cache_control``).
# OpenAI and Gemini cache long prefixes on their own; litellm turns ``cache_control`` for
# Gemini into a separate cached-content API call, so nobody else gets the marks.
EXPLICIT_CACHE_PROVIDERS = frozenset({"anthropic"})


class Backend(Protocol):
    """Anything that turns one request into one response, without retries or caching."""

    def generate(self, request: LLMRequest) -> LLMResponse:
        """Make exactly one attempt."""
        ...


def _status_of(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def classify_litellm_error(exc: Exception, model: str) -> LLMError:
    """Map a litellm/openai exception to our typed errors (transient or permanent)."""
    litellm = load_litellm()

    name = type(exc).__name__
    text = str(exc)[:500]
    if isinstance(exc, litellm.ContextWindowExceededError):
        return ContextLengthError(
            f"The prompt is longer than {model}'s context window: shorten the input or choose "
            f"a model with a longer context. ({text})",
            model=model,
        )
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return AuthenticationFailedError(
            f"{model} rejected the API key: set the provider's key (e.g. OPENAI_API_KEY, "
            f"ANTHROPIC_API_KEY, GEMINI_API_KEY) to a valid one. ({text})",
            model=model,
        )
    if isinstance(exc, litellm.NotFoundError):
        return UnknownModelError(
            f"The provider does not know model {model!r}: check the litellm model string "
            f"(e.g. openai/gpt-4o, anthropic/claude-sonnet-4-5) and its base URL. ({text})",
            model=model,
        )
    transient = (
        litellm.RateLimitError,
        litellm.Timeout,
        litellm.APIConnectionError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
    )
    status = _status_of(exc)
    if isinstance(exc, litellm.Timeout):
        return LLMTimeoutError(f"{name} from {model}: {text}", model=model, status=status)
    if isinstance(exc, litellm.RateLimitError) or status == 429:
        return RateLimitError(
            f"{name} from {model}: {text}", model=model, retry_after_s=_retry_after(exc)
        )
    if isinstance(exc, transient) or (status is not None and (status == 429 or status >= 500)):
        return TransientLLMError(f"{name} from {model}: {text}", model=model, status=status)
    if isinstance(exc, litellm.BadRequestError):
        return BadRequestError(f"{model} refused the request: {text}", model=model)
    return LLMError(f"{name} from {model}: {text}", model=model)


def _retry_after(exc: Exception) -> float | None:
    """The provider's Retry-After, from the error's HTTP response (litellm keeps it)."""
    response = getattr(exc, "response", None)
    found = retry_after_seconds(getattr(response, "headers", None))
    if found is None:
        found = retry_after_seconds(getattr(exc, "litellm_response_headers", None))
    return found


class LiteLLMBackend:
    """Any provider litellm supports, one attempt per call (litellm's own retries off)."""

    def generate(self, request: LLMRequest) -> LLMResponse:
        """Call ``litellm.completion`` once and normalise the reply."""
        litellm = load_litellm()

        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": wire_messages(request.model, request.messages),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "timeout": request.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
        }
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        if request.api_base:
            kwargs["api_base"] = request.api_base
        if request.api_key:
            kwargs["api_key"] = request.api_key
        try:
            reply = litellm.completion(**kwargs)
        except Exception as exc:  # every provider error is mapped to a typed one
            raise classify_litellm_error(exc, request.model) from exc
        return _normalise(reply, request.model)


def provider_of(model: str) -> str | None:
    """litellm's provider for ``model`` (``anthropic``, ``openai``...), None if it has none."""
    try:
        return str(load_litellm().get_llm_provider(model=model)[1])
    except Exception:  # litellm raises bare Exceptions for strings it cannot route
        return None


def wire_messages(model: str, messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Messages as litellm takes them; cache breakpoints as content blocks where needed."""
    if provider_of(model) not in EXPLICIT_CACHE_PROVIDERS:
        return [m.wire() for m in messages]
    return [_with_cache_control(m) if m.cache else m.wire() for m in messages]


def _with_cache_control(message: ChatMessage) -> dict[str, Any]:
    """litellm's documented form of an Anthropic prompt-cache breakpoint."""
    block = {"type": "text", "text": message.content, "cache_control": {"type": "ephemeral"}}
    return {"role": message.role, "content": [block]}


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def cache_usage(usage: Any) -> tuple[int, int]:
    """Prompt tokens (read from, written to) the provider's cache, from litellm's usage.

    litellm puts cache reads in ``prompt_tokens_details.cached_tokens`` for every provider
    (OpenAI's own field; Anthropic's ``cache_read_input_tokens`` and Gemini's
    ``cachedContentTokenCount`` are copied there), and Anthropic's cache writes in
    ``cache_creation_input_tokens``.
    """
    details = getattr(usage, "prompt_tokens_details", None)
    read = _count(getattr(details, "cached_tokens", None)) or _count(
        getattr(usage, "cache_read_input_tokens", None)
    )
    written = _count(getattr(usage, "cache_creation_input_tokens", None)) or _count(
        getattr(details, "cache_creation_tokens", None)
    )
    return read, written


def _normalise(reply: Any, model: str) -> LLMResponse:
    choice = reply.choices[0]
    usage = getattr(reply, "usage", None)
    prompt = _count(getattr(usage, "prompt_tokens", 0))
    completion = _count(getattr(usage, "completion_tokens", 0))
    read, written = cache_usage(usage)
    return LLMResponse(
        text=choice.message.content or "",
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_prompt_tokens=read,
        cache_write_tokens=written,
        cost_usd=price(model, prompt, completion, cache_read=read, cache_write=written),
        uncached_cost_usd=price(model, prompt, completion),
        finish_reason=getattr(choice, "finish_reason", None),
    )


def price(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cache_read: int = 0,
    cache_write: int = 0,
) -> float:
    """USD from litellm's offline price map; 0 for models it does not price (local ones).

    ``prompt_tokens`` counts every prompt token; of those, ``cache_read`` are priced at the
    provider's cache-read rate and ``cache_write`` at its cache-write rate.
    """
    litellm = load_litellm()

    try:
        cost_in, cost_out = litellm.cost_per_token(
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cache_read_input_tokens=cache_read,
            cache_creation_input_tokens=cache_write,
        )
    except Exception:  # unpriced model: litellm raises a bare Exception
        return 0.0
    return float(cost_in + cost_out)
