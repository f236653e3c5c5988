"""#23: with the embedded model, a paper cites the papers its novelty check found (real
LaTeX, the offline index of the sample bibliography `make demo` builds)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from core.literature.bibtex import parse_bib
from core.literature.factory import build_literature
from core.literature.offline import build_index
from core.settings import Settings, load_settings
from gateway import Gateway
from gateway.local import LocalServer
from graphs.writeup import write_paper
from scientist.ideas.records import NoveltyQuery, NoveltyVerdict, PaperRef, relevant_papers
from scientist.writeup.compile import LatexmkCompiler
from scientist.writeup.deps import WriteupDeps
from tests.fixtures.writeup.idea_folder import load_idea, load_record, make_idea_folder

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed"),
]
SAMPLES_BIB = Path(__file__).resolve().parents[2] / "samples" / "literature" / "references.bib"


def test_the_embedded_models_paper_cites_the_novelty_checks_papers(
    embedded_settings: Settings, embedded_server: LocalServer, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite"
    build_index([SAMPLES_BIB], index)
    settings = load_settings(
        "debug",
        {
            "data_dir": str(embedded_settings.data_dir),
            "llm": {"cache_enabled": False},
            "literature": {"sources": ["offline"], "index_path": str(index)},
        },
    )
    literature = build_literature(settings)
    idea = load_idea()
    # What the novelty check's opening title search records when the model names no paper.
    found = literature.search(idea.Title, settings.literature.max_results).papers
    assert found, "the sample index returned nothing for the idea's title"
    query = NoveltyQuery(
        round=0, query=idea.Title, asked_by="title", papers=[PaperRef.of(p) for p in found]
    )
    related = relevant_papers(NoveltyVerdict(status="novel", queries=[query]), 3)
    deps = WriteupDeps(
        gateway=Gateway(settings, local_server=embedded_server),
        settings=settings,
        literature=literature,
        compiler=LatexmkCompiler(),
    )
    folder = make_idea_folder(tmp_path / "run")
    record = write_paper(idea, folder, load_record(), deps, related=related)
    assert record.status == "ok", record.errors
    [section] = [s for s in record.sections if s.name == "related_work"]
    keys = {c.paper_id: c.key for c in record.citations}
    assert {r.paper_id for r in related} <= set(keys)
    assert {keys[r.paper_id] for r in related} <= set(section.citations)
    paper = folder / "paper"
    bib = {entry.key for entry in parse_bib((paper / "references.bib").read_text())}
    assert {keys[r.paper_id] for r in related} <= bib
    log = (paper / "paper.log").read_text(errors="replace")
    assert not re.search(r"Citation `[^']*' .*undefined", log)
