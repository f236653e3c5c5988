"""Records of the paper pipeline: per-idea outcome, events, the run manifest (``run.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Stage = Literal["ideas", "literature_review", "plan", "experiments", "writeup", "review", "improve"]
IdeaStatus = Literal["pending", "running", "done", "failed", "stopped: budget", "cancelled"]
# ``no_ideas``: the run ended normally but no idea passed the ideas stage, so nothing was
# written; the manifest's reason says why (e.g. every idea found not novel).
RunStatus = Literal["running", "done", "no_ideas", "failed", "interrupted"]
STAGES: tuple[Stage, ...] = (
    "ideas",
    "literature_review",
    "plan",
    "experiments",
    "writeup",
    "review",
    "improve",
)


class StageUsage(BaseModel):
    """Time, calls, tokens and cost of one stage (of one idea, or of the ideas stage)."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = 0.0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class IdeaOutcome(BaseModel):
    """Where one idea got to, and what it produced."""

    model_config = ConfigDict(extra="forbid")

    name: str
    title: str = ""
    status: IdeaStatus = "pending"
    stage: Stage = "experiments"
    reason: str | None = Field(None, description="Why it failed or stopped.")
    folder: str = ""
    paper_pdf: str | None = None
    review_json: str | None = None
    overall: float | None = Field(None, description="Mean Overall score of the review.")
    decision: str | None = None
    accept_probability: float | None = None
    revised_overall: float | None = Field(None, description="Overall after the --improve revision.")
    usage: dict[str, StageUsage] = Field(default_factory=dict, description="Per stage.")
    feedback: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The researcher's co-pilot feedback per stage, in the order given (each "
        "redid that stage with the text in its prompts).",
    )
    node: str | None = Field(
        None, description="The Ray node its pipeline ran on; None: in the run's own process."
    )

    @property
    def cost_usd(self) -> float:
        """Spend over all stages."""
        return sum(u.cost_usd for u in self.usage.values())

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens over all stages."""
        return sum(u.prompt_tokens + u.completion_tokens for u in self.usage.values())

    @property
    def seconds(self) -> float:
        """Wall time over all stages."""
        return sum(u.seconds for u in self.usage.values())


class PipelineEvent(BaseModel):
    """A progress event for the live view, the service and logs."""

    model_config = ConfigDict(extra="forbid")

    idea: str | None = Field(None, description="None for run-level events (the ideas stage).")
    stage: Stage
    status: Literal["started", "done", "failed", "stopped", "waiting"]
    detail: str = ""


class CopilotReply(BaseModel):
    """A human's answer at the end of a stage."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "edit", "feedback"]
    text: str = Field("", description="Feedback for the redo, or the edited artifact.")


class CopilotRequest(BaseModel):
    """What the pipeline shows a human at the end of a stage."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    idea: str | None = None
    summary: str
    editable: str = Field("", description="The artifact an 'edit' replaces (JSON or text).")


class RunManifest(BaseModel):
    """``run.json``: settings, versions, timings, per-stage usage and every idea's outcome."""

    model_config = ConfigDict(extra="forbid")

    template: str
    status: RunStatus = "running"
    reason: str | None = Field(None, description="Why the run failed or left no idea to run.")
    notes: list[str] = Field(
        default_factory=list,
        description="What the run went on despite, e.g. the researcher's own idea found not "
        "novel (with the closest paper).",
    )
    started_at: str
    finished_at: str | None = None
    wall_s: float = 0.0
    preset: str = Field("default", description="Preset the run's settings were built from.")
    overrides: list[str] = Field(
        default_factory=list, description="--set assignments, replayed by `scientist resume`."
    )
    versions: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    idea_tasks: Literal["inline", "apart"] = Field(
        "inline",
        description="inline: every idea's pipeline runs inside this run's graph and "
        "checkpoints; apart: each idea ran as a task of its own (a Ray task), with its own "
        "checkpoints.sqlite in its folder, and `scientist resume` continues it the same way.",
    )
    ideas_stage: StageUsage = Field(default_factory=StageUsage)
    feedback: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The researcher's co-pilot feedback on the ideas stage ('ideas'); each "
        "idea's own stages record theirs in its outcome.",
    )
    ideas: list[IdeaOutcome] = Field(default_factory=list)
    totals: dict[str, Any] = Field(default_factory=dict, description="Ledger totals.")
