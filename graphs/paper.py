"""The paper graph: ideas → (co-pilot gate) → one pipeline per idea → summary.

    START → generate_ideas → review_ideas ─┬→ start_ideas ─Send×N→ idea_pipeline → summarize → END
                     ↑___feedback__________┘

    idea_pipeline:  begin → literature_review → gate_review → plan → gate_plan → experiment
                                  ↑___feedback______┘       ↑_feedback_┘
                    → gate_experiments → write → gate_writeup → review (→ improve) → finish
                      (feedback: back to experiment)  (feedback: back to write)

Every node is a small function in ``scientist.pipeline.nodes``; dependencies arrive as the
runtime context (``PipelineDeps``), with the stage graphs below as ``deps.graphs``. Each stage
graph runs inside its node and checkpoints under this graph's checkpointer, in the node's
namespace: with a ``SqliteSaver``, a run killed at any point continues from the last
completed step of each idea and of each stage graph (``scientist resume``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph

from graphs.config import with_context
from graphs.experiments import run_experiments
from graphs.ideas import run_ideas
from graphs.review import review_paper
from graphs.survey import run_survey
from graphs.writeup import write_paper
from scientist.pipeline import nodes
from scientist.pipeline.deps import PipelineDeps, StageGraphs
from scientist.pipeline.state import IdeaOutput, IdeaState, PaperInput, PaperState

STAGE_GRAPHS = StageGraphs(
    ideas=run_ideas,
    survey=run_survey,
    experiments=run_experiments,
    writeup=write_paper,
    review=review_paper,
)


Provide = Callable[[], PipelineDeps]


def build_idea_graph(deps: Provide | None = None, checkpointer: Any = None) -> Any:
    """One idea through its literature review, plan, experiments, write-up and review;
    inherits the parent's checkpointer (or, run as a task of its own, checkpoints in
    ``checkpointer``)."""
    schema = None if deps else PipelineDeps
    builder = StateGraph(IdeaState, context_schema=schema, output_schema=IdeaOutput)
    builder.add_node("begin", with_context(nodes.begin, deps))
    builder.add_node("literature_review", with_context(nodes.literature_review, deps))
    builder.add_node("gate_review", with_context(nodes.gate_review, deps))
    builder.add_node("plan", with_context(nodes.plan, deps))
    builder.add_node("gate_plan", with_context(nodes.gate_plan, deps))
    builder.add_node("experiment", with_context(nodes.experiment, deps))
    builder.add_node("gate_experiments", with_context(nodes.gate_experiments, deps))
    builder.add_node("write", with_context(nodes.write, deps))
    builder.add_node("gate_writeup", with_context(nodes.gate_writeup, deps))
    builder.add_node("review", with_context(nodes.review, deps))
    builder.add_node("improve", with_context(nodes.improve, deps))
    builder.add_node("finish", with_context(nodes.finish, deps))
    builder.add_edge(START, "begin")
    builder.add_edge("begin", "literature_review")
    builder.add_edge("improve", "finish")
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=checkpointer)


def build_paper_graph(
    checkpointer: Any = None, *, deps: Provide | None = None, ideas_apart: bool = False
) -> Any:
    """The whole pipeline for one template; pass a SqliteSaver to make it resumable. Invoke
    it with ``context=PipelineDeps(...)``, or bind the dependencies with ``deps`` (a
    provider, called when a node first needs them). With ``ideas_apart`` each idea's
    pipeline is a task of its own (``deps.idea_runner``: a Ray task), which checkpoints in
    the idea's folder; this graph waits for it and records its outcome."""
    schema = None if deps else PipelineDeps
    builder = StateGraph(PaperState, context_schema=schema, input_schema=PaperInput)
    builder.add_node("generate_ideas", with_context(nodes.generate_ideas, deps))
    builder.add_node("review_ideas", with_context(nodes.review_ideas, deps))
    builder.add_node("start_ideas", nodes.start_ideas)
    if ideas_apart:
        builder.add_node("idea_pipeline", with_context(nodes.idea_apart, deps))
    else:
        builder.add_node("idea_pipeline", build_idea_graph(deps))
    builder.add_node("summarize", with_context(nodes.summarize, deps))
    builder.add_edge(START, "generate_ideas")
    builder.add_edge("generate_ideas", "review_ideas")
    builder.add_conditional_edges("start_ideas", nodes.fan_out, ["idea_pipeline", "summarize"])
    builder.add_edge("idea_pipeline", "summarize")
    builder.add_edge("summarize", END)
    return builder.compile(checkpointer=checkpointer)
