"""The idea record, in The AI Scientist's field names so seed_ideas.json files stay compatible."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Idea(BaseModel):
    """One research idea with the model's own 1–10 self-assessment."""

    model_config = ConfigDict(extra="forbid")

    Name: str = Field(min_length=1, max_length=60, description="Short snake_case identifier.")
    Title: str = Field(min_length=1, max_length=200, description="Paper-style title.")
    Experiment: str = Field(min_length=1, max_length=2000, description="What to run and measure.")
    Interestingness: int = Field(ge=1, le=10)
    Feasibility: int = Field(ge=1, le=10)
    Novelty: int = Field(ge=1, le=10)


class IdeaBatch(BaseModel):
    """Several ideas in one structured reply."""

    model_config = ConfigDict(extra="forbid")

    ideas: list[Idea] = Field(min_length=1, max_length=5)
