"""The one door to LLMs: structured output, retries, cache, ledger, budgets, embedded model."""

import os

# litellm fetches a price list from the internet at import unless told to use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway.cache import ResponseCache
from gateway.errors import *  # noqa: F403
from gateway.gateway import Gateway
from gateway.ledger import Ledger, Totals
from gateway.scripted import ScriptedLLM
from gateway.settings import Settings, load_settings
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
    "Settings",
    "Totals",
    "load_settings",
]
