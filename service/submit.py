"""Accepting jobs: limits, the bounded upload, PDF checks, settings checks, then the queue.

Shared by the API (``POST /v1/reviews``, ``POST /v1/runs``) and the web forms. Every
refusal is an :class:`~service.errors.ApiError` with a code and an actionable detail, and
a refused upload leaves nothing behind.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from core.clock import Clock
from core.settings import Settings, flatten
from gateway.errors import SettingsError
from reviewer.review.errors import (
    NotAPdfError,
    PdfTooLargeError,
    ReviewInputError,
)
from scientist.ideas.given import GivenIdeaError, as_setting, parse_data, parse_idea_text
from scientist.ideas.template import shipped_templates
from service.config import ServiceConfig, ServicePaths, service_paths
from service.copilot import CopilotStore
from service.errors import ApiError, JobLimitError, QueueFullError
from service.limits import (
    MULTIPART_OVERHEAD,
    FormLimits,
    SlidingWindowLimiter,
    check_declared_length,
    limited_body,
    login_limiter,
    too_large,
)
from service.models import JobKind, ReviewOptions, RunRequest
from service.pdfcheck import CheckerPool
from service.store import JobRecord, JobStore, new_job_id

PDF_TYPES = {"application/pdf", "application/x-pdf", "application/octet-stream", ""}
COPY_CHUNK = 1024 * 1024
# A full queue drains at the workers' pace (minutes per job with a real model): clients
# come back in half a minute rather than hammer the API.
QUEUE_FULL_RETRY_AFTER_S = 30


@dataclass
class ServiceState:
    """What every request handler shares: settings, the stores, the two rate limiters."""

    config: ServiceConfig
    settings: Settings
    paths: ServicePaths
    store: JobStore
    copilot: CopilotStore
    limiter: SlidingWindowLimiter
    login_limiter: SlidingWindowLimiter
    pdf_checker: CheckerPool
    templates: Callable[[], list[str]] = field(default=shipped_templates)

    @classmethod
    def build(cls, config: ServiceConfig, clock: Clock = time.monotonic) -> ServiceState:
        """Open the store and set up the limiters (on ``clock``) for ``config``."""
        settings = config.settings()
        paths = service_paths(settings)
        return cls(
            config=config,
            settings=settings,
            paths=paths,
            store=JobStore(paths.database),
            copilot=CopilotStore(paths.database),
            limiter=SlidingWindowLimiter(settings.service.rate_limit_per_minute, clock=clock),
            login_limiter=login_limiter(settings.service, clock),
            pdf_checker=CheckerPool(
                size=settings.service.pdf_check_workers,
                memory_mb=settings.service.pdf_check_memory_mb,
                timeout_s=settings.service.pdf_check_timeout_s,
            ),
        )


def upload_limit_mb(settings: Settings) -> float:
    """The largest PDF accepted: the upload limit, or the reviewer's own if that is lower."""
    return min(settings.service.max_upload_mb, settings.review.max_pdf_mb)


def admit(state: ServiceState, user: str) -> None:
    """Rate limit, the unfinished-jobs limit and the queue limit, checked before any upload
    is read."""
    state.limiter.check(user)
    limit = state.settings.service.max_concurrent_jobs
    if state.store.unfinished(user) >= limit:
        raise job_limit(JobLimitError(user, limit))
    max_queued = state.settings.service.max_queued_jobs
    if max_queued is not None and state.store.queued() >= max_queued:
        raise queue_full(QueueFullError(max_queued))


def job_limit(exc: JobLimitError) -> ApiError:
    """429 for a user with too many unfinished jobs."""
    return ApiError(429, "too_many_jobs", str(exc), headers={"Retry-After": "30"})


def queue_full(exc: QueueFullError) -> ApiError:
    """429 while the queue holds service.max_queued_jobs jobs."""
    headers = {"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)}
    return ApiError(429, "queue_full", str(exc), headers=headers)


def queue_job(
    state: ServiceState, kind: JobKind, user: str, params: dict[str, Any], job_id: str
) -> JobRecord:
    """Insert the job, re-checking the unfinished-jobs and queue limits atomically."""
    try:
        return state.store.create(
            kind,
            user,
            params,
            job_id=job_id,
            max_unfinished=state.settings.service.max_concurrent_jobs,
            max_queued=state.settings.service.max_queued_jobs,
        )
    except JobLimitError as exc:
        raise job_limit(exc) from exc
    except QueueFullError as exc:
        raise queue_full(exc) from exc


def job_settings(state: ServiceState, preset: str | None, overrides: dict[str, Any]) -> Settings:
    """A job's settings, or 422 explaining what is wrong with its options."""
    try:
        return state.config.for_job(preset, overrides)
    except SettingsError as exc:
        raise ApiError(422, "invalid_settings", str(exc)) from exc


async def read_form(request: Request, state: ServiceState) -> FormData:
    """The multipart form, read through a byte limit (never more than the limit is read)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the paper as multipart/form-data with the PDF in a part named 'file' "
            "(curl -F file=@paper.pdf).",
        )
    limit_mb = upload_limit_mb(state.settings)
    limit = int(limit_mb * 1024 * 1024) + MULTIPART_OVERHEAD
    check_declared_length(request, limit, limit_mb)
    fields = FormLimits.of(state.settings.service)
    parser = MultiPartParser(
        request.headers,
        limited_body(request, limit, limit_mb),
        max_files=1,
        max_fields=fields.max_fields,
        max_part_size=fields.max_field_bytes,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise fields.refusal(exc.message, "bad_multipart") from exc


def review_options(form: FormData) -> ReviewOptions:
    """The review options among the form fields, validated (422 with the field's problem)."""
    fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str) and v != ""}
    try:
        return ReviewOptions.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()
        )
        raise ApiError(
            422,
            "invalid_options",
            f"{problems}. Allowed fields: file, preset, num_reviewers (1-10), "
            "num_reflections (0-10).",
        ) from exc


def uploaded_file(form: FormData) -> UploadFile:
    """The 'file' part, or 422."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise ApiError(
            422,
            "missing_file",
            "No PDF in the form: send it in a part named 'file' (curl -F file=@paper.pdf).",
        )
    return pdf_part(upload)


def pdf_part(upload: UploadFile) -> UploadFile:
    """The upload, unless its part declares a type other than a PDF's (415)."""
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type not in PDF_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"{upload.filename}: the part's content type is {content_type!r}; "
            "upload a PDF (application/pdf).",
        )
    return upload


async def save_upload(upload: UploadFile, target: Path, limit_mb: float) -> int:
    """Copy the spooled upload to ``target``; its size in bytes (413 over the limit)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(COPY_CHUNK):
            size += len(chunk)
            if size > limit_mb * 1024 * 1024:
                raise too_large(limit_mb)
            out.write(chunk)
    return size


def check_pdf(path: Path, filename: str, settings: Settings, checker: CheckerPool) -> None:
    """Signature, parse, encryption and page limit, as the reviewer checks them, in one of
    the warm bounded checkers; text extraction is the job's."""
    try:
        checker.check(path, max_pages=settings.review.max_pages)
    except ReviewInputError as exc:
        raise pdf_refusal(exc, filename) from exc


def pdf_refusal(exc: ReviewInputError, filename: str) -> ApiError:
    """The reviewer's complaint about a PDF, as an API error naming the uploaded file."""
    detail = f" ({exc.detail})" if exc.detail else ""
    message = f"{filename}: {exc.reason}{detail}; {exc.advice}."
    if isinstance(exc, PdfTooLargeError):
        return ApiError(413, "too_large", message)
    if isinstance(exc, NotAPdfError):
        return ApiError(415, "not_a_pdf", message)
    code = type(exc).__name__.removesuffix("Error")
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in code).lstrip("_")
    return ApiError(422, snake, message)


async def submit_review(request: Request, state: ServiceState, user: str) -> JobRecord:
    """Everything ``POST /v1/reviews`` does before the job is queued."""
    admit(state, user)
    form = await read_form(request, state)
    try:
        options = review_options(form)
        settings = job_settings(state, options.preset, options.overrides())
        upload = uploaded_file(form)
        return await queue_upload(state, user, upload, options, settings)
    finally:
        await form.close()


def upload_name(upload: UploadFile) -> str:
    """The upload's file name, without any folder part, at most 200 characters."""
    return Path(upload.filename or "paper.pdf").name[:200]


async def queue_upload(
    state: ServiceState, user: str, upload: UploadFile, options: ReviewOptions, settings: Settings
) -> JobRecord:
    """Store and check one uploaded PDF, then queue its review; a refusal leaves nothing."""
    job_id = new_job_id()
    filename = upload_name(upload)
    try:
        target = state.paths.upload(job_id)
        await _store_and_check(upload, filename, target, settings, state.pdf_checker)
        params = {"filename": filename, "preset": options.preset, **_options(options)}
        return queue_job(state, "review", user, params, job_id)
    except BaseException:
        shutil.rmtree(state.paths.job_dir(job_id), ignore_errors=True)
        raise


def _options(options: ReviewOptions) -> dict[str, Any]:
    return {"overrides": options.overrides(), "options": options.model_dump()}


async def _store_and_check(
    upload: UploadFile, filename: str, target: Path, settings: Settings, checker: CheckerPool
) -> None:
    size = await save_upload(upload, target, upload_limit_mb(settings))
    if size == 0:
        raise ApiError(
            422, "empty_file", f"{filename}: the file is empty (0 bytes); upload the PDF itself."
        )
    await run_in_threadpool(check_pdf, target, filename, settings, checker)


def submit_run(state: ServiceState, user: str, body: RunRequest) -> JobRecord:
    """Everything ``POST /v1/runs`` does before the job is queued."""
    admit(state, user)
    templates = state.templates()
    if body.template not in templates:
        raise ApiError(
            422,
            "unknown_template",
            f"No shipped template {body.template!r}; choose one of "
            f"{', '.join(templates) or '(none installed)'} (GET /v1/templates).",
        )
    overrides = {**body.settings, **own_idea_settings(body)}
    job_settings(state, body.preset, overrides)
    params: dict[str, Any] = {
        "template": body.template,
        "preset": body.preset,
        "overrides": overrides,
    }
    if body.copilot:
        params["copilot"] = copilot_allowed(state)
    return queue_job(state, "run", user, params, new_job_id())


def copilot_allowed(state: ServiceState) -> bool:
    """True, or 422 ``copilot_unavailable`` where run jobs go to the Ray cluster: a pause
    waits for its answer in the worker that runs the job."""
    if state.settings.cluster.service_runs:
        raise ApiError(
            422,
            "copilot_unavailable",
            "This service runs its run jobs on a Ray cluster (cluster.service_runs), where a "
            "run cannot pause for your answers; submit it without copilot.",
        )
    return True


def own_idea_settings(body: RunRequest) -> dict[str, Any]:
    """The body's ``idea`` and ``topic`` as the settings that carry them (``ideas.given``,
    ``ideas.topic``; several ideas each run); 422 invalid_idea naming what is wrong."""
    if body.idea is None:
        return {} if body.topic is None else {"ideas.topic": body.topic}
    if body.topic is not None:
        raise ApiError(
            422,
            "invalid_idea",
            "topic steers the ideas the model generates; with your own idea there are none "
            "to steer. Send idea or topic, not both.",
        )
    try:
        ideas = (
            parse_idea_text(body.idea, "idea")
            if isinstance(body.idea, str)
            else parse_data(body.idea, "idea")
        )
    except GivenIdeaError as exc:
        raise ApiError(422, "invalid_idea", str(exc)) from exc
    own: dict[str, Any] = {"ideas.given": as_setting(ideas)}
    if len(ideas) > 1 and "pipeline.ideas_to_run" not in flatten(body.settings):
        own["pipeline.ideas_to_run"] = len(ideas)
    return own
