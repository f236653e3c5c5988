"""The review graph: paper → checks → excerpt → N concurrent reviewers → meta-review →
decision.

    START → load_paper → run_checks → prepare_excerpt ─Send×N→ review_one
          → write_meta_review → decide → END

The nodes and state live in ``reviewer.review.nodes``; dependencies (gateway, settings,
calibration, few-shot examples, literature, progress callback) arrive as the runtime context
(``ReviewDeps``); tests swap the gateway's backend. ``run_checks`` does nothing unless
``checks.enabled``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from langgraph.graph import END, START, StateGraph

from gateway.ledger import Ledger
from graphs.config import run_config, with_context
from reviewer.review.form import ReviewReport
from reviewer.review.nodes import (
    ReviewerTask,
    ReviewInput,
    ReviewState,
    assemble_report,
    check_paper,
    decide_scores,
    fan_out,
    load_paper,
    prepare_excerpt,
    review_one,
    write_meta_review,
)
from reviewer.review.reviewing import ReviewDeps, ensemble_models


def build_review_graph(
    checkpointer: Any = None, *, deps: Callable[[], ReviewDeps] | None = None
) -> Any:
    """Compile the review graph; invoke it with ``context=ReviewDeps(...)``, or bind the
    dependencies with ``deps`` (a provider, called when a node first needs them)."""
    schema = None if deps else ReviewDeps
    graph = StateGraph(ReviewState, context_schema=schema, input_schema=ReviewInput)
    graph.add_node("load_paper", with_context(load_paper, deps))
    graph.add_node("run_checks", with_context(check_paper, deps))
    graph.add_node("prepare_excerpt", with_context(prepare_excerpt, deps))
    # Send delivers a ReviewerTask, not the graph state; mypy cannot match that overload.
    one = cast(Any, with_context(review_one, deps))
    graph.add_node("review_one", one, input_schema=ReviewerTask)
    graph.add_node("write_meta_review", with_context(write_meta_review, deps))
    graph.add_node("decide", with_context(decide_scores, deps))
    graph.add_edge(START, "load_paper")
    graph.add_edge("load_paper", "run_checks")
    graph.add_edge("run_checks", "prepare_excerpt")
    graph.add_conditional_edges("prepare_excerpt", with_context(fan_out, deps), ["review_one"])
    graph.add_edge("review_one", "write_meta_review")
    graph.add_edge("write_meta_review", "decide")
    graph.add_edge("decide", END)
    return graph.compile(checkpointer=checkpointer)


def graph_config(deps: ReviewDeps) -> dict[str, Any]:
    """Reviewers run concurrently, as far as their models allow.

    On the one embedded server they run one after another: each reviewer's reflections
    follow its own review and every reviewer after the first starts on the paper prefix
    already processed; interleaved, they would evict each other's cache.
    """
    models = ensemble_models(deps.settings)
    return run_config(max_concurrency=deps.gateway.max_concurrency("reviewer", models))


def checkpointed(checkpointer: Any, thread_id: str) -> bool:
    """Whether ``thread_id`` already has a review checkpoint (a resumed job)."""
    config = {"configurable": {"thread_id": thread_id}}
    return bool(build_review_graph(checkpointer).get_state(config).values)


def review_paper(
    inputs: ReviewInput,
    deps: ReviewDeps,
    *,
    ledger: Ledger | None = None,
    checkpointer: Any = None,
    thread_id: str = "review",
    on_node: Callable[[str], None] | None = None,
) -> ReviewReport:
    """Review one paper (a PDF path or text): the report, with the ledger and settings.

    The one way every caller (``reviewer review``, calibration, the paper pipeline, the
    service) runs the review graph. ``ledger`` records this paper's calls apart (the
    report's usage is then this paper's alone). With a ``checkpointer`` the run is
    checkpointed in ``thread_id``: a thread with a pending checkpoint resumes from it
    (``inputs`` is then not read again), a finished one returns its final state.
    ``on_node`` hears each node as it finishes.
    """
    if ledger is not None:
        deps = replace(deps, gateway=deps.gateway.with_ledger(ledger))
    graph = build_review_graph(checkpointer)
    config = graph_config(deps)
    start: ReviewInput | None = inputs
    if checkpointer is not None:
        config["configurable"] = {"thread_id": thread_id}
        snapshot = graph.get_state(config)
        # A kill between a step's writes and its checkpoint leaves no ``next`` but tasks
        # with results: that thread is pending (resume it), not finished.
        pending = bool(snapshot.next or snapshot.tasks)
        if snapshot.values and not pending:
            return assemble_report(dict(snapshot.values), deps, 0.0)
        start = None if pending else inputs
    began = time.perf_counter()
    state: dict[str, Any] = {}
    modes = ["updates", "values"]
    for mode, chunk in graph.stream(start, config, context=deps, stream_mode=modes):
        if mode == "values":
            state = chunk
        elif on_node is not None:
            for node in chunk:
                on_node(node)
    return assemble_report(state, deps, time.perf_counter() - began)


def review_alone(inputs: ReviewInput, deps: ReviewDeps) -> ReviewReport:
    """``review_paper`` with a fresh in-memory ledger: the report counts this paper only
    (calibration reviews paper after paper with one set of deps)."""
    return review_paper(inputs, deps, ledger=Ledger())
