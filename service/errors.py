"""Typed errors of the service. Each one becomes a 4xx/5xx JSON body ``{"error", "detail"}``.

``code`` is a stable machine-readable name; ``detail`` says what was wrong and what to do.
"""

from __future__ import annotations

from gateway.errors import AutoscholarError


class ApiError(AutoscholarError):
    """A request the service refuses; rendered as ``{"error": code, "detail": detail}``."""

    def __init__(
        self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def unauthorized(detail: str) -> ApiError:
    """401 with the bearer challenge."""
    return ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def not_found(kind: str, job_id: str) -> ApiError:
    """404 for a job that does not exist or belongs to someone else (the two look the same)."""
    return ApiError(
        404,
        "not_found",
        f"No {kind} job {job_id!r} for this token; list yours with GET /v1/jobs.",
    )


class JobStoreError(AutoscholarError):
    """The job database cannot be opened or used."""


class JobLimitError(AutoscholarError):
    """The owner already has as many unfinished jobs as allowed."""

    def __init__(self, owner: str, limit: int) -> None:
        super().__init__(
            f"{owner} already has {limit} unfinished jobs (the limit); wait for one to finish "
            "or cancel one, then submit again."
        )
        self.limit = limit


class JobCancelledError(AutoscholarError):
    """The job's owner asked to cancel it; the handler stops at the next progress point."""


class ClaimLostError(AutoscholarError):
    """Another worker holds this job now (our lease ran out); stop without recording."""


class QueueFullError(AutoscholarError):
    """The queue holds service.max_queued_jobs jobs; new ones wait until it drains."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The queue is full ({limit} jobs waiting, service.max_queued_jobs); nothing was "
            "stored. Submit again after Retry-After seconds."
        )
        self.limit = limit
