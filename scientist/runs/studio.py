"""The paper graph's factory for LangGraph's own tools (``langgraph.json``; see graphs.studio).

Its dependencies are those of ``scientist run``: on the first node that needs them, a new run
folder under ``runs_dir`` with its run.json, the gateway and ledger, the literature cascade,
Aider, the sandbox runner and latexmk. The graph runs under the tool's own checkpointer;
``scientist resume`` does not know such a run, and its run.json keeps the start only.
"""

from __future__ import annotations

from typing import Any

from core.runstore import new_run
from graphs.paper import build_paper_graph
from graphs.studio import StudioConfig, once
from scientist.ideas.template import load_template
from scientist.pipeline.deps import PipelineDeps
from scientist.runs.run import start_manifest
from scientist.runs.wiring import RunRequest, real_deps


def paper_deps(studio: StudioConfig) -> PipelineDeps:
    """A new run folder and the real dependencies, as ``scientist run`` makes them."""
    settings = studio.settings()
    request = RunRequest(template=studio.template, preset=studio.preset, overrides=studio.overrides)
    run = new_run(settings.runs_dir, load_template(studio.template).name)
    start_manifest(run, request, settings)
    return real_deps(settings, run, request)


def paper_graph(config: dict[str, Any]) -> Any:
    """The paper graph, for ``langgraph.json``. Input: ``{}``; configurable: ``template``,
    ``preset``, ``overrides``."""
    studio = StudioConfig.from_config(config)
    return build_paper_graph(deps=once(lambda: paper_deps(studio)))
