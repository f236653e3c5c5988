"""Typed errors of the literature layer; each says what happened and what to do."""

from __future__ import annotations

from gateway.errors import EXIT_CONFIG, EXIT_USAGE, AutoscholarError


class LiteratureError(AutoscholarError):
    """Base of the literature layer's errors."""


class SourceError(LiteratureError):
    """One source could not answer; the cascade logs it and tries the next source."""

    def __init__(self, message: str, *, source: str, status: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.status = status


class SourceTimeoutError(SourceError):
    """A source did not answer within its deadline (``literature.timeout_s``)."""

    retryable = True


class RateLimitedError(SourceError):
    """HTTP 429 outlived the bounded retries; wait, or set an API key."""

    retryable = True


class SourceUnavailableError(SourceError):
    """A 5xx answer, or the host could not be reached."""

    retryable = True


class MalformedResponseError(SourceError):
    """The answer was not the JSON shape the source documents."""


class SourceSkippedError(SourceError):
    """The source failed repeatedly and is skipped for a while (circuit breaker)."""


class IndexMissingError(LiteratureError):
    """The offline index has not been built yet."""

    exit_code = EXIT_CONFIG


class CorpusError(LiteratureError):
    """A corpus file (.bib or .jsonl) for the offline index could not be read."""

    exit_code = EXIT_USAGE
