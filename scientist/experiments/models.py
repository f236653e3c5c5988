"""Records of the experiment stage: one sandboxed run, one coding round, the stage's file.

``experiments.json`` in an idea's folder is ``ExperimentRecord.model_dump_json()``; the
write-up stage reads numbers only from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["ok", "failed", "timeout", "memory", "invalid_output"]
RoundKind = Literal["experiment", "plot", "notes"]
RoundStatus = Literal["ok", "run_failed", "no_change", "editor_failed", "timeout"]


class GroupResult(BaseModel):
    """One ``final_info.json`` group: means and (optional) standard errors per metric."""

    model_config = ConfigDict(extra="allow")

    means: dict[str, float]
    stderrs: dict[str, float] = Field(default_factory=dict)


class RunOutcome(BaseModel):
    """One execution of ``python experiment.py --out_dir=run_i`` in the sandbox."""

    model_config = ConfigDict(extra="forbid")

    run_name: str = Field(description="'run_0' is the baseline.")
    status: RunStatus
    reason: str | None = Field(None, description="Why it failed, in one line.")
    exit_code: int | None = None
    seconds: float
    results: dict[str, GroupResult] = Field(
        default_factory=dict, description="Parsed final_info.json: group → means/stderrs."
    )
    stdout_path: str
    stderr_path: str
    error_tail: str = Field("", description="Last lines of stderr, fed back to the coder.")


class ProcessOutcome(BaseModel):
    """One sandboxed execution of a helper script (``plot.py``), without results."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "failed", "timeout", "memory"]
    reason: str | None = Field(None, description="Why it failed, in one line.")
    exit_code: int | None = None
    seconds: float
    stdout_path: str
    stderr_path: str
    error_tail: str = Field("", description="Last lines of stderr, fed back to the coder.")


class RoundRecord(BaseModel):
    """One Aider round: what was asked, what changed, what the run gave."""

    model_config = ConfigDict(extra="forbid")

    index: int
    kind: RoundKind
    status: RoundStatus
    prompt: str
    command: list[str] = Field(description="The editor command line (secrets removed).")
    diff: str = Field("", description="Unified diff of the edited files.")
    changed_files: list[str] = Field(default_factory=list)
    seconds: float
    editor_exit_code: int | None = None
    run: RunOutcome | None = None
    run_name: str | None = Field(
        None, description="The run folder this round targeted (experiment rounds)."
    )
    planned_run: str | None = Field(
        None,
        description="The name of the plan's run this round carried out (plan.json; "
        "experiment rounds of an idea with a plan): run_i makes planned run i.",
    )
    plot_run: ProcessOutcome | None = Field(None, description="plot.py's run (plot rounds).")
    tokens_sent: int | None = Field(None, description="Prompt tokens Aider reported.")
    tokens_received: int | None = Field(None, description="Completion tokens Aider reported.")
    cost_usd: float | None = Field(None, description="Cost Aider reported for the round.")
    editor_log: str | None = Field(None, description="The editor's output, relative path.")


class EnvironmentRecord(BaseModel):
    """A template's own virtualenv (from its ``requirements.txt``), as made and resolved."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="Hash of the Python version and the requirements text.")
    path: str = Field(description="The virtualenv's folder.")
    python_version: str
    requirements: list[str] = Field(description="requirements.txt, without blanks and comments.")
    packages: dict[str, str] = Field(
        default_factory=dict, description="Every installed distribution → its version."
    )
    created: str = Field("", description="When it was made (UTC, ISO 8601).")
    build_seconds: float = Field(0.0, description="How long making it took (venv + pip).")


class FigureNote(BaseModel):
    """A plot the write-up may include, with the description written in the notes round."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="PNG path relative to the idea folder.")
    description: str = ""


class ExperimentRecord(BaseModel):
    """Everything the experiment stage did for one idea (``experiments.json``)."""

    model_config = ConfigDict(extra="forbid")

    idea_name: str
    template: str
    baseline: RunOutcome
    rounds: list[RoundRecord] = Field(default_factory=list)
    figures: list[FigureNote] = Field(default_factory=list)
    notes: str = Field("", description="notes.txt after the notes round.")
    status: Literal["ok", "failed"] = "ok"
    reason: str | None = None
    feedback: str | None = Field(None, description="A human's co-pilot feedback, if any.")
    seconds: float = Field(0.0, description="Wall time of the whole stage.")
    environment: EnvironmentRecord | None = Field(
        None,
        description="The template's virtualenv the runs used, with its package versions; "
        "None: autoscholar's own interpreter.",
    )

    def successful_runs(self) -> list[RunOutcome]:
        """Baseline plus every round whose run produced valid results, in order."""
        runs = [self.baseline] + [r.run for r in self.rounds if r.run is not None]
        return [run for run in runs if run.status == "ok"]
