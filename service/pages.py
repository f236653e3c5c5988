"""Server-rendered web pages: login, job list with the upload form, a review, a run.

Pages authenticate with the login cookie (the token pasted on the login page, kept
HttpOnly and SameSite=Strict so other sites cannot post forms with it; the co-pilot's
answer forms rely on it too). Unfinished jobs' pages refresh themselves every few seconds,
except a co-pilot run's while it waits for an answer. Model-written text is escaped by
Jinja2; a stage's Markdown (literature review, plan) by ``service.markdown``.
"""

from __future__ import annotations

import time
from contextlib import suppress
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from markupsafe import Markup
from pydantic import ValidationError

from core.html_templates import html_environment
from core.runstore import RunPaths
from core.settings import preset_names
from reviewer.review.form import ReviewReport
from reviewer.review.report import checks_view
from scientist.runs.report_page import Linker, RunReportError, build_report, render_run_tables
from service.auth import COOKIE, request_user, user_for_token
from service.charts import score_rows
from service.copilot import answer_pause
from service.errors import ApiError, not_found
from service.limits import FormLimits, client_address, login_throttled, read_small_form
from service.models import CopilotAnswer, JobKind, RunRequest
from service.run_documents import idea_documents, run_answers
from service.store import JobRecord
from service.submit import ServiceState, submit_review, submit_run, upload_limit_mb
from service.views import idea_review, job_summaries, review_view, run_view

TEMPLATES = Path(__file__).parent / "templates"
REFRESH_S = 2
COOKIE_MAX_AGE_S = 7 * 24 * 3600
LOCAL_NOTE = (
    'Written by the embedded model "local" (SmolLM2-135M): it proves the pipeline works; '
    "its reviews and scores are not meaningful."
)

router = APIRouter(include_in_schema=False)


@cache
def _environment() -> Environment:
    return html_environment(TEMPLATES, {"when": _when})


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "–"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``service/templates/<name>``."""
    html = _environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code)


def wants_html(request: Request) -> bool:
    """Whether the request is for a web page (not the JSON API)."""
    return not request.url.path.startswith(("/v1/", "/healthz", "/metrics", "/docs", "/openapi"))


def login_redirect(request: Request) -> RedirectResponse:
    """To the login page, coming back here afterwards."""
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _user(request: Request) -> str:
    """The user of the login cookie (401, turned into a redirect to /login, without one)."""
    return request_user(request, _state(request).settings.service.tokens, cookie_ok=True)


def _owned(request: Request, user: str, kind: JobKind, job_id: str) -> JobRecord:
    job = _state(request).store.get(job_id, owner=user)
    if job is None or job.kind != kind:
        raise not_found(kind, job_id)
    return job


def _safe_next(target: str) -> str:
    """Only local paths, so the login page cannot send anyone elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/jobs"


@router.get("/")
def home() -> RedirectResponse:
    """The job list."""
    return RedirectResponse("/jobs", status_code=303)


@router.get("/login")
def login_page(next: str = "/jobs") -> HTMLResponse:
    """Paste a token."""
    return render("login.html.j2", next=_safe_next(next), error="", user=None)


def _login_refused(exc: ApiError, target: str = "/jobs") -> HTMLResponse:
    response = render("login.html.j2", exc.status, next=target, error=exc.detail, user=None)
    response.headers.update(exc.headers)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token; keep it in an HttpOnly cookie. Failed logins are limited per address.

    An address over ``service.login_max_failures`` gets 429 before its form is read, even
    with a right token: otherwise the refusal would tell which guess was right.
    """
    state, address = _state(request), client_address(request)
    wait = state.login_limiter.retry_after(address)
    if wait is not None:
        return _login_refused(login_throttled(state.login_limiter, wait))
    try:
        form = await read_small_form(request, FormLimits.of(state.settings.service))
    except ApiError as exc:
        return _login_refused(exc)
    token = str(form.get("token", "")).strip()
    target = _safe_next(str(form.get("next", "/jobs")))
    user = user_for_token(token, state.settings.service.tokens) if token else None
    if user is None:
        state.login_limiter.record(address)
        error = "Unknown token: check it for typos or ask the operator for one."
        return render("login.html.j2", 401, next=target, error=error, user=None)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=_state(request).settings.service.cookie_secure,
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    """Forget the token."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def _jobs_page(request: Request, user: str, error: str = "", status_code: int = 200) -> Response:
    state = _state(request)
    return render(
        "jobs.html.j2",
        status_code,
        user=user,
        jobs=job_summaries(state.store.jobs_of(user), state.copilot),
        templates=state.templates(),
        presets=preset_names(),
        error=error,
        max_upload_mb=upload_limit_mb(state.settings),
        max_pages=state.settings.review.max_pages,
    )


@router.get("/jobs")
def jobs_page(request: Request) -> Response:
    """Your jobs, the upload form and the run form."""
    return _jobs_page(request, _user(request))


@router.post("/jobs/review")
async def upload_review(request: Request) -> Response:
    """The upload form: queue a review, then show its page."""
    user = _user(request)
    try:
        job = await submit_review(request, _state(request), user)
    except ApiError as exc:
        if exc.status == 401:
            raise
        return _jobs_page(request, user, exc.detail, exc.status)
    return RedirectResponse(f"/reviews/{job.id}", status_code=303)


@router.post("/jobs/run")
async def start_run(request: Request) -> Response:
    """The run form: queue a paper run, then show its page."""
    user = _user(request)
    try:
        form = await read_small_form(request, FormLimits.of(_state(request).settings.service))
    except ApiError as exc:
        return _jobs_page(request, user, exc.detail, exc.status)
    try:
        body = RunRequest(
            template=str(form.get("template", "")),
            preset=str(form.get("preset", "")) or None,
            idea=str(form.get("idea", "")).strip() or None,  # Markdown or an idea's JSON
            topic=str(form.get("topic", "")).strip() or None,
            copilot=bool(form.get("copilot")),
        )
        job = submit_run(_state(request), user, body)
    except ValidationError as exc:
        return _jobs_page(request, user, f"Choose a template ({exc.errors()[0]['msg']}).", 422)
    except ApiError as exc:
        return _jobs_page(request, user, exc.detail, exc.status)
    return RedirectResponse(f"/runs/{job.id}", status_code=303)


def _review_context(job: JobRecord) -> dict[str, Any]:
    data = (job.result or {}).get("review")
    if not data:
        return {"report": None, "rows": [], "local_note": "", "checks": None}
    report = ReviewReport.model_validate(data)
    local = "local" in report.models
    return {
        "report": report,
        "rows": score_rows(report),
        "local_note": LOCAL_NOTE if local else "",
        "checks": checks_view(report.checks),
    }


@router.get("/reviews/{job_id}")
def review_page(request: Request, job_id: str) -> Response:
    """A review: progress while it runs; scores, spread, meta-review and reports when done."""
    user = _user(request)
    job = _owned(request, user, "review", job_id)
    view = review_view(job, _state(request).paths)
    return render(
        "review.html.j2",
        user=user,
        job=view,
        refresh=REFRESH_S if job.status in ("queued", "running") else None,
        now=time.time(),
        **_review_context(job),
    )


@router.post("/reviews/{job_id}/cancel")
def cancel_review_page(request: Request, job_id: str) -> RedirectResponse:
    """Cancel from the page."""
    user = _user(request)
    _owned(request, user, "review", job_id)
    _state(request).store.cancel(job_id, user)
    return RedirectResponse(f"/reviews/{job_id}", status_code=303)


def _idea_reviews(request: Request, job: JobRecord, names: list[str]) -> dict[str, Any]:
    reviews: dict[str, Any] = {}
    for name in names:
        data = idea_review(_state(request).paths, job, name)
        if data is None:
            continue
        try:
            report = ReviewReport.model_validate(data)
        except ValidationError:
            continue
        reviews[name] = {"report": report, "rows": score_rows(report)}
    return reviews


# The files of a run's idea that the API serves, by their path inside the idea's folder.
SERVED_IDEA_FILES = {"paper/paper.pdf": "paper.pdf", "review/review.json": "review"}


def run_file_links(job_id: str) -> Linker:
    """Links of ``scientist report``'s tables on the run page: the API's file routes."""

    def link(idea: str, relative: str) -> str | None:
        route = SERVED_IDEA_FILES.get(relative)
        return f"/v1/runs/{job_id}/ideas/{quote(idea, safe='')}/{route}" if route else None

    return link


def run_tables(request: Request, job: JobRecord) -> Markup | None:
    """The tables of the run's report.html (ideas, usage per stage and role) once the run
    has ended and its run.json is readable; None before (the live table shows progress)."""
    if job.status in ("queued", "running"):
        return None
    run = RunPaths(_state(request).paths.run_dir(job.id))
    try:
        return render_run_tables(build_report(run, run_file_links(job.id)))
    except RunReportError:
        return None


@router.get("/runs/{job_id}")
def run_page(request: Request, job_id: str) -> Response:
    """A run: stage per idea, cost, ideas with scores and novelty, each idea's literature
    review and plan, papers and reviews; a co-pilot run's pause with its answer forms."""
    user = _user(request)
    return _run_page(request, user, _owned(request, user, "run", job_id))


def _run_page(
    request: Request, user: str, job: JobRecord, refused: dict[str, Any] | None = None
) -> Response:
    """The run page; ``refused``: an answer that was not taken (its error and its text, kept
    in its form so nothing typed is lost)."""
    state = _state(request)
    view = run_view(job, state.paths, state.copilot)
    running = job.status in ("queued", "running")
    run = RunPaths(state.paths.run_dir(job.id))
    return render(
        "run.html.j2",
        int(refused["status"]) if refused else 200,
        user=user,
        job=view,
        # A pause holds the page still: a refresh would lose what is being typed.
        refresh=REFRESH_S * 2 if running and view.copilot_pause is None else None,
        reviews=_idea_reviews(request, job, [i.name for i in view.ideas if i.has_review]),
        events=list(reversed(job.progress.get("events", [])))[:15],
        run_tables=run_tables(request, job),
        documents=idea_documents(run, [i.name for i in view.ideas], view.copilot_answers),
        run_answers=run_answers(run, view.copilot_answers),
        refused=refused or {},
    )


@router.post("/runs/{job_id}/copilot")
async def answer_pause_page(request: Request, job_id: str) -> Response:
    """The pause's forms: approve, edit or feedback; back to the run page. A refused answer
    shows the page again with the reason and the text as it was typed."""
    user = _user(request)
    job = _owned(request, user, "run", job_id)
    service = _state(request).settings.service
    # The edit carries a whole artifact: a field may fill the body (service.max_form_kb).
    limits = FormLimits(service.max_form_fields, service.max_form_kb)
    form = await read_small_form(request, limits)
    text = str(form.get("text", "")).replace("\r\n", "\n")  # browsers send CRLF
    action = str(form.get("action", ""))
    try:
        fields = {"action": action, "text": text, "pause": form.get("pause") or None}
        answer_pause(_state(request).copilot, job, CopilotAnswer.model_validate(fields))
    except ValidationError:
        refused = {"status": 422, "error": "Choose approve, edit or feedback.", "action": action}
        return _run_page(request, user, job, {**refused, "text": text})
    except ApiError as exc:
        refused = {"status": exc.status, "error": exc.detail, "action": action, "text": text}
        return _run_page(request, user, job, refused)
    return RedirectResponse(f"/runs/{job_id}", status_code=303)


@router.post("/runs/{job_id}/cancel")
def cancel_run_page(request: Request, job_id: str) -> RedirectResponse:
    """Cancel from the page."""
    user = _user(request)
    _owned(request, user, "run", job_id)
    _state(request).store.cancel(job_id, user)
    return RedirectResponse(f"/runs/{job_id}", status_code=303)


def error_page(request: Request, exc: ApiError) -> HTMLResponse:
    """A refusal on a web page, as a page."""
    user = None
    with suppress(ApiError):
        user = _user(request)
    return render("error.html.j2", exc.status, user=user, code=exc.code, detail=exc.detail)
