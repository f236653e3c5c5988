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

from typing import Any, cast

from langgraph.graph import END, START, StateGraph

from scientist.writeup.compile_nodes import compile_paper, fallback, finish, fix_compile, shorten
from scientist.writeup.deps import WriteupDeps
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
