"""The paper graph: ideas → (co-pilot gate) → one pipeline per idea → summary.

    START → generate_ideas → review_ideas ─┬→ start_ideas ─Send×N→ idea_pipeline → summarize → END
                     ↑___feedback__________┘

    idea_pipeline:  begin → experiment → gate_experiments → write → gate_writeup → review
                           ↑__feedback___┘        ↑___feedback___┘      (→ improve) → finish

Every node is a small function in ``scientist.pipeline.nodes``; dependencies arrive as the
runtime context (``PipelineDeps``), with the stage graphs below as ``deps.graphs``. Each stage
graph runs inside its node and checkpoints under this graph's checkpointer, in the node's
namespace: with a ``SqliteSaver``, a run killed at any point continues from the last
completed step of each idea and of each stage graph (``scientist resume``).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from graphs.experiments import run_experiments
from graphs.ideas import run_ideas
from graphs.review import review_paper
from graphs.writeup import write_paper
from scientist.pipeline import nodes
from scientist.pipeline.deps import PipelineDeps, StageGraphs
from scientist.pipeline.state import IdeaOutput, IdeaState, PaperInput, PaperState

STAGE_GRAPHS = StageGraphs(
    ideas=run_ideas, experiments=run_experiments, writeup=write_paper, review=review_paper
)


def build_idea_graph() -> Any:
    """One idea through experiments, write-up and review; inherits the parent's checkpointer."""
    builder = StateGraph(IdeaState, context_schema=PipelineDeps, output_schema=IdeaOutput)
    builder.add_node("begin", nodes.begin)
    builder.add_node("experiment", nodes.experiment)
    builder.add_node("gate_experiments", nodes.gate_experiments)
    builder.add_node("write", nodes.write)
    builder.add_node("gate_writeup", nodes.gate_writeup)
    builder.add_node("review", nodes.review)
    builder.add_node("improve", nodes.improve)
    builder.add_node("finish", nodes.finish)
    builder.add_edge(START, "begin")
    builder.add_edge("begin", "experiment")
    builder.add_edge("improve", "finish")
    builder.add_edge("finish", END)
    return builder.compile()


def build_paper_graph(checkpointer: Any = None) -> Any:
    """The whole pipeline for one template; pass a SqliteSaver to make it resumable."""
    builder = StateGraph(PaperState, context_schema=PipelineDeps, input_schema=PaperInput)
    builder.add_node("generate_ideas", nodes.generate_ideas)
    builder.add_node("review_ideas", nodes.review_ideas)
    builder.add_node("start_ideas", nodes.start_ideas)
    builder.add_node("idea_pipeline", build_idea_graph())
    builder.add_node("summarize", nodes.summarize)
    builder.add_edge(START, "generate_ideas")
    builder.add_edge("generate_ideas", "review_ideas")
    builder.add_conditional_edges("start_ideas", nodes.fan_out, ["idea_pipeline", "summarize"])
    builder.add_edge("idea_pipeline", "summarize")
    builder.add_edge("summarize", END)
    return builder.compile(checkpointer=checkpointer)
