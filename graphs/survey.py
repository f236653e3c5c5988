"""The literature-review graph: queries → cascade → one summary per paper → themes and gaps.

    START → make_queries → search ─Send×N→ summarize_paper → synthesize → finish → END
                                  └───────────────────────→ synthesize   (no paper kept)

The nodes live in ``scientist.survey.nodes``; their dependencies (gateway, settings, the
literature cascade) arrive as the runtime context (``SurveyDeps``). Each model call is a
step of its own, checkpointed before the next begins, so under the paper graph's
checkpointer a run killed in the review resumes without repeating a finished call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from langgraph.config import get_config
from langgraph.constants import CONFIG_KEY_CHECKPOINTER
from langgraph.graph import END, START, StateGraph
from langgraph.types import Durability

from graphs.config import run_config
from scientist.ideas.models import Idea
from scientist.ideas.template import Template
from scientist.survey.deps import ROLE, SurveyDeps
from scientist.survey.models import LiteratureReview
from scientist.survey.nodes import (
    PaperTask,
    SurveyInput,
    SurveyState,
    fan_out,
    finish,
    make_queries,
    search,
    summarize_paper,
    synthesize,
)


def build_survey_graph(checkpointer: Any = None) -> Any:
    """Compile the review graph; invoke it with ``context=SurveyDeps(...)``."""
    graph = StateGraph(SurveyState, context_schema=SurveyDeps, input_schema=SurveyInput)
    graph.add_node("make_queries", make_queries)
    graph.add_node("search", search)
    # Send delivers a PaperTask, not the graph state; mypy cannot match that overload.
    graph.add_node("summarize_paper", cast(Any, summarize_paper), input_schema=PaperTask)
    graph.add_node("synthesize", synthesize)
    graph.add_node("finish", finish)
    graph.add_edge(START, "make_queries")
    graph.add_edge("make_queries", "search")
    graph.add_conditional_edges("search", fan_out, ["summarize_paper", "synthesize"])
    graph.add_edge("summarize_paper", "synthesize")
    graph.add_edge("synthesize", "finish")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)


def durability() -> Durability | None:
    """ "sync" under a checkpointer (the paper graph's, when run inside its node): each step's
    checkpoint is written before the next step calls the model; LangGraph's default,
    "async", writes it meanwhile, and a kill in that window repeated a finished call. None
    without one (nothing to make durable)."""
    try:
        configurable = get_config().get("configurable", {})
    except RuntimeError:  # not inside a graph: no checkpointer to inherit
        return None
    return "sync" if configurable.get(CONFIG_KEY_CHECKPOINTER) is not None else None


def run_survey(
    idea: Idea,
    idea_dir: Path,
    template: Template,
    deps: SurveyDeps,
    *,
    feedback: str | None = None,
) -> LiteratureReview:
    """Review the literature on ``idea``; write literature_review.json and .md in
    ``idea_dir`` and return the review. ``feedback`` (a co-pilot's note) reaches every
    prompt of the stage."""
    inputs: SurveyInput = {
        "idea": idea,
        "idea_dir": str(Path(idea_dir).resolve()),
        "template": template,
        "feedback": feedback,
    }
    config = run_config(recursion_limit=25, max_concurrency=deps.gateway.max_concurrency(ROLE))
    graph = build_survey_graph()
    state = graph.invoke(inputs, config=config, context=deps, durability=durability())
    review: LiteratureReview = state["review"]
    return review
