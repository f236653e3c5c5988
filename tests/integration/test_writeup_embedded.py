"""`scientist write` end to end: the embedded model, the offline BM25 index, real latexmk."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.literature.bibtex import parse_bib
from core.literature.factory import build_literature
from core.literature.offline import build_index
from core.settings import Settings, load_settings
from gateway import Gateway
from gateway.local import LocalServer
from graphs.writeup import write_paper
from scientist.writeup.compile import LatexmkCompiler
from scientist.writeup.deps import WriteupDeps
from scientist.writeup.latex import cite_keys
from scientist.writeup.sections import SECTIONS
from tests.fixtures.writeup.idea_folder import load_idea, load_record, make_idea_folder

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed"),
]
CORPUS = Path(__file__).resolve().parents[2] / "samples" / "calibration" / "iclr_small.jsonl"


def test_write_a_paper_with_the_embedded_model_and_offline_literature(
    embedded_settings: Settings, embedded_server: LocalServer, tmp_path: Path
) -> None:
    index = tmp_path / "index.sqlite"
    build_index([CORPUS], index)
    settings = load_settings(
        "debug",
        {
            "data_dir": str(embedded_settings.data_dir),
            "llm": {"cache_enabled": False},
            "literature": {
                "sources": ["offline"],
                "index_path": str(index),
                "cache_enabled": False,
            },
        },
    )
    folder = make_idea_folder(tmp_path / "run")
    deps = WriteupDeps(
        gateway=Gateway(settings, local_server=embedded_server),
        settings=settings,
        literature=build_literature(settings),
        compiler=LatexmkCompiler(),
    )
    start = time.perf_counter()
    record = write_paper(load_idea(), folder, load_record(), deps)
    wall = time.perf_counter() - start
    print(
        f"\nembedded write-up: {wall:.0f} s, {record.pages} pages, "
        f"{len(record.citations)} citations, {len(record.compile_attempts)} compiles, "
        f"{record.prompt_tokens} prompt + {record.completion_tokens} completion tokens"
    )
    assert record.status == "ok", record.errors
    paper = folder / "paper"
    text = "\n".join(page.extract_text() or "" for page in PdfReader(paper / "paper.pdf").pages)
    for spec in SECTIONS:
        assert spec.title in text, f"{spec.title} missing from the PDF"
    tex = (paper / "paper.tex").read_text()
    assert "\\includegraphics" in tex and (paper / "val_acc.png").is_file()
    assert "\\label{tab:results}" in tex and "0.9712" in text  # the measured number, by code
    bib_keys = {entry.key for entry in parse_bib((paper / "references.bib").read_text())}
    cited = set(cite_keys(tex))
    assert cited == bib_keys  # every \cite resolves, and only cited entries are listed
    sources = {c.key: c.paper_id for c in record.citations}
    assert set(sources) == cited
    assert all(pid.startswith(("offline:", "template:")) for pid in sources.values())
    log = (paper / "paper.log").read_text(errors="replace")
    assert not re.search(r"Citation `[^']*' .*undefined", log)
    assert record.compile_attempts[-1].ok and record.pages and record.pages >= 2
    assert all(s.calls >= 1 and s.text.strip() for s in record.sections)
