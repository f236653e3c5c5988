"""The idea graph: N ideas, each refined by reflection, deduplicated, then novelty-checked.

    START → seed → generate ⇄ reflect → settle ─┬→ generate            (more ideas to go)
                                                 └─Send×kept→ check_novelty → collect → END

The nodes and state live in ``scientist.ideas.nodes``; dependencies (gateway, settings,
literature, progress) arrive as the runtime context (``IdeasDeps``).
"""

from __future__ import annotations

import time
from typing import Any, cast

from langgraph.graph import END, START, StateGraph

from graphs.config import run_config
from scientist.ideas.deps import IdeasDeps
from scientist.ideas.nodes import (
    IdeasInput,
    IdeasState,
    NoveltyTask,
    collect,
    generate,
    ideas_file,
    novelty,
    reflect,
    seed,
    settle,
)
from scientist.ideas.records import IdeasFile
from scientist.ideas.template import Template


def build_ideas_graph(checkpointer: Any = None) -> Any:
    """Compile the idea graph; invoke it with ``context=IdeasDeps(...)``."""
    graph = StateGraph(IdeasState, context_schema=IdeasDeps, input_schema=IdeasInput)
    graph.add_node("seed", seed)
    graph.add_node(
        "generate",
        generate,
        destinations=("reflect", "settle", "generate", "check_novelty", "collect"),
    )
    graph.add_node("reflect", reflect, destinations=("reflect", "settle"))
    graph.add_node("settle", settle, destinations=("generate", "check_novelty", "collect"))
    # Send delivers a NoveltyTask, not the graph state; mypy cannot match that overload.
    graph.add_node("check_novelty", cast(Any, novelty), input_schema=NoveltyTask)
    graph.add_node("collect", collect)
    graph.add_edge(START, "seed")
    graph.add_edge("seed", "generate")
    graph.add_edge("check_novelty", "collect")
    graph.add_edge("collect", END)
    return graph.compile(checkpointer=checkpointer)


def graph_config(deps: IdeasDeps) -> dict[str, Any]:
    """Room for every generate/reflect step; novelty checks as parallel as the model allows."""
    ideas = deps.settings.ideas
    count = max(ideas.num_ideas, len(ideas.given))  # the researcher's own ideas, if given
    steps = count * (ideas.num_reflections + 3) + 10
    return run_config(
        recursion_limit=max(steps, 25), max_concurrency=deps.gateway.max_concurrency("ideas")
    )


def run_ideas(template: Template, deps: IdeasDeps, *, feedback: str | None = None) -> IdeasFile:
    """Generate, refine, deduplicate and novelty-check ideas for ``template`` (ideas.json's
    record; ``scientist ideas`` and the paper pipeline both call this)."""
    start = time.perf_counter()
    first_entry = len(deps.gateway.ledger.entries)
    state = build_ideas_graph().invoke(
        {"template": template, "feedback": feedback}, config=graph_config(deps), context=deps
    )
    return ideas_file(state, deps, feedback, time.perf_counter() - start, first_entry)
