"""Response bodies built from job rows and the files a job wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.runstore import RunPaths, safe_name
from gateway.types import LedgerEntry
from service.config import ServicePaths
from service.copilot import CopilotStore
from service.models import (
    IdeaStatus,
    JobLinks,
    JobSummary,
    ReviewJobView,
    ReviewOptions,
    RunJobView,
)
from service.store import JobRecord

REVIEW_FILES = ("md", "pdf", "html", "json")
# What the literature-review and plan stages write in an idea's folder, served as they are.
IDEA_DOCUMENTS = {
    "literature_review.md": "text/markdown; charset=utf-8",
    "literature_review.json": "application/json",
    "plan.md": "text/markdown; charset=utf-8",
    "plan.json": "application/json",
}


def links(job: JobRecord, paths: ServicePaths) -> JobLinks:
    """API and page links of a job; result files once they exist."""
    base = f"/v1/{job.kind}s/{job.id}"
    files: dict[str, str] = {}
    if job.kind == "review":
        review_dir = paths.review_dir(job.id)
        files = {
            kind: f"{base}/report.{kind}"
            for kind in REVIEW_FILES
            if (review_dir / f"review.{kind}").is_file()
        }
    return JobLinks(self=base, page=f"/{job.kind}s/{job.id}", files=files)


def summary(job: JobRecord, waiting: bool = False) -> JobSummary:
    """One line of a job list; ``waiting``: a co-pilot pause of the job waits for an answer."""
    label = job.params.get("filename") or job.params.get("template") or job.kind
    return JobSummary(
        id=job.id,
        kind=job.kind,
        status="waiting" if waiting and job.status == "running" else job.status,
        label=str(label),
        created_at=job.created_at,
        finished_at=job.finished_at,
        error=job.error,
        note=_outcome_note(job),
    )


def job_summaries(jobs: list[JobRecord], copilot: CopilotStore) -> list[JobSummary]:
    """Lines of a job list; a co-pilot run paused for its owner's answer shows ``waiting``."""
    waiting = copilot.waiting_jobs([j.id for j in jobs if j.status == "running"])
    return [summary(j, j.id in waiting) for j in jobs]


def _outcome_note(job: JobRecord) -> str | None:
    """A done run that wrote no paper says so in the list, not only on its page."""
    run = (job.result or {}).get("summary") or {}
    if job.kind != "run" or run.get("status") != "no_ideas":
        return None
    return f"no paper written: {run.get('reason') or 'no idea went past the ideas stage'}"


def _common(job: JobRecord, paths: ServicePaths) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "owner": job.owner,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "attempts": job.attempts,
        "progress": job.progress,
        "error": job.error,
        "links": links(job, paths),
    }


def review_view(job: JobRecord, paths: ServicePaths) -> ReviewJobView:
    """``GET /v1/reviews/{id}``."""
    result = job.result or {}
    return ReviewJobView(
        **_common(job, paths),
        filename=str(job.params.get("filename", "")),
        options=ReviewOptions.model_validate(job.params.get("options", {})),
        review=result.get("review"),
        pdf_error=result.get("pdf_error"),
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def ledger_totals(path: Path) -> tuple[float, int]:
    """Cost in USD and calls so far, from a run's ledger.jsonl (cache hits cost nothing)."""
    cost, calls = 0.0, 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return cost, calls
    for line in lines:
        try:
            entry = LedgerEntry.model_validate_json(line)
        except ValueError:
            continue  # a line being written right now
        calls += 1
        cost += 0.0 if entry.cache_hit else entry.cost_usd
    return cost, calls


def _idea_dicts(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        data = data.get("ideas", [])
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def idea_status(item: dict[str, Any], run: RunPaths, stages: dict[str, str]) -> IdeaStatus:
    """One idea from ideas.json (flat, or ``{"idea": {...}, "novelty": {...}}``)."""
    nested = item.get("idea")
    idea: dict[str, Any] = nested if isinstance(nested, dict) else item
    name = str(idea.get("Name") or idea.get("name") or "idea")
    novelty = item.get("novelty")
    novel = item.get("novel")
    if isinstance(novelty, dict):
        novel = novelty.get("novel", novel)
    paths = run.idea(name)
    return IdeaStatus(
        name=name,
        title=str(idea.get("Title") or idea.get("title") or ""),
        stage=stages.get(name) or stages.get(safe_name(name)),
        interestingness=_number(idea.get("Interestingness")),
        feasibility=_number(idea.get("Feasibility")),
        novelty=_number(idea.get("Novelty")),
        novel=novel if isinstance(novel, bool) else None,
        has_literature_review=(paths.root / "literature_review.md").is_file(),
        has_plan=(paths.root / "plan.md").is_file(),
        has_paper=paths.paper_pdf.is_file(),
        has_review=(paths.review_dir / "review.json").is_file(),
    )


def manifest_stages(run: RunPaths) -> dict[str, str]:
    """``stage: status`` per idea from the run's run.json, where the pipeline keeps them."""
    manifest = _read_json(run.run_json)
    ideas = manifest.get("ideas", []) if isinstance(manifest, dict) else []
    return {
        str(i["name"]): f"{i.get('stage', '?')}: {i.get('status', '?')}"
        for i in ideas
        if isinstance(i, dict) and i.get("name")
    }


def run_view(
    job: JobRecord, paths: ServicePaths, copilot: CopilotStore | None = None
) -> RunJobView:
    """``GET /v1/runs/{id}``: the row plus what the run folder holds so far, and the
    co-pilot run's pauses from ``copilot`` (status ``waiting`` while one waits)."""
    run = RunPaths(paths.run_dir(job.id))
    stages = {**manifest_stages(run), **job.progress.get("ideas", {})}
    ideas = [idea_status(d, run, stages) for d in _idea_dicts(_read_json(run.ideas_json))]
    known = {i.name for i in ideas}
    ideas += [IdeaStatus(name=n, stage=s) for n, s in stages.items() if n not in known]
    cost, calls = ledger_totals(run.ledger)
    result = job.result or {}
    pauses = copilot.pauses(job.id) if copilot is not None and job.params.get("copilot") else []
    waiting = next((p for p in pauses if p.state == "waiting"), None)
    common = _common(job, paths)
    if waiting is not None and job.status == "running":
        common["status"] = "waiting"
    return RunJobView(
        **common,
        template=str(job.params.get("template", "")),
        stage=job.progress.get("stage"),
        ideas=ideas,
        cost_usd=round(cost, 6),
        llm_calls=calls,
        summary=result.get("summary"),
        copilot=bool(job.params.get("copilot")),
        copilot_pause=waiting if _answerable(job) else None,
        copilot_answers=[p for p in pauses if p.action is not None],
    )


def _answerable(job: JobRecord) -> bool:
    """Whether a pause of the job can still be answered (a queued job resumes to it)."""
    return job.status in ("queued", "running") and not job.cancel_requested


def idea_review(paths: ServicePaths, job: JobRecord, name: str) -> dict[str, Any] | None:
    """The review.json of one idea of a run, if written."""
    data = _read_json(RunPaths(paths.run_dir(job.id)).idea(name).review_dir / "review.json")
    return data if isinstance(data, dict) else None
