"""Reading a user's .bib (macros, ``#``, braces, comments, broken entries) and writing entries."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.literature.bibtex import bib_text, make_bibtex, parse_bib, unique_key, with_key
from core.literature.corpus import read_corpus
from core.literature.offline import OfflineIndex, build_index
from scientist.writeup.assemble import read_template

NEURIPS = "Advances in Neural Information Processing Systems"
USER_BIB_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "user_macros.bib"
USER_BIB = USER_BIB_PATH.read_text(encoding="utf-8")


def test_macros_and_concatenation_are_resolved() -> None:
    entries = {e.key: e for e in parse_bib(USER_BIB)}
    assert list(entries) == ["smith2020parts", "lee2020braces", "after2022"]
    parts, braces = entries["smith2020parts"], entries["lee2020braces"]
    assert parts.field("title") == "Part one part two"
    assert parts.field("booktitle") == NEURIPS
    assert braces.field("booktitle") == f"{NEURIPS} 33", "macros nest and match in any case"
    assert parts.field("month") == "jan" and parts.field("year") == "2020"


def test_braces_in_titles_are_kept_in_values_and_dropped_by_field() -> None:
    entry = {e.key: e for e in parse_bib(USER_BIB)}["lee2020braces"]
    assert entry.values["title"] == "The {BERT} Model: {Deep} Bidirectional   Transformers"
    assert entry.field("title") == "The BERT Model: Deep Bidirectional Transformers"


def test_comments_are_not_entries() -> None:
    assert "commented" not in {e.key for e in parse_bib(USER_BIB)}
    assert parse_bib("@comment{nothing here}\n% nor here\n") == []


def test_malformed_entry_is_skipped_with_a_warning_naming_the_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="core.literature.bibtex"):
        keys = [e.key for e in parse_bib(USER_BIB, source="refs.bib")]
    assert "broken2021" not in keys and "after2022" in keys
    broken_line = USER_BIB.splitlines().index("@article{broken2021,") + 1
    warnings = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith(f"refs.bib: line {broken_line}: skipped a malformed entry") for m in warnings
    ), warnings


def test_text_that_looks_like_an_entry_but_is_not_read_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="core.literature.bibtex"):
        entries = parse_bib("@article(paren, title = {Parentheses})\n", source="p.bib")
    assert entries == []
    assert [r.getMessage() for r in caplog.records] == [
        "p.bib: line 1: text that looks like an entry was not read (write @type{key, …})"
    ]


def test_undefined_macro_is_kept_by_name_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="core.literature.bibtex"):
        (entry,) = parse_bib("@misc{k, title = {T}, month = feb, series = nosuch}")
    assert entry.field("series") == "nosuch" and entry.field("month") == "feb"
    assert [r.getMessage() for r in caplog.records] == [
        "line 1: k: @string 'nosuch' is not defined"
    ]


def test_resolved_entries_stand_alone_and_plain_ones_stay_as_written() -> None:
    entries = {e.key: e for e in parse_bib(USER_BIB)}
    parts = entries["smith2020parts"]
    assert parts.text == (
        "@inproceedings{smith2020parts,\n"
        "  title = {Part one part two},\n"
        "  author = {Smith, Ann and Li, Bo},\n"
        f"  booktitle = {{{NEURIPS}}},\n"
        "  month = jan,\n"
        "  year = {2020}\n"
        "}"
    )
    (again,) = parse_bib(parts.text)  # no @string lines needed any more
    assert again.values == parts.values
    after = entries["after2022"]
    assert after.text == USER_BIB[USER_BIB.index("@article{after2022") :].strip()


def test_duplicate_field_keeps_the_first_value(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="core.literature.bibtex"):
        (entry,) = parse_bib("@misc{d, title = {First}, title = {Second}}")
    assert entry.field("title") == "First"
    assert "title given twice" in caplog.text


def test_rekeying_changes_only_the_key() -> None:
    text = "@Article{Old2020,\n  title = {T},\n  year = {2020}\n}"
    entry = with_key(text, unique_key("Old2020", {"Old2020"}))
    assert entry is not None and entry.key == "Old2020a"
    assert entry.text == text.replace("Old2020,", "Old2020a,")
    assert with_key("% no entry here", "k") is None
    assert bib_text([entry, entry]) == f"{entry.text}\n\n{entry.text}\n"


def test_generated_entry_layout_and_escaping() -> None:
    text = make_bibtex(
        "smith2020deep",
        title="Deep {Nets} & 100% of_it",
        authors=["Ann Smith"],
        year=2020,
        venue="NeurIPS",
        ids={"arxiv": "2001.1"},
    )
    assert text == (
        "@inproceedings{smith2020deep,\n"
        "  title = {{Deep Nets \\& 100\\% of\\_it}},\n"
        "  author = {Ann Smith},\n"
        "  year = {2020},\n"
        "  booktitle = {NeurIPS},\n"
        "  eprint = {2001.1},\n"
        "  archiveprefix = {arXiv}\n"
        "}"
    )
    (entry,) = parse_bib(text)
    assert entry.field("title") == "Deep Nets \\& 100\\% of\\_it"


def test_corpus_bib_records_use_resolved_values(tmp_path: Path) -> None:
    records = {r.record_id: r for r in read_corpus(USER_BIB_PATH)}
    assert list(records) == ["smith2020parts", "lee2020braces", "after2022"]
    parts = records["smith2020parts"]
    assert parts.title == "Part one part two" and parts.venue == NEURIPS
    assert parts.authors == ["Smith, Ann", "Li, Bo"] and parts.year == 2020
    build_index([USER_BIB_PATH], tmp_path / "index.sqlite")
    (paper,) = OfflineIndex(tmp_path / "index.sqlite").search("part one part two", 1)
    assert paper.citation_key == "smith2020part"
    assert paper.bibtex.startswith("@inproceedings{smith2020part,\n")
    assert f"booktitle = {{{NEURIPS}}}" in paper.bibtex and "neurips," not in paper.bibtex


def test_template_bib_with_macros_gives_standalone_references(tmp_path: Path) -> None:
    template = tmp_path / "template.tex"
    template.write_text("\\documentclass{article}\n\\begin{document}\n\\end{document}\n")
    (tmp_path / "refs.bib").write_text(USER_BIB, encoding="utf-8")
    entries = {e.key: e for e in read_template(template).bib}
    assert set(entries) == {"smith2020parts", "lee2020braces", "after2022"}
    written = bib_text(list(entries.values()))
    assert "@string" not in written.lower() and f"{{{NEURIPS} 33}}" in written
