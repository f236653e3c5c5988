"""HTTP answers to typed source errors, shared by Semantic Scholar and OpenAlex."""

from __future__ import annotations

import json
from typing import Any

import httpx

from core.literature.errors import (
    MalformedResponseError,
    RateLimitedError,
    SourceError,
    SourceTimeoutError,
    SourceUnavailableError,
)


def timeouts(total_s: float, connect_s: float) -> httpx.Timeout:
    """Per-request timeouts: a short connect, the rest bounded by the source's deadline."""
    return httpx.Timeout(total_s, connect=min(connect_s, total_s))


def transport_error(exc: httpx.HTTPError, source: str) -> SourceError:
    """A typed error for a request that got no HTTP answer."""
    if isinstance(exc, httpx.TimeoutException):
        return SourceTimeoutError(
            f"{source}: request timed out ({type(exc).__name__}).", source=source
        )
    return SourceUnavailableError(
        f"{source}: cannot reach the server ({type(exc).__name__}: {exc}). Offline? Put "
        "'offline' first in literature.sources or remove this source.",
        source=source,
    )


def json_body(response: httpx.Response, source: str) -> Any:
    """The decoded JSON of a 2xx answer; any other status or a bad body raises a typed error."""
    status = response.status_code
    if status == 429:
        raise RateLimitedError(
            f"{source}: HTTP 429 Too Many Requests. Wait, lower the query rate, or use an API key.",
            source=source,
            status=status,
        )
    if status >= 500:
        raise SourceUnavailableError(
            f"{source}: HTTP {status} server error.", source=source, status=status
        )
    if status in (401, 403):
        raise SourceError(
            f"{source}: HTTP {status}: the API key was refused; check or unset it.",
            source=source,
            status=status,
        )
    if status >= 400:
        raise SourceError(
            f"{source}: HTTP {status}: {response.text[:200]}", source=source, status=status
        )
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponseError(
            f"{source}: the answer is not valid JSON ({exc}).", source=source, status=status
        ) from exc


def expect_dict(data: Any, source: str, what: str) -> dict[str, Any]:
    """``data`` if it is a JSON object, else a MalformedResponseError naming ``what``."""
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"{source}: expected a JSON object for {what}, got {type(data).__name__}.",
            source=source,
        )
    return data
