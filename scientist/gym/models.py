"""What the gym's parts hand each other: a task's metric, an episode's outcome, bench scores.

The environment (``scientist.gym.env``) writes one :class:`EpisodeResult` per episode; the
bench maths (``scientist.gym.profiles``) reads only these, so it can be tested on
hand-worked examples without running anything.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["higher", "lower"]


class TaskSpec(BaseModel):
    """``task.json`` in a template folder: which number the task is judged by.

    ``metric`` is a path into ``final_info.json``, e.g. ``["digits", "means", "accuracy_mean"]``
    (The AI Scientist's layout: dataset → means → name).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Task id, e.g. 'digits'.")
    metric: list[str] = Field(min_length=1, description="Path to the number in final_info.json.")
    direction: Direction = Field(description="Whether higher or lower values are better.")
    description: str = Field("", description="Extra task text shown after prompt.json's task.")


EpisodeStatus = Literal["submitted", "truncated", "failed"]


class EpisodeResult(BaseModel):
    """One (task, model, attempt) episode, as the bench maths reads it."""

    model_config = ConfigDict(extra="forbid")

    task: str
    model: str = Field(description="The agent's model (or agent name), one method of the bench.")
    attempt: int = Field(ge=0)
    direction: Direction
    baseline: float | None = Field(description="The template's baseline value of the metric.")
    best_attempt: float | None = Field(
        description="Best metric any `validate` or the submission produced; None: never valid."
    )
    submission: float | None = Field(
        description="Metric of the submitted code; None: nothing valid was submitted."
    )
    status: EpisodeStatus
    steps: int = Field(ge=0)
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)
    wall_s: float = Field(0.0, ge=0)
    trajectory: str = Field("", description="Path of the episode's trajectory JSONL.")
    reason: str | None = Field(None, description="Why it failed or was truncated.")
