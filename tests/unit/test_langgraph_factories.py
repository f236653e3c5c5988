"""The factories ``langgraph.json`` names, loaded as the LangGraph CLI loads them (issue #21).

The CLI imports each ``./path.py:name`` file on its own and calls the factory with the run's
config; the graph it gets must be the pipeline's own graph, drawn the same, with its
dependencies built from the JSON config alone, once, and only when a node needs them.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from graphs.paper import build_paper_graph
from graphs.review import build_review_graph
from tests.unit.review_script import obedient_reviewer

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / "langgraph.json").read_text())


def load_factory(graph_id: str) -> Any:
    """``module:name`` imported, the way langgraph_api's loader reads a spec without a ``/``
    (the module form also works from an installed wheel)."""
    module, _, name = CONFIG["graphs"][graph_id].rpartition(":")
    assert "/" not in module
    return getattr(importlib.import_module(module), name)


def test_langgraph_json_names_the_review_and_paper_graphs() -> None:
    assert set(CONFIG["graphs"]) == {"review", "paper"}
    assert CONFIG["dependencies"] == ["."]


@pytest.mark.parametrize(
    ("graph_id", "plain"), [("review", build_review_graph), ("paper", build_paper_graph)]
)
def test_a_factory_graph_is_drawn_as_the_pipeline_graph_and_builds_nothing(
    graph_id: str, plain: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Settings] = []
    monkeypatch.setattr(Gateway, "from_settings", staticmethod(lambda s, *a: built.append(s)))
    config = {"configurable": {"overrides": [f"runs_dir={tmp_path / 'runs'}"]}}
    graph = load_factory(graph_id)(config)
    drawn = graph.get_graph(xray=True).draw_mermaid()
    assert drawn == plain().get_graph(xray=True).draw_mermaid()
    assert built == [] and not (tmp_path / "runs").exists()  # drawing builds no dependency


def test_the_review_factory_runs_on_its_json_config_with_deps_built_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Settings] = []
    script = ScriptedLLM(obedient_reviewer(lambda request: 7))

    def scripted(settings: Settings, run_dir: Path | None = None) -> Gateway:
        built.append(settings)
        return Gateway(settings, backend=script)

    monkeypatch.setattr(Gateway, "from_settings", staticmethod(scripted))
    overrides = [
        f"data_dir={tmp_path}",
        "llm.models.reviewer=openai/gpt-4o",
        "llm.models.meta_reviewer=openai/gpt-4o",
        "review.num_reviewers=3",
        "review.num_reflections=0",
        "review.num_fewshot=0",
    ]
    config = {"configurable": {"preset": "debug", "overrides": overrides, "thread_id": "t"}}
    graph = load_factory("review")(config)
    paper = {"paper_text": "A Paper\n\nAbstract\nWe study grokking.\n" * 20, "paper_id": "p"}
    state = graph.invoke(paper, config)
    assert len(built) == 1  # one set of deps for every node
    assert built[0].review.num_reviewers == 3 and built[0].preset == "debug"
    assert len(state["reviews"]) == 3 and state["scores"]["Overall"].mean == 7
    assert len(script.requests) == 4  # three reviewers and the meta-review
