"""An episode's record: ``trajectory.jsonl``, one :class:`TrajectoryStep` per line, appended
as each step ends (MLGym keeps the same per-step record), and ``episode.json`` beside it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from scientist.gym.models import TaskSpec

TRAJECTORY = "trajectory.jsonl"
EPISODE = "episode.json"


class TrajectoryStep(BaseModel):
    """One step: the action, what the agent saw, the metric, the reward, time and spend."""

    model_config = ConfigDict(extra="forbid")

    step: int = Field(ge=1)
    time: str = Field(description="When the step ended (UTC, ISO 8601).")
    elapsed_s: float = Field(description="Seconds since reset when the step ended.")
    seconds: float = Field(description="How long the step took.")
    action: str = Field(description="The action as the agent sent it (cut at 20,000 chars).")
    command: str | None = Field(None, description="The parsed command; None: a bad action.")
    error: str | None = Field(None, description="Why the action was refused, if it was.")
    observation: str = Field(description="The start of the observation (an excerpt).")
    observation_chars: int = Field(ge=0, description="Length of the whole observation.")
    run: str | None = Field(None, description="The run folder a validate/submit made.")
    run_status: str | None = None
    metric: float | None = Field(None, description="The primary metric this step produced.")
    metrics: dict[str, dict[str, float]] | None = Field(
        None, description="Every mean of the run's final_info.json: group -> metric -> mean."
    )
    reward: float
    best: float | None = Field(None, description="Best valid metric so far.")
    terminated: bool
    truncated: bool
    truncation: str | None = Field(None, description="Which budget ended the episode.")
    prompt_tokens: int = Field(0, ge=0, description="Tokens reported during this step.")
    completion_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)


class EpisodeInfo(BaseModel):
    """``episode.json``: what the episode was started with."""

    model_config = ConfigDict(extra="forbid")

    episode: str
    template: str
    task: TaskSpec
    baseline: float
    baseline_metrics: dict[str, dict[str, float]]
    limits: dict[str, object]
    started: str
    workspace: str
    seed: int | None = None


def append_step(path: Path, step: TrajectoryStep) -> None:
    """Add one line to the trajectory file."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(step.model_dump_json() + "\n")


def read_trajectory(path: Path) -> list[TrajectoryStep]:
    """Every step of a trajectory file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [TrajectoryStep.model_validate_json(line) for line in lines if line.strip()]
