"""Typed errors. Each says what went wrong, what to do, and whether retrying can help."""

from __future__ import annotations

from typing import ClassVar

# Exit codes of both command lines (README, "Exit codes").
EXIT_FAILED = 1  # the job failed: a model call, a compile, a run whose ideas all failed
EXIT_USAGE = 2  # the command's input: bad flags (click's own code), a file or folder that is
# missing or unusable, an idea or run that is not there
EXIT_CONFIG = 3  # the configuration: invalid settings, a missing or rejected key, an unknown
# model, a missing tool (Aider, TeX, bubblewrap)


class AutoscholarError(Exception):
    """Base of every error autoscholar raises on purpose."""

    retryable: bool = False
    exit_code: ClassVar[int] = EXIT_FAILED


class SettingsError(AutoscholarError):
    """Settings or a preset are invalid."""

    exit_code = EXIT_CONFIG


class LLMError(AutoscholarError):
    """A model call failed."""

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class TransientLLMError(LLMError):
    """Rate limit, server error, timeout or dropped connection: a retry may succeed."""

    retryable = True

    def __init__(self, message: str, *, model: str | None = None, status: int | None = None):
        super().__init__(message, model=model)
        self.status = status


class RateLimitError(TransientLLMError):
    """The provider answered 429; ``retry_after_s`` is its Retry-After, when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status: int | None = 429,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, model=model, status=status)
        self.retry_after_s = retry_after_s


class LLMTimeoutError(TransientLLMError):
    """The request outlived its timeout (a retry may succeed on a remote provider)."""


class RetriesExhaustedError(LLMError):
    """A transient failure outlived the retry policy."""


class AuthenticationFailedError(LLMError):
    """The provider rejected or did not get an API key."""

    exit_code = EXIT_CONFIG


class UnknownModelError(LLMError):
    """The provider does not know the model string."""

    exit_code = EXIT_CONFIG


class ContextLengthError(LLMError):
    """The prompt does not fit the model's context window."""


class BadRequestError(LLMError):
    """The provider refused the request as malformed; retrying will not help."""


class StructuredOutputError(LLMError):
    """The model's reply did not validate against the schema after all re-asks."""

    def __init__(self, message: str, *, model: str | None = None, raw: str = "") -> None:
        super().__init__(message, model=model)
        self.raw = raw


class BudgetExceededError(LLMError):
    """The next call would exceed the run's cost or token budget."""


class ScriptExhaustedError(LLMError):
    """A ScriptedLLM was asked for more replies than its script holds (tests only)."""


class LocalModelError(LLMError):
    """The embedded model server could not be prepared or started."""


class MissingDependencyError(AutoscholarError):
    """An optional package or system tool is needed and absent."""

    exit_code = EXIT_CONFIG
