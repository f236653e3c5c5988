"""Data that crosses the gateway's boundary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str
    cache: bool = Field(
        False,
        description="A cache breakpoint: the prompt up to the end of this message is a prefix "
        "that later calls share, worth a provider's prompt cache. It never changes the reply.",
    )

    def wire(self) -> dict[str, str]:
        """The plain ``{"role", "content"}`` form every provider accepts."""
        return {"role": self.role, "content": self.content}


class LLMRequest(BaseModel):
    """What a backend is asked to do: one completion, no retries, no caching."""

    model_config = ConfigDict(extra="forbid")

    model: str
    messages: list[ChatMessage]
    response_format: dict[str, Any] | None = None
    temperature: float = 0.7
    max_tokens: int = 1024
    timeout_s: float = 180.0
    api_base: str | None = None
    api_key: str | None = None

    def cache_payload(self) -> dict[str, Any]:
        """The fields that decide the reply (no timeout, key, base URL or cache breakpoints)."""
        # Breakpoints only tell a provider what to keep; leaving them out keeps the keys of
        # responses cached before they existed.
        return self.model_dump(
            include={"model", "messages", "response_format", "temperature", "max_tokens"},
            exclude={"messages": {"__all__": {"cache"}}},
        )


class LLMResponse(BaseModel):
    """A backend's reply."""

    model_config = ConfigDict(extra="forbid")

    text: str
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)
    finish_reason: str | None = None
    # ``prompt_tokens`` counts every prompt token, as providers report it; these say how many
    # of them were read from, or written to, the provider's prompt cache.
    cached_prompt_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)
    uncached_cost_usd: float = Field(
        0.0, ge=0, description="What the call would have cost with no prompt caching."
    )


class LedgerEntry(BaseModel):
    """One row of the ledger: one call through the gateway."""

    model_config = ConfigDict(extra="forbid")

    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    role: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    cache_hit: bool
    attempts: int = 1
    schema_name: str | None = None
    # Defaults keep ledger.jsonl files written before prompt caching readable.
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    uncached_cost_usd: float = 0.0
    rate_limited: int = 0  # 429 answers this call got before it went through
    backoff_wait_s: float = 0.0  # seconds it waited at its model's shared backoff gate

    @property
    def cache_savings_usd(self) -> float:
        """What prompt caching saved on this call (negative when only cache writes were paid)."""
        return self.cost_without_caching_usd - self.cost_usd

    @property
    def cost_without_caching_usd(self) -> float:
        """The uncached cost; a row written before prompt caching was recorded counts as is."""
        return self.uncached_cost_usd or self.cost_usd

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens
