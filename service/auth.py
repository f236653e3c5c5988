"""Bearer tokens from ``service.tokens`` (user name → token), compared in constant time.

The API reads ``Authorization: Bearer <token>``; the web pages read the login cookie, and
so do the API's GET endpoints, so that links on a page (report.pdf) work in a browser.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from pydantic import SecretStr

from service.errors import unauthorized

COOKIE = "autoscholar_token"


def user_for_token(token: str, tokens: dict[str, SecretStr]) -> str | None:
    """The user whose token this is, or None. Every token is compared, each in constant time."""
    given = token.encode("utf-8")
    found = None
    for user, secret in tokens.items():
        if hmac.compare_digest(given, secret.get_secret_value().encode("utf-8")) and found is None:
            found = user
    return found


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def request_user(request: Request, tokens: dict[str, SecretStr], *, cookie_ok: bool) -> str:
    """The authenticated user, or a 401 ApiError that says how to authenticate."""
    token = bearer_token(request)
    if token is None and cookie_ok:
        token = request.cookies.get(COOKIE)
    if token is None:
        raise unauthorized(
            "No token: send 'Authorization: Bearer <token>' (ask the operator for one; "
            "it is set in service.tokens)."
        )
    user = user_for_token(token, tokens)
    if user is None:
        raise unauthorized("Unknown token: check it for typos or ask the operator for a new one.")
    return user


def require_token(request: Request, secret: SecretStr, what: str) -> None:
    """A 401 ApiError unless the request's bearer token is ``secret``."""
    token = bearer_token(request)
    if token is None or user_for_token(token, {what: secret}) is None:
        raise unauthorized(
            f"{what} needs 'Authorization: Bearer <token>' with the token set in "
            "service.metrics_token (Prometheus: authorization.credentials)."
        )
