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
        """The fields that decide the reply (no timeout, key or base URL)."""
        return self.model_dump(
            include={"model", "messages", "response_format", "temperature", "max_tokens"}
        )


class LLMResponse(BaseModel):
    """A backend's reply."""

    model_config = ConfigDict(extra="forbid")

    text: str
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)
    finish_reason: str | None = None


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

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens
