"""The write-up stage as one call for the pipeline and the CLI: ``write_paper``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scientist.experiments.models import ExperimentRecord
from scientist.ideas.models import Idea
from scientist.ideas.records import PaperRef
from scientist.writeup.compile import LatexCompiler, LatexmkCompiler
from scientist.writeup.deps import WriteupDeps, WriteupEvent
from scientist.writeup.html import WeasyprintCompiler
from scientist.writeup.models import WriteupRecord

__all__ = [
    "WriteupDeps",
    "WriteupEvent",
    "WriteupRecord",
    "compiler_for",
    "graph_config",
    "write_paper",
]


def compiler_for(engine: str) -> LatexCompiler:
    """The compiler seam for ``--pdf-engine``: latexmk, or weasyprint from HTML."""
    return WeasyprintCompiler() if engine == "weasyprint" else LatexmkCompiler()


def graph_config(deps: WriteupDeps) -> dict[str, Any]:
    """Sections run concurrently, except when the writer is the one embedded server.

    The embedded llama.cpp server answers one request at a time and reuses the KV cache of
    the longest prefix shared with the previous request; in turn, each section's prompt
    starts on the shared context already processed.
    """
    rounds = deps.settings.writing
    limit = 60 + 2 * rounds.citation_rounds + 3 * (rounds.fix_rounds + rounds.shorten_rounds)
    config: dict[str, Any] = {"recursion_limit": limit}
    if deps.settings.llm.models.writer == "local":
        config["max_concurrency"] = 1
    return config


def write_paper(
    idea: Idea,
    idea_dir: Path,
    record: ExperimentRecord,
    deps: WriteupDeps,
    *,
    feedback: str | None = None,
    review: str | None = None,
    related: Sequence[PaperRef] = (),
) -> WriteupRecord:
    """Write, cite, compile and check one paper into ``idea_dir/paper``; return writeup.json.

    ``feedback`` (a co-pilot's note) and ``review`` (a reviewer's text, for one revision of
    the previous draft in this folder) reach every writer prompt. ``related`` (the papers the
    idea's novelty check found relevant) join the bibliography and Related Work cites each,
    whatever the citation model picks. Raises the typed errors of
    ``scientist.writeup.errors`` for a missing toolchain or template before any model call;
    a paper that does not compile comes back with ``status="failed"`` and its errors.
    """
    from graphs.writeup import build_writeup_graph

    inputs = {
        "idea": idea,
        "idea_dir": str(idea_dir),
        "record": record,
        "feedback": feedback,
        "review": review,
        "related": list(related),
    }
    state = build_writeup_graph().invoke(inputs, config=graph_config(deps), context=deps)
    result: WriteupRecord = state["result"]
    return result
