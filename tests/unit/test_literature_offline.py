"""The offline index: corpus reading, BM25 ranking, BibTeX, rebuilds, and its CLI commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.literature.bibtex import parse_bib
from core.literature.corpus import read_corpus
from core.literature.errors import CorpusError, IndexMissingError
from core.literature.factory import build_literature, index_path
from core.literature.offline import OfflineIndex, build_index, match_expression
from core.settings import Settings
from scientist.cli import app

FIXTURE = Path(__file__).resolve().parents[2] / "samples" / "calibration" / "iclr_small.jsonl"
SHARED_ICLR = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "iclr2022" / "calibration.jsonl"
)
SettingsFactory = Callable[..., Settings]
BIB = r"""
@string{iclr = "ICLR"}
@inproceedings{power2022grokking,
  title = {Grokking: Generalization Beyond Overfitting on Small {Algorithmic} Datasets},
  author = {Power, Alethea and Burda, Yuri},
  booktitle = iclr,
  year = 2022,
  abstract = "Networks trained on modular arithmetic generalise long after overfitting."
}
@article{nanda2023,
  title={Progress measures for grokking via mechanistic interpretability},
  author={Neel Nanda and Lawrence Chan},
  journal={arXiv preprint},
  year={2023},
  eprint={2301.05217},
}
@misc{untitled, note = {no title here}}
"""


@pytest.fixture
def small_index(tmp_path: Path) -> OfflineIndex:
    path = tmp_path / "index.sqlite"
    build_index([FIXTURE], path)
    return OfflineIndex(path)


def test_fixture_records_are_read_with_year_from_venue() -> None:
    records = list(read_corpus(FIXTURE))
    assert len(records) == 20
    first = records[0]
    assert first.record_id == "synth01-724c" and first.year == 2022 and first.authors == []
    assert first.abstract.startswith("This synthetic record")


def test_topic_query_ranks_the_matching_paper_first(small_index: OfflineIndex) -> None:
    papers = small_index.search("federated averaging of client models", 5)
    assert papers[0].title == "SYNTHETIC PAPER 06: A STUDY OF FEDERATED AVERAGING"
    assert papers[0].paper_id == "offline:synth06-fd7f" and papers[0].source == "offline"
    assert papers[0].bibtex.startswith("@inproceedings{anon2022synthetic,")
    assert "booktitle = {ICLR 2022 (synthetic)}" in papers[0].bibtex


def test_exact_title_comes_first(small_index: OfflineIndex) -> None:
    for record in list(read_corpus(FIXTURE))[:8]:
        assert small_index.search(record.title, 3)[0].paper_id == f"offline:{record.record_id}"


def test_queries_with_fts_syntax_are_safe(small_index: OfflineIndex) -> None:
    assert match_expression('weight "decay" AND (NOT x*)') == '"weight" OR "decay" OR "not" OR "x"'
    assert small_index.search('weight "decay" AND (NOT', 3)[0].title.endswith("WEIGHT DECAY")
    assert small_index.search("!!! ???", 3) == []
    assert small_index.search("zzzunknownword", 3) == []


def test_fetch_by_id(small_index: OfflineIndex) -> None:
    paper = small_index.fetch("offline:synth07-5475")
    assert paper is not None and "NEURAL ODES" in paper.title
    assert small_index.fetch("offline:nope") is None


def test_bib_files_are_parsed_and_their_entries_rekeyed(tmp_path: Path) -> None:
    bib = tmp_path / "refs.bib"
    bib.write_text(BIB, encoding="utf-8")
    entries = parse_bib(BIB)
    assert [e.kind for e in entries] == ["inproceedings", "article", "misc"]  # @string: no entry
    build_index([tmp_path], tmp_path / "i.sqlite")
    index = OfflineIndex(tmp_path / "i.sqlite")
    assert index.count() == 2
    top = index.search("grokking modular arithmetic", 2)
    assert top[0].citation_key == "power2022grokking" and top[0].authors[0] == "Power, Alethea"
    assert top[0].bibtex.startswith("@inproceedings{power2022grokking,")
    assert top[0].abstract and "modular arithmetic" in top[0].abstract
    nanda = index.search("progress measures mechanistic interpretability", 1)[0]
    assert nanda.bibtex.startswith("@article{nanda2023progress,") and nanda.ids["arxiv"]


def test_duplicates_across_files_are_skipped(tmp_path: Path) -> None:
    copy = tmp_path / "copy.jsonl"
    copy.write_text(FIXTURE.read_text(encoding="utf-8"), encoding="utf-8")
    stats = build_index([FIXTURE, copy], tmp_path / "i.sqlite")
    assert stats.records == 20 and stats.skipped_duplicates == 20


def test_bad_corpus_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.jsonl:2"):
        build_index([bad], tmp_path / "i.sqlite")
    assert not (tmp_path / "i.sqlite").exists(), "a failed build leaves no index behind"
    with pytest.raises(CorpusError, match="no such file"):
        build_index([tmp_path / "missing.bib"], tmp_path / "i.sqlite")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CorpusError, match=r"only \.jsonl and \.bib"):
        build_index([tmp_path / "notes.txt"], tmp_path / "i.sqlite")


def test_missing_index_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="scientist literature index"):
        OfflineIndex(tmp_path / "none.sqlite").search("x", 1)


def test_a_rebuild_is_not_hidden_by_the_cache(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(literature={"sources": ["offline"]})
    only = tmp_path / "one.jsonl"
    only.write_text(json.dumps({"id": "x1", "title": "Sparse attention one"}) + "\n")
    build_index([only], index_path(settings))
    cascade = build_literature(settings)
    assert len(cascade.search("sparse attention", 5).papers) == 1
    assert cascade.search("sparse attention", 5).outcomes[0].cached
    build_index([only, FIXTURE], index_path(settings))
    again = build_literature(settings).search("sparse attention", 5)
    assert len(again.papers) == 2 and not again.outcomes[0].cached


def test_cli_index_and_search(make_settings: SettingsFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    runner = CliRunner()
    flags = ["--set", f"data_dir={data}", "--set", 'literature.sources=["offline"]']
    built = runner.invoke(app, ["literature", "index", str(FIXTURE), *flags])
    assert built.exit_code == 0, built.output
    assert "indexed 20 papers" in built.output
    found = runner.invoke(app, ["literature", "search", "contrastive learning", "--bibtex", *flags])
    assert found.exit_code == 0, found.output
    assert "CONTRASTIVE LEARNING" in found.output and "@inproceedings{" in found.output
    missing = runner.invoke(app, ["literature", "index", str(tmp_path / "nope.jsonl"), *flags])
    assert missing.exit_code == 2 and "no such file" in missing.output


@pytest.mark.skipif(
    not SHARED_ICLR.is_file(), reason=f"the shared ICLR corpus is absent ({SHARED_ICLR})"
)
def test_shared_iclr_corpus_ranks_sensibly(tmp_path: Path) -> None:
    stats = build_index([SHARED_ICLR], tmp_path / "iclr.sqlite")
    index = OfflineIndex(tmp_path / "iclr.sqlite")
    assert stats.records >= 300
    top = index.search("word sense induction distilled from BERT", 5)
    assert top[0].title == "WORD SENSE INDUCTION WITH KNOWLEDGE DISTILLATION FROM BERT"
    assert all(p.bibtex.startswith("@") and p.citation_key in p.bibtex for p in top)
    for record in list(read_corpus(SHARED_ICLR))[::35]:
        assert index.search(record.title, 5)[0].paper_id == f"offline:{record.record_id}"
    modular = index.search("grokking modular arithmetic generalization", 10)
    assert len(modular) == 10 and all(p.year == 2022 for p in modular)
