"""The one door to LLMs: structured output, retries, cache, ledger, budgets, embedded model."""

import os

# litellm fetches a price list from the internet at import unless told to use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway.cache import ResponseCache  # noqa: E402
from gateway.errors import *  # noqa: E402,F403
from gateway.gateway import Gateway  # noqa: E402
from gateway.ledger import Ledger, Totals  # noqa: E402
from gateway.scripted import ScriptedLLM  # noqa: E402
from gateway.settings import Settings, load_settings  # noqa: E402
from gateway.types import ChatMessage, LedgerEntry, LLMRequest, LLMResponse  # noqa: E402

__all__ = [
    "ChatMessage", "Gateway", "LLMRequest", "LLMResponse", "Ledger", "LedgerEntry",
    "ResponseCache", "ScriptedLLM", "Settings", "Totals", "load_settings",
]
