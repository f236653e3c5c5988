"""Every request and response body of the HTTP API, as pydantic models (they make /docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobKind = Literal["review", "run"]
# ``waiting``: a co-pilot run paused for its owner's answer (running in the job store).
JobStatus = Literal["queued", "running", "waiting", "done", "failed", "cancelled"]
CopilotAction = Literal["approve", "edit", "feedback"]
PauseState = Literal["waiting", "answered", "delivered", "dropped"]


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a stable code and what was wrong and what to do."""

    error: str = Field(description="Machine-readable code, e.g. not_a_pdf, rate_limited.")
    detail: str = Field(description="What was wrong and what to do about it.")


class ReviewOptions(BaseModel):
    """Options of a review job (multipart form fields beside the PDF)."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(
        None, description="A shipped preset (debug, default, quality); default: the server's."
    )
    num_reviewers: int | None = Field(None, ge=1, le=10, description="Reviewers in the ensemble.")
    num_reflections: int | None = Field(
        None, ge=0, le=10, description="Self-reflection rounds per reviewer."
    )

    def overrides(self) -> dict[str, Any]:
        """These options as a settings override dict."""
        review = {
            k: v
            for k, v in (
                ("num_reviewers", self.num_reviewers),
                ("num_reflections", self.num_reflections),
            )
            if v is not None
        }
        return {"review": review} if review else {}


class RunRequest(BaseModel):
    """``POST /v1/runs``: a template and optional settings overrides."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(min_length=1, description="A shipped template name (GET /v1/templates).")
    preset: str | None = Field(None, description="A shipped preset; default: the server's.")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides as nested JSON or dotted keys, e.g. {'ideas.num_ideas': 2}. "
        "Only the fields of the operator's service.job_policy, within its bounds: stage "
        "knobs, budgets and experiment limits (only lower than the operator's, never null), "
        "models from the operator's list. Anything else is refused with 422 invalid_settings.",
    )
    idea: dict[str, Any] | list[dict[str, Any]] | str | None = Field(
        None,
        description="Your own idea instead of generated ones: an ideas.json idea object "
        "(Name, Title, Experiment), a list of them, or Markdown text (a '# Title' line, then "
        "the idea). Used verbatim (scores are dropped: a researcher's idea is not scored) and "
        "novelty-checked; a not-novel verdict is reported and the idea still runs unless "
        "settings has pipeline.skip_given_not_novel=true. A bad idea gets 422 invalid_idea.",
    )
    topic: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="Steer idea generation to this topic (not together with idea).",
    )
    copilot: bool = Field(
        False,
        description="Pause after each stage for your answer (approve, edit the stage's "
        "artifact, or redo it with feedback): the job shows status 'waiting' with the pause "
        "in GET's copilot_pause; answer with POST /v1/runs/{id}/copilot or on the run page.",
    )


class CopilotAnswer(BaseModel):
    """``POST /v1/runs/{id}/copilot``: the answer to the run's pause."""

    model_config = ConfigDict(extra="forbid")

    action: CopilotAction = Field(
        description="approve: go on; edit: replace the stage's artifact with text; "
        "feedback: redo the stage with text in its prompts."
    )
    text: str = Field(
        "", description="The edited artifact (edit) or what to change (feedback); not for approve."
    )
    pause: int | None = Field(
        None,
        description="The pause this answers (copilot_pause.seq of GET /v1/runs/{id}); with it, "
        "an answer that arrives after that pause was answered gets 409, never the next pause.",
    )


class CopilotPause(BaseModel):
    """One pause of a co-pilot run: what the pipeline asked, and the answer once given."""

    seq: int = Field(description="The pause's number in the run: 1, 2, ...")
    state: PauseState = Field(
        description="waiting: for your answer; answered: stored, the run takes it at its next "
        "poll; delivered: the run went on with it; dropped: the run was restarted and paused "
        "again without it."
    )
    stage: str = Field(description="The stage that just ended, e.g. ideas or experiments.")
    idea: str | None = Field(None, description="The idea; None for the run's ideas stage.")
    summary: str = Field(description="What the stage produced, in short.")
    editable: str = Field("", description="The artifact an edit replaces (JSON or text).")
    asked_at: float
    action: CopilotAction | None = None
    text: str = ""
    answered_at: float | None = None


class JobLinks(BaseModel):
    """Where to look next."""

    self: str
    page: str = Field(description="The web page of the job.")
    files: dict[str, str] = Field(default_factory=dict, description="Downloadable results.")


class JobAccepted(BaseModel):
    """``202 Accepted``: the job is queued; poll ``links.self``."""

    id: str
    kind: JobKind
    status: JobStatus
    links: JobLinks


class BatchItem(BaseModel):
    """One file of ``POST /v1/reviews:batch``: its job, or why it was refused."""

    index: int = Field(description="The file's position among the batch's 'files' parts.")
    file: str = Field(description="The uploaded file name.")
    status: Literal["queued", "refused"]
    id: str | None = Field(None, description="The review job, when queued.")
    links: JobLinks | None = None
    http_status: int | None = Field(
        None, description="When refused: what POST /v1/reviews would have answered for it."
    )
    error: str | None = Field(None, description="When refused: the code, e.g. not_a_pdf.")
    detail: str | None = Field(None, description="When refused: what was wrong, what to do.")
    retry_after_s: int | None = Field(
        None, description="When refused for room (queue_full, too_many_jobs): when to retry."
    )


class BatchAccepted(BaseModel):
    """``202`` for a batch: per file, in upload order, its queued job or its refusal."""

    accepted: int = Field(description="Files queued as review jobs.")
    refused: int = Field(description="Files refused; each item says why.")
    items: list[BatchItem]


class JobSummary(BaseModel):
    """One line of a job list."""

    id: str
    kind: JobKind
    status: JobStatus
    label: str = Field(description="The file name of a review, the template of a run.")
    created_at: float
    finished_at: float | None = None
    error: str | None = None
    note: str | None = Field(
        None, description="What a finished job did not do, e.g. a run that wrote no paper."
    )


class JobList(BaseModel):
    """The caller's jobs, newest first."""

    jobs: list[JobSummary]


class JobView(BaseModel):
    """The common part of a job's status."""

    id: str
    kind: JobKind
    status: JobStatus
    owner: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = Field(description="How many times a worker claimed the job.")
    progress: dict[str, Any] = Field(default_factory=dict)
    error: str | None = Field(None, description="Why the job failed, when it did.")
    links: JobLinks


class ReviewJobView(JobView):
    """``GET /v1/reviews/{id}``: status, progress, and the review once done."""

    filename: str
    options: ReviewOptions
    review: dict[str, Any] | None = Field(None, description="review.json, once done.")
    pdf_error: str | None = Field(None, description="Why report.pdf is missing, if it is.")


class IdeaStatus(BaseModel):
    """One idea of a run: its self-assessment, novelty and where it is."""

    name: str
    title: str = ""
    stage: str | None = None
    interestingness: int | None = None
    feasibility: int | None = None
    novelty: int | None = None
    novel: bool | None = Field(None, description="The novelty check's verdict, when made.")
    has_literature_review: bool = Field(
        False, description="literature_review.md is written (GET …/documents/literature_review.md)."
    )
    has_plan: bool = Field(False, description="plan.md is written (GET …/documents/plan.md).")
    has_paper: bool = False
    has_review: bool = False


class RunJobView(JobView):
    """``GET /v1/runs/{id}``: stage per idea and cost so far."""

    template: str
    stage: str | None = Field(None, description="The run's latest stage.")
    ideas: list[IdeaStatus] = Field(default_factory=list)
    cost_usd: float = Field(0.0, description="Spent so far, from the run's ledger.")
    llm_calls: int = 0
    summary: dict[str, Any] | None = Field(None, description="The pipeline's summary, once done.")
    copilot: bool = Field(False, description="Whether the run pauses for your answers.")
    copilot_pause: CopilotPause | None = Field(
        None, description="The pause waiting for your answer (status 'waiting'), if any."
    )
    copilot_answers: list[CopilotPause] = Field(
        default_factory=list, description="The pauses answered so far, oldest first."
    )


class TemplateList(BaseModel):
    """Shipped research templates."""

    templates: list[str]


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"]
    jobs: dict[str, int] = Field(description="Jobs per status.")
