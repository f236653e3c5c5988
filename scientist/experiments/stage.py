"""The experiment stage for one idea, as one call (the paper pipeline and the CLI use it)."""

from __future__ import annotations

from pathlib import Path

from graphs.experiments import build_experiment_graph
from scientist.experiments.models import ExperimentRecord
from scientist.experiments.rounds import ExperimentDeps, ExperimentInput, ExperimentProgress
from scientist.ideas.models import Idea
from scientist.template import Template

__all__ = ["ExperimentDeps", "ExperimentProgress", "run_experiments"]

# prepare, baseline, finish, plus one step per coding, plot and notes round.
FIXED_STEPS = 8


def run_experiments(
    idea: Idea,
    idea_dir: Path,
    template: Template,
    deps: ExperimentDeps,
    *,
    feedback: str | None = None,
) -> ExperimentRecord:
    """Copy the template into ``idea_dir``, run the baseline and the coding, plot and notes
    rounds, write ``experiments.json`` and return its record.

    ``feedback`` is a human's co-pilot feedback; every coder prompt includes it.
    """
    inputs = ExperimentInput(
        idea=idea,
        idea_dir=str(Path(idea_dir).resolve()),
        template_dir=str(template.path.resolve()),
        feedback=feedback,
    )
    limits = deps.settings.experiments
    config = {"recursion_limit": FIXED_STEPS + limits.max_rounds + limits.plot_attempts + 4}
    state = build_experiment_graph().invoke(inputs, config=config, context=deps)
    record: ExperimentRecord = state["record"]
    return record
