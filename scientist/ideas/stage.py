"""The idea stage as one call: ``run_ideas(template, deps) -> IdeasFile`` (ideas.json).

The paper pipeline (graphs/paper.py) and ``scientist ideas`` both call ``run_ideas``; it
invokes the idea graph (graphs/ideas.py) with the deps as runtime context.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.ledger import sum_entries
from graphs.ideas import build_ideas_graph
from scientist.ideas.deps import IdeasDeps, IdeasProgress
from scientist.ideas.records import IdeasFile
from scientist.literature.models import SourceName
from scientist.template import Template

__all__ = ["IdeasDeps", "IdeasFile", "IdeasProgress", "load_ideas", "run_ideas", "save_ideas"]


def graph_config(deps: IdeasDeps) -> dict[str, Any]:
    """Room for every generate/reflect step; one novelty check at a time on the local model.

    The embedded server answers one request at a time: parallel branches would only queue
    there and evict each other's prompt cache.
    """
    ideas = deps.settings.ideas
    steps = ideas.num_ideas * (ideas.num_reflections + 3) + 10
    config: dict[str, Any] = {"recursion_limit": max(steps, 25)}
    if deps.settings.llm.models.ideas == "local":
        config["max_concurrency"] = 1
    return config


def run_ideas(template: Template, deps: IdeasDeps, *, feedback: str | None = None) -> IdeasFile:
    """Generate, refine, deduplicate and novelty-check ideas for ``template``."""
    start = time.perf_counter()
    first_entry = len(deps.gateway.ledger.entries)
    state = build_ideas_graph().invoke(
        {"template": template, "feedback": feedback},
        config=graph_config(deps),
        context=deps,
    )
    usage = sum_entries(deps.gateway.ledger.entries[first_entry:])
    records = [r for r in state.get("ideas", []) if r.status == "kept"]
    answered: list[SourceName] = [
        source for r in records if r.novelty is not None for source in r.novelty.sources_answered
    ]
    return IdeasFile(
        template=template.name,
        model=deps.settings.llm.models.ideas,
        feedback=feedback,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        wall_time_s=round(time.perf_counter() - start, 2),
        ideas=records,
        duplicates=[r for r in state.get("ideas", []) if r.status == "duplicate"],
        failures=state.get("failures", []),
        sources=list(deps.settings.literature.sources),
        sources_answered=list(dict.fromkeys(answered)),
        settings={
            "ideas": deps.settings.ideas.model_dump(mode="json"),
            "literature": deps.settings.literature.model_dump(mode="json"),
            "profile": deps.profile().model_dump(mode="json"),
        },
        usage=usage.model_dump(exclude={"by_role"}),
    )


def save_ideas(ideas: IdeasFile, path: Path) -> Path:
    """Write ``ideas.json`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ideas.model_dump_json(indent=2), encoding="utf-8")
    return path


def load_ideas(path: Path) -> IdeasFile:
    """Read an ``ideas.json`` back."""
    return IdeasFile.model_validate_json(path.read_text(encoding="utf-8"))
