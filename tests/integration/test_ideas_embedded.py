"""`scientist ideas` on every shipped template with the embedded model and the offline index."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.literature.factory import build_literature
from core.literature.offline import build_index
from core.settings import Settings
from gateway import Gateway
from gateway.local import LocalServer
from graphs.ideas import run_ideas
from scientist.ideas.deps import IdeasDeps
from scientist.ideas.novelty import check_novelty
from scientist.ideas.records import load_ideas, save_ideas
from scientist.ideas.template import load_template, shipped_templates

pytestmark = pytest.mark.integration
FIXTURE = Path(__file__).resolve().parents[2] / "samples" / "calibration" / "iclr_small.jsonl"
SHARED_ICLR = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "iclr2022" / "calibration.jsonl"
)
TEMPLATES = shipped_templates() or [
    pytest.param("none", marks=pytest.mark.skip(reason="templates/ ships no template yet"))
]


def _tiny(settings: Settings, index: Path) -> Settings:
    ideas = settings.ideas.model_copy(
        update={"num_ideas": 1, "num_reflections": 1, "novelty_rounds": 1}
    )
    literature = settings.literature.model_copy(
        update={"sources": ["offline"], "index_path": index, "cache_enabled": False}
    )
    return settings.model_copy(update={"ideas": ideas, "literature": literature})


@pytest.mark.parametrize("name", TEMPLATES)
def test_ideas_on_a_shipped_template(
    name: str, embedded_settings: Settings, embedded_server: LocalServer, tmp_path: Path
) -> None:
    corpus = SHARED_ICLR if SHARED_ICLR.is_file() else FIXTURE
    build_index([corpus], tmp_path / "index.sqlite")
    settings = _tiny(embedded_settings, tmp_path / "index.sqlite")
    deps = IdeasDeps(
        gateway=Gateway(settings, local_server=embedded_server),
        settings=settings,
        literature=build_literature(settings),
    )
    start = time.perf_counter()
    result = run_ideas(load_template(name), deps)
    elapsed = time.perf_counter() - start
    stored = load_ideas(save_ideas(result, tmp_path / "ideas.json"))
    print(f"\n{name}: scientist ideas (1 idea, 1 reflection, 1 novelty round) {elapsed:.1f} s")
    produced = stored.every_idea()
    assert len(produced) + len(stored.failures) == 1, stored.failures
    assert stored.usage["calls"] >= 1 and stored.model == "local"
    if stored.failures:
        # The 135M model may still fail the schema after its re-ask: recorded, never dropped.
        (failure,) = stored.failures
        assert failure.stage == "generate" and failure.error and produced == []
        return
    (record,) = produced
    assert 0 <= record.reflections_used <= 1
    if record.status == "duplicate":  # a copied seed idea: dropped, never novelty-checked
        assert record.novelty is None and record.duplicate_of and stored.ideas == []
        return
    assert stored.ideas == [record] and stored.duplicates == []
    verdict = record.novelty
    assert verdict is not None and verdict.status in {"novel", "not_novel", "undecided"}
    assert verdict.queries and verdict.queries[0].asked_by == "title"
    shown = {p.paper_id for q in verdict.queries for p in q.papers}
    assert {p.paper_id for p in verdict.closest} <= shown
    assert verdict.status == "undecided" or verdict.sources_answered == ["offline"]


def test_novelty_check_of_a_seed_idea(
    embedded_settings: Settings, embedded_server: LocalServer, tmp_path: Path
) -> None:
    """The novelty path on the real model even when the generated idea was a copied seed."""
    names = shipped_templates()
    if not names:
        pytest.skip("templates/ ships no template yet")
    corpus = SHARED_ICLR if SHARED_ICLR.is_file() else FIXTURE
    build_index([corpus], tmp_path / "index.sqlite")
    settings = _tiny(embedded_settings, tmp_path / "index.sqlite")
    deps = IdeasDeps(
        gateway=Gateway(settings, local_server=embedded_server),
        settings=settings,
        literature=build_literature(settings),
    )
    seed = load_template(names[0]).seed_ideas[0]
    verdict = check_novelty(seed, 0, deps)
    assert verdict.status in {"novel", "not_novel", "undecided"}
    assert verdict.queries[0].query == seed.Title and verdict.queries[0].papers
    assert verdict.sources_answered == ["offline"]
    shown = {p.paper_id for q in verdict.queries for p in q.papers}
    assert {p.paper_id for p in verdict.closest} <= shown
