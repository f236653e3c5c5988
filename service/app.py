"""The FastAPI app: the JSON API under /v1, /healthz, the web pages, OpenAPI docs at /docs.

    app = create_app(ServiceConfig(preset="debug"))

Every refusal is ``{"error": code, "detail": "what was wrong and what to do"}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.runstore import RunPaths
from core.settings import preset_names
from service import pages
from service.auth import request_user, require_token
from service.batch import BatchFile, submit_batch
from service.config import ServiceConfig
from service.copilot import answer_pause
from service.errors import ApiError, not_found
from service.limits import BodyLimitMiddleware
from service.metrics import METRICS_MEDIA_TYPE, metrics_registry, render
from service.models import (
    BatchAccepted,
    BatchItem,
    CopilotAnswer,
    ErrorBody,
    Health,
    JobAccepted,
    JobKind,
    JobList,
    ReviewJobView,
    RunJobView,
    RunRequest,
    TemplateList,
)
from service.store import JobRecord
from service.submit import ServiceState, submit_review, submit_run
from service.views import (
    IDEA_DOCUMENTS,
    idea_review,
    job_summaries,
    links,
    review_view,
    run_view,
    summary,
)

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
}
# review.html is model-written text (escaped): no scripts, nothing fetched from elsewhere.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 415, 422, 429)
}
# The PDF uploads bound their own bodies (service.max_upload_mb); every other body is
# bounded by service.max_form_kb before it is read.
UPLOAD_ROUTES = frozenset(
    {("POST", "/v1/reviews"), ("POST", "/v1/reviews:batch"), ("POST", "/jobs/review")}
)
REVIEW_OPTION_PROPERTIES: dict[str, Any] = {
    "preset": {"type": "string", "enum": preset_names()},
    "num_reviewers": {"type": "integer", "minimum": 1, "maximum": 10},
    "num_reflections": {"type": "integer", "minimum": 0, "maximum": 10},
}
REVIEW_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The PDF."},
                        **REVIEW_OPTION_PROPERTIES,
                    },
                }
            }
        },
    }
}

BATCH_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "The PDFs, one part each (service.max_batch_files).",
                        },
                        **REVIEW_OPTION_PROPERTIES,
                    },
                }
            }
        },
    }
}


def service_state(request: Request) -> ServiceState:
    """The app's shared state."""
    state: ServiceState = request.app.state.service
    return state


State = Annotated[ServiceState, Depends(service_state)]


# Declares HTTP bearer auth in the OpenAPI schema (the Authorize button of /docs, and what
# generated clients send); the header itself is checked by ``request_user``.
BEARER = HTTPBearer(auto_error=False, description="A token from service.tokens.")


def api_user(
    request: Request,
    state: State,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> str:
    """The caller, from the bearer header (or, for GET, the web login cookie)."""
    tokens = state.settings.service.tokens
    return request_user(request, tokens, cookie_ok=request.method == "GET")


User = Annotated[str, Depends(api_user)]


def owned_job(state: ServiceState, user: str, kind: JobKind, job_id: str) -> JobRecord:
    """The caller's job of this kind, or 404 (another user's job looks like no job)."""
    job = state.store.get(job_id, owner=user)
    if job is None or job.kind != kind:
        raise not_found(kind, job_id)
    return job


def accepted(job: JobRecord, state: ServiceState) -> JSONResponse:
    """202 with the job's links and a Location header."""
    body = JobAccepted(id=job.id, kind=job.kind, status=job.status, links=links(job, state.paths))
    return JSONResponse(
        body.model_dump(mode="json"), status_code=202, headers={"Location": body.links.self}
    )


def file_response(path: Path, media_type: str, what: str, job: JobRecord) -> FileResponse:
    """The file, or 404 saying whether it is still coming or will never come."""
    if not path.is_file():
        raise ApiError(404, "not_ready", f"{what} is not available: {_missing_hint(job)}.")
    headers = {"Content-Security-Policy": REPORT_CSP} if media_type.startswith("text/html") else {}
    return FileResponse(path, media_type=media_type, headers=headers)


def _missing_hint(job: JobRecord) -> str:
    if job.status in ("queued", "running"):
        return f"the job is {job.status}; poll GET /v1/{job.kind}s/{job.id} until it is done"
    reason = job.error or (job.result or {}).get("pdf_error")
    return f"the job ended {job.status} without it" + (f" ({reason})" if reason else "")


api = APIRouter(prefix="/v1", responses=ERRORS)


@api.post(
    "/reviews",
    status_code=202,
    response_model=JobAccepted,
    openapi_extra=REVIEW_FORM_SCHEMA,
    summary="Submit a PDF for review",
)
async def create_review(request: Request, state: State, user: User) -> JSONResponse:
    """Queue a review of the uploaded PDF (multipart: ``file`` and optional options)."""
    return accepted(await submit_review(request, state, user), state)


@api.post(
    "/reviews:batch",
    status_code=202,
    response_model=BatchAccepted,
    openapi_extra=BATCH_FORM_SCHEMA,
    summary="Submit several PDFs for review",
)
async def create_review_batch(request: Request, state: State, user: User) -> JSONResponse:
    """Queue one review per uploaded PDF (multipart: ``files`` parts, optional options for
    all). 202 lists, in upload order, each file's job or its refusal; a Retry-After header
    comes with refusals for want of room (queue_full, too_many_jobs)."""
    items = [batch_item(result, state) for result in await submit_batch(request, state, user)]
    queued = sum(item.status == "queued" for item in items)
    body = BatchAccepted(accepted=queued, refused=len(items) - queued, items=items)
    waits = [item.retry_after_s for item in items if item.retry_after_s is not None]
    headers = {"Retry-After": str(max(waits))} if waits else {}
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers=headers)


def batch_item(result: BatchFile, state: ServiceState) -> BatchItem:
    """One file's line of the batch answer."""
    outcome = result.outcome
    if isinstance(outcome, ApiError):
        retry = outcome.headers.get("Retry-After")
        return BatchItem(
            index=result.index,
            file=result.filename,
            status="refused",
            http_status=outcome.status,
            error=outcome.code,
            detail=outcome.detail,
            retry_after_s=int(retry) if retry is not None and outcome.status == 429 else None,
        )
    return BatchItem(
        index=result.index,
        file=result.filename,
        status="queued",
        id=outcome.id,
        links=links(outcome, state.paths),
    )


@api.get("/reviews", response_model=JobList, summary="Your review jobs")
def list_reviews(state: State, user: User) -> JobList:
    """Your review jobs, newest first."""
    return JobList(jobs=[summary(j) for j in state.store.jobs_of(user, "review")])


@api.get("/reviews/{job_id}", response_model=ReviewJobView, summary="A review job")
def get_review(job_id: str, state: State, user: User) -> ReviewJobView:
    """Status, progress, and the review JSON once done."""
    return review_view(owned_job(state, user, "review", job_id), state.paths)


@api.get("/reviews/{job_id}/report.{fmt}", summary="The review report (pdf, md, html, json)")
def get_review_report(
    job_id: str, fmt: Literal["pdf", "md", "html", "json"], state: State, user: User
) -> FileResponse:
    """The report file of a finished review."""
    job = owned_job(state, user, "review", job_id)
    path = state.paths.review_dir(job_id) / f"review.{fmt}"
    return file_response(path, MEDIA_TYPES[fmt], f"report.{fmt}", job)


@api.post("/reviews/{job_id}/cancel", response_model=ReviewJobView, summary="Cancel a review")
def cancel_review(job_id: str, state: State, user: User) -> ReviewJobView:
    """Cancel a queued review at once, or stop a running one at its next step."""
    owned_job(state, user, "review", job_id)
    job = state.store.cancel(job_id, user)
    assert job is not None
    return review_view(job, state.paths)


@api.post("/runs", status_code=202, response_model=JobAccepted, summary="Start a paper run")
def create_run(body: RunRequest, state: State, user: User) -> JSONResponse:
    """Queue the paper pipeline on a shipped template, with optional settings overrides."""
    return accepted(submit_run(state, user, body), state)


@api.get("/runs", response_model=JobList, summary="Your run jobs")
def list_runs(state: State, user: User) -> JobList:
    """Your run jobs, newest first."""
    return JobList(jobs=job_summaries(state.store.jobs_of(user, "run"), state.copilot))


@api.get("/runs/{job_id}", response_model=RunJobView, summary="A run job")
def get_run(job_id: str, state: State, user: User) -> RunJobView:
    """Stage per idea, cost so far, the pipeline's summary once done; a co-pilot run's
    pause waiting for your answer (status ``waiting``) and the answers given."""
    return run_view(owned_job(state, user, "run", job_id), state.paths, state.copilot)


@api.post(
    "/runs/{job_id}/copilot", response_model=RunJobView, summary="Answer a co-pilot run's pause"
)
def answer_run_pause(job_id: str, body: CopilotAnswer, state: State, user: User) -> RunJobView:
    """Answer the pause a co-pilot run waits at: approve, edit the stage's artifact, or
    feedback to redo the stage with. One answer per pause (409 ``not_waiting`` otherwise);
    an edit the pipeline could not use gets 422 ``invalid_answer``."""
    job = owned_job(state, user, "run", job_id)
    answer_pause(state.copilot, job, body)
    return run_view(job, state.paths, state.copilot)


@api.get(
    "/runs/{job_id}/ideas/{name}/documents/{document}",
    summary="An idea's literature review or plan",
)
def get_run_document(
    job_id: str,
    name: str,
    document: Literal["literature_review.md", "literature_review.json", "plan.md", "plan.json"],
    state: State,
    user: User,
) -> FileResponse:
    """What the literature-review and plan stages wrote for one idea of a run."""
    job = owned_job(state, user, "run", job_id)
    path = RunPaths(state.paths.run_dir(job_id)).idea(name).root / document
    return file_response(path, IDEA_DOCUMENTS[document], f"{document} of idea {name!r}", job)


@api.get("/runs/{job_id}/ideas/{name}/paper.pdf", summary="An idea's paper")
def get_run_paper(job_id: str, name: str, state: State, user: User) -> FileResponse:
    """The compiled paper of one idea of a run."""
    job = owned_job(state, user, "run", job_id)
    path = RunPaths(state.paths.run_dir(job_id)).idea(name).paper_pdf
    return file_response(path, MEDIA_TYPES["pdf"], f"the paper of idea {name!r}", job)


@api.get("/runs/{job_id}/ideas/{name}/review", summary="An idea's review")
def get_run_review(job_id: str, name: str, state: State, user: User) -> dict[str, Any]:
    """The review.json of one idea's paper."""
    job = owned_job(state, user, "run", job_id)
    review = idea_review(state.paths, job, name)
    if review is None:
        raise ApiError(404, "not_ready", f"Idea {name!r} has no review yet (job {job.status}).")
    return review


@api.post("/runs/{job_id}/cancel", response_model=RunJobView, summary="Cancel a run")
def cancel_run(job_id: str, state: State, user: User) -> RunJobView:
    """Cancel a queued run at once, or stop a running one at its next event."""
    owned_job(state, user, "run", job_id)
    job = state.store.cancel(job_id, user)
    assert job is not None
    return run_view(job, state.paths, state.copilot)


@api.get("/jobs", response_model=JobList, summary="All your jobs")
def list_jobs(state: State, user: User) -> JobList:
    """Your reviews and runs, newest first."""
    return JobList(jobs=job_summaries(state.store.jobs_of(user), state.copilot))


@api.get("/templates", response_model=TemplateList, summary="Shipped templates")
def list_templates(state: State, user: User) -> TemplateList:
    """The research templates a run can use."""
    return TemplateList(templates=state.templates())


def healthz(request: Request) -> Health:
    """Liveness and queue size; needs no token."""
    return Health(status="ok", jobs=service_state(request).store.counts())


def metrics(request: Request) -> Response:
    """Prometheus metrics of the whole service (text format), computed from the job store."""
    return Response(render(request.app.state.metrics), media_type=METRICS_MEDIA_TYPE)


def guarded_metrics(
    request: Request,
    state: State,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Response:
    """Prometheus metrics, for the bearer of service.metrics_token."""
    token = state.settings.service.metrics_token
    assert token is not None
    require_token(request, token, "GET /metrics")
    return metrics(request)


def _error_response(status: int, code: str, detail: str, headers: dict[str, str]) -> JSONResponse:
    body = ErrorBody(error=code, detail=detail).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


async def on_api_error(request: Request, exc: Exception) -> Any:
    """ApiError → its JSON body; on a web page, an error page (a 401: the login page)."""
    assert isinstance(exc, ApiError)
    if pages.wants_html(request):
        if exc.status == 401:
            return pages.login_redirect(request)
        return pages.error_page(request, exc)
    return _error_response(exc.status, exc.code, exc.detail, exc.headers)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's request validation, in our error shape."""
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return _error_response(
        422, "invalid_request", f"{problems}. See /docs for the request's schema.", {}
    )


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown route, wrong method), in our error shape."""
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    detail = str(exc.detail) + (". See /docs for the API." if exc.status_code == 404 else "")
    headers = dict(exc.headers or {})
    return _error_response(exc.status_code, codes.get(exc.status_code, "error"), detail, headers)


def add_metrics_route(app: FastAPI, service: ServiceState) -> None:
    """``GET /metrics`` on the app's own registry: open like /healthz (aggregates only, no
    users, job ids or files; the service binds loopback by default), or, with
    service.metrics_token set, for its bearer only (and then the schema declares it)."""
    app.state.metrics = metrics_registry(service.store)
    guarded = service.settings.service.metrics_token is not None
    responses: dict[int | str, dict[str, Any]] = {200: {"content": {METRICS_MEDIA_TYPE: {}}}}
    if guarded:
        responses[401] = ERRORS[401]
    app.add_api_route(
        "/metrics",
        guarded_metrics if guarded else metrics,
        methods=["GET"],
        response_class=Response,
        tags=["health"],
        summary="Prometheus metrics",
        responses=responses,
    )


def create_app(config: ServiceConfig, state: ServiceState | None = None) -> FastAPI:
    """The service's ASGI app for ``config`` (the same one the workers are given)."""
    service = state or ServiceState.build(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.pdf_checker.close()  # the warm PDF checkers end with the API

    app = FastAPI(
        title="autoscholar",
        summary="Review PDFs and generate papers: submit jobs, poll them, fetch results.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(
        BodyLimitMiddleware,
        limit_kb=app.state.service.settings.service.max_form_kb,
        exempt=UPLOAD_ROUTES,
        refuse=on_api_error,
    )
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=Health, tags=["health"])
    add_metrics_route(app, service)
    app.include_router(api, tags=["api"])
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
