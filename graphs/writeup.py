"""The write-up graph: sections in dependency waves, citations, refinement, compile-and-fix.

    START → prepare → schedule ─Send×wave→ write_section → schedule … → cite ⟲ (C rounds)
          ─Send×8→ refine_section → compile ─→ fix_compile → compile   (fix_rounds)
                                             ─→ fallback → compile     (plain-text rendering)
                                             ─→ shorten → compile      (page limit)
                                             ─→ finish → END

Dependencies (gateway, settings, literature, LaTeX compiler, progress callback) arrive as
LangGraph's runtime context (``WriteupDeps``); tests swap the gateway's backend, the
literature and the compiler.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from langgraph.graph import END, START, StateGraph

from graphs.config import run_config
from scientist.experiments.models import ExperimentRecord
from scientist.ideas.models import Idea
from scientist.ideas.records import PaperRef
from scientist.plan.models import ExperimentPlan
from scientist.writeup.compile_nodes import compile_paper, fallback, finish, fix_compile, shorten
from scientist.writeup.deps import WriteupDeps
from scientist.writeup.models import WriteupRecord
from scientist.writeup.nodes import (
    cite,
    next_sections,
    prepare,
    refine_section,
    schedule,
    write_section,
)
from scientist.writeup.state import SectionTask, WriteupInput, WriteupState


def build_writeup_graph(checkpointer: Any = None) -> Any:
    """Compile the write-up graph; invoke it with ``context=WriteupDeps(...)``."""
    graph = StateGraph(WriteupState, context_schema=WriteupDeps, input_schema=WriteupInput)
    graph.add_node("prepare", prepare)
    graph.add_node("schedule", schedule)
    # Send delivers a SectionTask, not the graph state; mypy cannot match that overload.
    graph.add_node("write_section", cast(Any, write_section), input_schema=SectionTask)
    graph.add_node("cite", cite)
    graph.add_node("refine_section", cast(Any, refine_section), input_schema=SectionTask)
    graph.add_node("compile", compile_paper)
    graph.add_node("fix_compile", fix_compile)
    graph.add_node("fallback", fallback)
    graph.add_node("shorten", shorten)
    graph.add_node("finish", finish)
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "schedule")
    graph.add_conditional_edges("schedule", next_sections, ["write_section", "cite"])
    graph.add_edge("write_section", "schedule")
    graph.add_edge("refine_section", "compile")
    for node in ("fix_compile", "fallback", "shorten"):
        graph.add_edge(node, "compile")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)


def graph_config(deps: WriteupDeps) -> dict[str, Any]:
    """Sections run concurrently, as far as the writer's model allows (one at a time on the
    embedded server: each section's prompt then starts on the shared context it has
    already processed)."""
    rounds = deps.settings.writing
    limit = 60 + 2 * rounds.citation_rounds + 3 * (rounds.fix_rounds + rounds.shorten_rounds)
    return run_config(recursion_limit=limit, max_concurrency=deps.gateway.max_concurrency("writer"))


def write_paper(
    idea: Idea,
    idea_dir: Path,
    record: ExperimentRecord,
    deps: WriteupDeps,
    *,
    feedback: str | None = None,
    review: str | None = None,
    related: Sequence[PaperRef] = (),
    review_papers: Sequence[PaperRef] = (),
    plan: ExperimentPlan | None = None,
) -> WriteupRecord:
    """Write, cite, compile and check one paper into ``idea_dir/paper``; return writeup.json.

    ``feedback`` (a co-pilot's note) and ``review`` (a reviewer's text, for one revision of
    the previous draft in this folder) reach every writer prompt. ``related`` (the papers the
    idea's novelty check found relevant) and ``review_papers`` (those of its literature review,
    under the review's keys, added first) join the bibliography and Related Work cites each,
    whatever the citation model picks. ``plan`` (the idea's experiment plan) is in every
    writer prompt, for the method section. Raises the typed errors of
    ``scientist.writeup.errors`` for a missing toolchain or template before any model call;
    a paper that does not compile comes back with ``status="failed"`` and its errors.
    """
    inputs = {
        "idea": idea,
        "idea_dir": str(idea_dir),
        "record": record,
        "feedback": feedback,
        "review": review,
        "related": list(related),
        "review_papers": list(review_papers),
        "plan": plan,
    }
    state = build_writeup_graph().invoke(inputs, config=graph_config(deps), context=deps)
    result: WriteupRecord = state["result"]
    return result
