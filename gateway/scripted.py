"""ScriptedLLM: a backend that plays back a script. For unit tests only, never a default."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from gateway.errors import LLMError, ScriptExhaustedError
from gateway.types import LLMRequest, LLMResponse

Turn = str | LLMError | Callable[[LLMRequest], str]


class ScriptedLLM:
    """Replies with the next scripted turn: a string, a function of the request, or an error.

    Every request is kept in ``requests`` so tests can assert what the model was shown.
    Asking past the end of the script raises ``ScriptExhaustedError``.
    """

    def __init__(self, turns: Sequence[Turn] | Callable[[LLMRequest], str]) -> None:
        self._fn = turns if callable(turns) else None
        self._turns: list[Turn] = [] if callable(turns) else list(turns)
        self._lock = threading.Lock()
        self.requests: list[LLMRequest] = []

    def generate(self, request: LLMRequest) -> LLMResponse:
        """The next scripted reply for ``request``."""
        with self._lock:
            self.requests.append(request)
            turn: Turn
            if self._fn is not None:
                turn = self._fn
            elif self._turns:
                turn = self._turns.pop(0)
            else:
                raise ScriptExhaustedError(
                    f"ScriptedLLM ran out of turns after {len(self.requests) - 1} replies; "
                    "the code under test made more calls than the script expects.",
                    model=request.model,
                )
        if isinstance(turn, LLMError):
            raise turn
        text = turn(request) if callable(turn) else turn
        prompt = sum(len(m.content.split()) for m in request.messages)
        return LLMResponse(text=text, prompt_tokens=prompt, completion_tokens=len(text.split()))

    @property
    def remaining(self) -> int:
        """Turns not yet played (0 for a function script)."""
        return len(self._turns)
