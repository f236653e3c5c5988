"""The idea record, in The AI Scientist's field names so seed_ideas.json files stay compatible.

The records hold an idea from any model; what a model's reply must meet comes from its
output profile (``idea_form(profile)``, ``idea_batch(profile)``), so a capable model's long
Experiment is kept whole while the embedded model's stays inside its token limit.

A model always scores its ideas (the forms require the three scores); a researcher's own idea
(``ideas.given``) is not scored: its scores are None unless the model refined it.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from gateway.profiles import OutputProfile

EXPERIMENT_DESCRIPTION = "What to run and measure."


SCORE_NOTE = "The model's own 1-10 score; None: not scored (a researcher's own idea)."


class Idea(BaseModel):
    """One research idea with the model's own 1–10 self-assessment (None: not scored)."""

    model_config = ConfigDict(extra="forbid")

    # Guard rails in every profile: The AI Scientist's Names run to about 30 characters and its
    # Titles to about 120, so no capable model's idea reaches these.
    Name: str = Field(min_length=1, max_length=60, description="Short snake_case identifier.")
    Title: str = Field(min_length=1, max_length=200, description="Paper-style title.")
    Experiment: str = Field(min_length=1, description=EXPERIMENT_DESCRIPTION)
    Interestingness: int | None = Field(None, ge=1, le=10, description=SCORE_NOTE)
    Feasibility: int | None = Field(None, ge=1, le=10, description=SCORE_NOTE)
    Novelty: int | None = Field(None, ge=1, le=10, description=SCORE_NOTE)

    @property
    def scored(self) -> bool:
        """Whether all three scores are there (a model's idea; not a researcher's own)."""
        return None not in (self.Interestingness, self.Feasibility, self.Novelty)


class IdeaBatch(BaseModel):
    """Several ideas in one structured reply."""

    model_config = ConfigDict(extra="forbid")

    ideas: list[Idea] = Field(min_length=1)


MODEL_DOC = "One research idea with the model's own 1–10 self-assessment."


@functools.cache
def idea_form(profile: OutputProfile) -> type[Idea]:
    """The idea with ``profile``'s bound on its Experiment and its three scores required:
    what a model's idea must meet."""
    experiment: Any = (
        str,
        Field(
            min_length=1,
            max_length=profile.idea_experiment_chars,
            description=EXPERIMENT_DESCRIPTION,
        ),
    )
    score: Any = (int, Field(ge=1, le=10))
    return create_model(
        "Idea",
        __base__=Idea,
        __doc__=MODEL_DOC,
        Experiment=experiment,
        Interestingness=score,
        Feasibility=score,
        Novelty=score,
    )


@functools.cache
def idea_batch(profile: OutputProfile) -> type[IdeaBatch]:
    """A batch of at most ``profile.ideas_per_reply`` ideas, each under ``idea_form``."""
    ideas: Any = (
        list[idea_form(profile)],  # type: ignore[misc]
        Field(min_length=1, max_length=profile.ideas_per_reply),
    )
    return create_model("IdeaBatch", __base__=IdeaBatch, __doc__=IdeaBatch.__doc__, ideas=ideas)
