"""The one door to LLMs: structured output, retries, cache, ledger, budgets, embedded model."""

# litellm is imported only through gateway._litellm.load_litellm, which first points it at its
# bundled price list (it would fetch one from the internet at import otherwise).
from gateway.cache import ResponseCache
from gateway.errors import *  # noqa: F403
from gateway.gateway import Gateway
from gateway.ledger import Ledger, Totals
from gateway.scripted import ScriptedLLM
from gateway.types import ChatMessage, LedgerEntry, LLMRequest, LLMResponse

__all__ = [
    "ChatMessage",
    "Gateway",
    "LLMRequest",
    "LLMResponse",
    "Ledger",
    "LedgerEntry",
    "ResponseCache",
    "ScriptedLLM",
    "Totals",
]
