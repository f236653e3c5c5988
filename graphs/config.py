"""The run config every graph is invoked with (a recursion limit and a concurrency cap), and
dependencies bound into a graph for tools that cannot pass them (:func:`with_context`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime


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


def with_context(node: Callable[..., Any], provide: Callable[[], Any] | None) -> Callable[..., Any]:
    """``node`` with its runtime context taken from ``provide()`` instead of the caller.

    For LangGraph's own tools (``langgraph dev``, Studio), which invoke a graph with at most
    a serialisable context: the factories in ``graphs.studio`` build the dependencies from a
    preset and overrides and bind them here. A node that takes no runtime, or no
    ``provide``, is returned as it is; the signature and type hints stay the node's own, so
    the graph (its edges, ``Command`` targets, input schemas) is drawn the same.
    """
    if provide is None or "runtime" not in inspect.signature(node).parameters:
        return node

    @functools.wraps(node)
    def bound(state: Any, runtime: Runtime[Any]) -> Any:
        return node(state, runtime.override(context=provide()))

    return bound
