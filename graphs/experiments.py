"""The experiment subgraph: template copy → baseline → coding rounds → plot → notes.

    START → prepare → baseline ─→ code_round ⟲ → plot_round ⟲ → notes_round → finish → END
                          └─────────────────────────────────────────────────→ finish

code_round loops until max_rounds, or until the coder has changed nothing in experiment.py
for ``stop_after_no_change`` rounds running; plot_round goes back to the coder when plot.py
fails (up to ``plot_attempts``); a failed baseline goes straight to finish.

The nodes live in ``scientist.experiments.rounds``; their dependencies (settings, code
editor, sandboxed runner, progress callback) arrive as the runtime context
(``ExperimentDeps``), so tests swap the editor and the runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph

from graphs.config import run_config
from scientist.experiments.models import ExperimentRecord
from scientist.experiments.rounds import (
    ExperimentDeps,
    ExperimentInput,
    ExperimentState,
    baseline,
    code_round,
    finish,
    notes_round,
    plot_round,
    prepare,
)
from scientist.ideas.models import Idea
from scientist.ideas.template import Template
from scientist.plan.models import ExperimentPlan

# prepare, baseline, finish, plus one step per coding, plot and notes round.
FIXED_STEPS = 8


def build_experiment_graph(checkpointer: Any = None) -> Any:
    """Compile the experiment graph; invoke it with ``context=ExperimentDeps(...)``."""
    graph = StateGraph(ExperimentState, context_schema=ExperimentDeps, input_schema=ExperimentInput)
    graph.add_node("prepare", prepare)
    graph.add_node("baseline", baseline)
    graph.add_node("code_round", code_round)
    graph.add_node("plot_round", plot_round)
    graph.add_node("notes_round", notes_round)
    graph.add_node("finish", finish)
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "baseline")
    graph.add_edge("notes_round", "finish")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)


def run_experiments(
    idea: Idea,
    idea_dir: Path,
    template: Template,
    deps: ExperimentDeps,
    *,
    feedback: str | None = None,
    plan: ExperimentPlan | None = None,
) -> ExperimentRecord:
    """Copy the template into ``idea_dir``, run the baseline and the coding, plot and notes
    rounds, write ``experiments.json`` and return its record.

    ``feedback`` is a human's co-pilot feedback; every coder prompt includes it. With a
    ``plan``, every coding prompt shows it and ``run_i`` makes planned run ``i`` (recorded
    as the round's ``planned_run``).
    """
    inputs = ExperimentInput(
        idea=idea,
        idea_dir=str(Path(idea_dir).resolve()),
        template_dir=str(template.path.resolve()),
        feedback=feedback,
        plan=plan,
    )
    limits = deps.settings.experiments
    steps = FIXED_STEPS + limits.max_rounds + limits.plot_attempts + 4
    state = build_experiment_graph().invoke(
        inputs, config=run_config(recursion_limit=steps), context=deps
    )
    record: ExperimentRecord = state["record"]
    return record
