"""``reviewer review DIR --service URL``: review a folder of PDFs on the autoscholar service.

Talks to the service over HTTP only (``POST /v1/reviews:batch``, ``GET /v1/reviews/{id}``);
its response models are the service's own pydantic models. Files refused for want of room
(the queue or the caller's unfinished-jobs limit: HTTP 429) are resubmitted once room opens;
every other refusal is final for its file. Writes ``results.csv`` and ``results.jsonl``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.markup import escape

from core.cli_support import console, emit_json, errors, fail_json, progress_bars
from gateway.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_USAGE, AutoscholarError
from service.models import BatchAccepted, BatchItem, ErrorBody, ReviewJobView

M = TypeVar("M", bound=BaseModel)
TOKEN_ENV = "AUTOSCHOLAR_SERVICE_TOKEN"
BATCH_SIZE = 20
FINISHED = ("done", "failed", "cancelled")
RESULT_FIELDS = (
    "file",
    "job_id",
    "status",
    "decision",
    "overall_mean",
    "accept_probability",
    "error",
)


class ServiceClientError(AutoscholarError):
    """The service could not be reached or answered unexpectedly."""


class ServiceAuthError(ServiceClientError):
    """The service refused the token."""

    exit_code = EXIT_CONFIG


class RemotePaper(BaseModel):
    """One PDF of ``reviewer review --service``: its job and outcome (a line of the export)."""

    file: str
    job_id: str | None = None
    status: Literal["reviewed", "failed", "refused"]
    decision: str | None = None
    overall_mean: float | None = None
    accept_probability: float | None = None
    error: str | None = None


class RemoteReviewOutput(BaseModel):
    """What ``reviewer review --service --json`` prints: each paper and the exit code."""

    service: str
    papers: list[RemotePaper]
    exit_code: int


class _Decision(BaseModel):
    model_config = ConfigDict(extra="ignore")
    decision: str
    probability: float | None = None


class _Stats(BaseModel):
    model_config = ConfigDict(extra="ignore")
    mean: float


class _ReviewSummary(BaseModel):
    """The few fields of review.json the export needs."""

    model_config = ConfigDict(extra="ignore")
    decision: _Decision
    scores: dict[str, _Stats] = {}


@dataclass
class RemoteReview:
    """What to review where: the PDFs, the service, and the review options for all."""

    pdfs: list[Path]
    service: str
    token: str
    options: dict[str, str] = field(default_factory=dict)
    batch_size: int = BATCH_SIZE
    poll_s: float = 2.0
    timeout_s: float = 60.0


Paper = tuple[int, Path]  # a PDF and its place in the input (the same file may come twice)


@dataclass
class _Progress:
    pending: list[Paper]
    active: dict[str, Paper] = field(default_factory=dict)
    results: dict[int, RemotePaper] = field(default_factory=dict)
    submit_after: float = 0.0


def run_remote(job: RemoteReview, on_done: Callable[[RemotePaper], None]) -> list[RemotePaper]:
    """Submit every PDF in batches, poll until each is finished; a result per PDF, in order."""
    state = _Progress(pending=list(enumerate(job.pdfs)))
    headers = {"Authorization": f"Bearer {job.token}"}
    with httpx.Client(base_url=job.service, headers=headers, timeout=job.timeout_s) as client:
        while state.pending or state.active:
            if state.pending and time.monotonic() >= state.submit_after:
                _submit_next(client, job, state, on_done)
            if state.active:
                _poll(client, state, on_done)
            if state.pending or state.active:
                time.sleep(job.poll_s)
    return [state.results[index] for index in range(len(job.pdfs))]


OnDone = Callable[[RemotePaper], None]


def _submit_next(
    client: httpx.Client, job: RemoteReview, state: _Progress, on_done: OnDone
) -> None:
    chunk, state.pending = state.pending[: job.batch_size], state.pending[job.batch_size :]
    answer = _post_batch(client, [pdf for _, pdf in chunk], job.options)
    if isinstance(answer, int):  # the whole batch must wait this many seconds
        state.pending = chunk + state.pending
        state.submit_after = time.monotonic() + answer
        return
    retry: list[Paper] = []
    for item in answer.items:
        paper = chunk[item.index]
        if item.status == "queued" and item.id is not None:
            state.active[item.id] = paper
        elif item.retry_after_s is not None:
            retry.append(paper)
            state.submit_after = time.monotonic() + item.retry_after_s
        else:
            _finish(state, paper, _refused(paper[1], item), on_done)
    state.pending = retry + state.pending


def _refused(pdf: Path, item: BatchItem) -> RemotePaper:
    return RemotePaper(
        file=str(pdf), status="refused", error=f"{item.error}: {item.detail}".strip(": ")
    )


def _post_batch(
    client: httpx.Client, chunk: list[Path], options: dict[str, str]
) -> BatchAccepted | int:
    """The service's answer to one batch, or the seconds to wait when it had no room."""
    with ExitStack() as stack:
        files = [
            ("files", (pdf.name, stack.enter_context(pdf.open("rb")), "application/pdf"))
            for pdf in chunk
        ]
        response = _request(client, "POST", "/v1/reviews:batch", files=files, data=options)
    if response.status_code == 429:
        return int(response.headers.get("Retry-After", "30"))
    return _parse(response, BatchAccepted, 202)


def _poll(client: httpx.Client, state: _Progress, on_done: Callable[[RemotePaper], None]) -> None:
    for job_id, paper in list(state.active.items()):
        view = _parse(_request(client, "GET", f"/v1/reviews/{job_id}"), ReviewJobView, 200)
        if view.status in FINISHED:
            del state.active[job_id]
            state.submit_after = 0.0  # a finished job frees room: submit again at once
            _finish(state, paper, outcome(paper[1], view), on_done)


def outcome(pdf: Path, view: ReviewJobView) -> RemotePaper:
    """A finished job as a line of the export."""
    if view.status != "done" or view.review is None:
        error = view.error or f"the job ended {view.status}"
        return RemotePaper(file=str(pdf), job_id=view.id, status="failed", error=error)
    try:
        review = _ReviewSummary.model_validate(view.review)
    except ValidationError as exc:
        error = f"review.json lacks a decision or scores ({exc.error_count()} problems)"
        return RemotePaper(file=str(pdf), job_id=view.id, status="failed", error=error)
    overall = review.scores.get("Overall")
    return RemotePaper(
        file=str(pdf),
        job_id=view.id,
        status="reviewed",
        decision=review.decision.decision,
        overall_mean=overall.mean if overall is not None else None,
        accept_probability=review.decision.probability,
    )


def _finish(
    state: _Progress, paper: Paper, result: RemotePaper, on_done: Callable[[RemotePaper], None]
) -> None:
    state.results[paper[0]] = result
    on_done(result)


def _request(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise ServiceClientError(
            f"Cannot reach the service at {client.base_url} ({exc}); check --service and "
            "that the service is running (autoscholar-service serve)."
        ) from exc
    if response.status_code == 401:
        raise ServiceAuthError(
            f"The service refused the token ({_error_text(response)}); pass --token or set "
            f"{TOKEN_ENV} to a token from the operator's service.tokens."
        )
    return response


def _parse(response: httpx.Response, model: type[M], status: int) -> M:
    if response.status_code != status:
        raise ServiceClientError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {_error_text(response)}."
        )
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise ServiceClientError(
            f"{response.request.url.path} answered a body this client does not understand "
            f"({exc.error_count()} problems); is the service the same version?"
        ) from exc


def _error_text(response: httpx.Response) -> str:
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return response.text[:200]
    return f"{body.error}: {body.detail}"


def write_exports(papers: list[RemotePaper], out_dir: Path) -> dict[str, Path]:
    """``results.csv`` and ``results.jsonl`` in ``out_dir``: one line per paper."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "results.csv", "jsonl": out_dir / "results.jsonl"}
    with paths["csv"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_FIELDS)
        writer.writeheader()
        writer.writerows(paper.model_dump() for paper in papers)
    with paths["jsonl"].open("w", encoding="utf-8") as handle:
        handle.writelines(paper.model_dump_json() + "\n" for paper in papers)
    return paths


def remote_exit_code(papers: list[RemotePaper]) -> int:
    """0 when every paper was reviewed; 2 when every one was refused as input (not a PDF,
    too large, ...); else 1."""
    if all(p.status == "reviewed" for p in papers):
        return 0
    return EXIT_USAGE if all(p.status == "refused" for p in papers) else EXIT_FAILED


def review_with_progress(job: RemoteReview) -> list[RemotePaper]:
    """:func:`run_remote` with a progress bar on stderr (papers finished of all)."""
    with progress_bars(console) as progress:
        task = progress.add_task(f"reviews on {job.service}", total=len(job.pdfs))
        return run_remote(job, lambda _: progress.advance(task))


def remote_command(
    paper: Path,
    service: str,
    token: str | None,
    out_dir: Path,
    *,
    options: dict[str, str],
    local_only: list[str],
    as_json: bool,
) -> int:
    """``reviewer review PATH --service URL``: the exit code, after the export is written."""
    if local_only:
        errors.print(
            f"[bold red]error:[/] {', '.join(local_only)} apply to local reviews only; the "
            "service reviews with its operator's models (use --preset, --reviewers, "
            "--reflections)."
        )
        return EXIT_USAGE
    if not token:
        errors.print(f"[bold red]error:[/] no token: pass --token or set {TOKEN_ENV}.")
        return EXIT_USAGE
    pdfs = pdf_paths(paper)
    if not pdfs:
        errors.print(f"[bold red]error:[/] {paper}: no such PDF, or the folder holds none")
        return EXIT_USAGE
    job = RemoteReview(pdfs=pdfs, service=service, token=token, options=options)
    try:
        papers = review_with_progress(job)
    except ServiceClientError as exc:
        return fail_json(exc, as_json)
    code = remote_exit_code(papers)
    paths = write_exports(papers, out_dir)
    report(papers, paths)
    if as_json:
        emit_json(RemoteReviewOutput(service=service, papers=papers, exit_code=code))
    return code


def pdf_paths(path: Path) -> list[Path]:
    """The PDFs of a folder (sorted), or the one PDF given; none when the path is missing."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() == ".pdf" and p.is_file())
    return [path] if path.is_file() else []


def report(papers: list[RemotePaper], paths: dict[str, Path]) -> None:
    """Each failure, then where the export is, on stderr."""
    for paper in papers:
        if paper.status != "reviewed":
            errors.print(f"[bold red]error:[/] {escape(paper.file)}: {escape(paper.error or '')}")
    reviewed = sum(p.status == "reviewed" for p in papers)
    console.print(
        f"{reviewed} of {len(papers)} reviewed; results in {paths['csv']} and {paths['jsonl']}"
    )
