"""Backends: one ``generate(request) -> response`` contract; litellm for every real provider."""

from __future__ import annotations

from typing import Any, Protocol

from gateway.errors import (
    AuthenticationFailedError,
    BadRequestError,
    ContextLengthError,
    LLMError,
    LLMTimeoutError,
    TransientLLMError,
    UnknownModelError,
)
from gateway.types import LLMRequest, LLMResponse


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
    from gateway._litellm import load_litellm

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
    if isinstance(exc, transient) or (status is not None and (status == 429 or status >= 500)):
        return TransientLLMError(f"{name} from {model}: {text}", model=model, status=status)
    if isinstance(exc, litellm.BadRequestError):
        return BadRequestError(f"{model} refused the request: {text}", model=model)
    return LLMError(f"{name} from {model}: {text}", model=model)


class LiteLLMBackend:
    """Any provider litellm supports, one attempt per call (litellm's own retries off)."""

    def generate(self, request: LLMRequest) -> LLMResponse:
        """Call ``litellm.completion`` once and normalise the reply."""
        from gateway._litellm import load_litellm

        litellm = load_litellm()

        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [m.model_dump() for m in request.messages],
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


def _normalise(reply: Any, model: str) -> LLMResponse:
    choice = reply.choices[0]
    usage = getattr(reply, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    return LLMResponse(
        text=choice.message.content or "",
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=price(model, prompt, completion),
        finish_reason=getattr(choice, "finish_reason", None),
    )


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """USD from litellm's offline price map; 0 for models it does not price (local ones)."""
    from gateway._litellm import load_litellm

    litellm = load_litellm()

    try:
        cost_in, cost_out = litellm.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # unpriced model: litellm raises a bare Exception
        return 0.0
    return float(cost_in + cost_out)
