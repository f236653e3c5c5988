"""The run config every graph is invoked with: a recursion limit and a concurrency cap."""

from __future__ import annotations

from typing import Any


def run_config(
    *, recursion_limit: int | None = None, max_concurrency: int | None = None
) -> dict[str, Any]:
    """LangGraph's invoke config; a None value leaves LangGraph's default."""
    config: dict[str, Any] = {}
    if recursion_limit is not None:
        config["recursion_limit"] = recursion_limit
    if max_concurrency is not None:
        config["max_concurrency"] = max_concurrency
    return config
