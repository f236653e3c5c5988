"""``POST /v1/reviews:batch``: several PDFs with one set of review options, one job each.

The batch is admitted like one submission (the rate limit counts the request once; the
caller's unfinished jobs and the queue must have room for at least one job), its body is
read through ``service.max_batch_mb`` and ``service.max_batch_files``, then each ``files``
part is stored, checked and queued exactly as ``POST /v1/reviews`` would. A file that fails
gets its own refusal and the others go on. Once the queue (``service.max_queued_jobs``) or
the caller's unfinished-jobs limit is reached, every remaining file gets that same 429
refusal without being stored: resubmit those after ``retry_after_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from core.settings import Settings
from service.errors import ApiError
from service.limits import (
    MULTIPART_OVERHEAD,
    FormLimits,
    check_declared_length,
    limited_body,
)
from service.models import ReviewOptions
from service.store import JobRecord
from service.submit import (
    ServiceState,
    admit,
    job_settings,
    pdf_part,
    queue_upload,
    review_options,
    upload_name,
)

FILES_FIELD = "files"
# Refusals for want of room, not for the file: every later file of the batch shares them.
NO_ROOM = frozenset({"queue_full", "too_many_jobs"})


@dataclass(frozen=True)
class BatchFile:
    """One file of a batch and what became of it: its queued job, or the refusal."""

    index: int
    filename: str
    outcome: JobRecord | ApiError


async def submit_batch(request: Request, state: ServiceState, user: str) -> list[BatchFile]:
    """Everything ``POST /v1/reviews:batch`` does: admit, read, then queue file by file."""
    admit(state, user)
    form = await read_batch_form(request, state)
    try:
        options = review_options(form)
        settings = job_settings(state, options.preset, options.overrides())
        return await queue_files(state, user, batch_uploads(form), options, settings)
    finally:
        await form.close()


async def queue_files(
    state: ServiceState,
    user: str,
    uploads: list[UploadFile],
    options: ReviewOptions,
    settings: Settings,
) -> list[BatchFile]:
    """Queue each upload in order; after a refusal for room, refuse the rest the same way."""
    results: list[BatchFile] = []
    no_room: ApiError | None = None
    for index, upload in enumerate(uploads):
        outcome: JobRecord | ApiError
        if no_room is not None:
            outcome = no_room
        else:
            try:
                outcome = await queue_upload(state, user, named_pdf(upload), options, settings)
            except ApiError as exc:
                outcome = exc
                no_room = exc if exc.code in NO_ROOM else None
        results.append(BatchFile(index, upload_name(upload), outcome))
    return results


def named_pdf(upload: UploadFile) -> UploadFile:
    """A ``files`` part that carries a file name and a PDF's content type, or the refusal."""
    if not upload.filename:
        raise ApiError(
            422,
            "missing_file",
            "A 'files' part has no file name; send each PDF as a file "
            "(curl -F files=@a.pdf -F files=@b.pdf).",
        )
    return pdf_part(upload)


def batch_uploads(form: FormData) -> list[UploadFile]:
    """The ``files`` parts in upload order, or 422 when there are none."""
    uploads = [part for part in form.getlist(FILES_FIELD) if isinstance(part, UploadFile)]
    if not uploads:
        raise ApiError(
            422,
            "missing_file",
            "No PDFs in the batch: send each in a part named 'files' "
            "(curl -F files=@a.pdf -F files=@b.pdf).",
        )
    return uploads


async def read_batch_form(request: Request, state: ServiceState) -> FormData:
    """The multipart batch, read through service.max_batch_mb and max_batch_files."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the batch as multipart/form-data with each PDF in a part named 'files' "
            "(curl -F files=@a.pdf -F files=@b.pdf).",
        )
    service = state.settings.service
    limit = int(service.max_batch_mb * 1024 * 1024) + MULTIPART_OVERHEAD
    fields = FormLimits.of(service)
    try:
        check_declared_length(request, limit, service.max_batch_mb)
        parser = MultiPartParser(
            request.headers,
            limited_body(request, limit, service.max_batch_mb),
            max_files=service.max_batch_files,
            max_fields=fields.max_fields,
            max_part_size=fields.max_field_bytes,
        )
        return await parser.parse()
    except MultiPartException as exc:
        if exc.message.startswith("Too many files"):
            raise too_many_files(service.max_batch_files) from exc
        raise fields.refusal(exc.message, "bad_multipart") from exc
    except ApiError as exc:
        if exc.code == "too_large":
            raise batch_too_large(service.max_batch_mb) from exc
        raise


def too_many_files(limit: int) -> ApiError:
    """400 for a batch of more than service.max_batch_files PDFs (nothing was stored)."""
    return ApiError(
        400,
        "too_many_files",
        f"The batch has more than {limit} files (service.max_batch_files); nothing was "
        f"stored. Send at most {limit} PDFs per request.",
    )


def batch_too_large(limit_mb: float) -> ApiError:
    """413 for a batch body over service.max_batch_mb (nothing was stored)."""
    return ApiError(
        413,
        "too_large",
        f"The batch is larger than {limit_mb:g} MB (service.max_batch_mb); nothing was "
        "stored. Send fewer PDFs per request, or ask the operator to raise the limit.",
    )
