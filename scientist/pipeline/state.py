"""Typed state of the paper graph (run level) and of one idea's pipeline."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from scientist.experiments.models import ExperimentRecord
from scientist.ideas.models import Idea
from scientist.pipeline.models import IdeaOutcome, StageUsage
from scientist.plan.models import ExperimentPlan
from scientist.survey.models import LiteratureReview


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: later keys win; parallel idea branches each add their own key."""
    return {**(left or {}), **(right or {})}


class PaperInput(TypedDict, total=False):
    """What a run starts from (the template and run folder are in the runtime context)."""

    feedback: Annotated[dict[str, str], merge_dicts]


class PaperState(PaperInput, total=False):
    """Run level: the chosen ideas and every idea's outcome, gathered from parallel branches."""

    ideas: list[Idea]
    ideas_usage: StageUsage
    notes: list[str]
    ideas_feedback: Annotated[list[str], operator.add]
    outcomes: Annotated[dict[str, IdeaOutcome], merge_dicts]


class IdeaOutput(TypedDict, total=False):
    """What an idea pipeline hands back to the run: its outcome, keyed by idea name."""

    outcomes: Annotated[dict[str, IdeaOutcome], merge_dicts]


class IdeaState(IdeaOutput, total=False):
    """One idea's pipeline: its records so far, the human's feedback per stage (the latest,
    which the stage's redo puts in its prompts), and why an edit was refused (per stage,
    shown when the co-pilot asks again; '' once answered)."""

    idea: Idea
    started_at: float
    outcome: IdeaOutcome
    literature: LiteratureReview | None
    experiment_plan: ExperimentPlan | None
    experiment: ExperimentRecord
    feedback: Annotated[dict[str, str], merge_dicts]
    notice: Annotated[dict[str, str], merge_dicts]
