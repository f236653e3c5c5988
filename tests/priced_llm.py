"""PricedLLM: the scripted model with a price tag, so cost budgets can be tested offline."""

from __future__ import annotations

from gateway.backends import price
from gateway.scripted import ScriptedLLM
from gateway.types import LLMRequest, LLMResponse

# litellm's offline price map: openai/gpt-4o costs $2.50 per million prompt tokens and $10 per
# million completion tokens.
PRICED_MODEL = "openai/gpt-4o"
PROMPT_USD = 2.5e-6
COMPLETION_USD = 10e-6


class PricedLLM(ScriptedLLM):
    """A ScriptedLLM whose replies cost what the request's model charges for their tokens.

    Token counts are the scripted model's (words in the prompt, words in the reply), priced
    with the same map the gateway's budget check uses, as a provider's usage report would be.
    """

    def generate(self, request: LLMRequest) -> LLMResponse:
        """The next scripted reply, with its cost."""
        reply = super().generate(request)
        cost = price(request.model, reply.prompt_tokens, reply.completion_tokens)
        return reply.model_copy(update={"cost_usd": cost, "uncached_cost_usd": cost})
