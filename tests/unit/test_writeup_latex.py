"""Pure helpers of the write-up: cleaning model LaTeX, checks, BibTeX, tables, HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.literature.bibtex import parse_bib, unique_key, with_key
from scientist.writeup.assemble import assemble, read_template, section_at, section_lines
from scientist.writeup.checks import CheckContext, invented_numbers, run_checklist, syntax_issues
from scientist.writeup.citations import place_cite
from scientist.writeup.html import paper_html
from scientist.writeup.inputs import read_ideas
from scientist.writeup.latex import (
    clean_model_latex,
    conservative,
    escape_specials,
    keep_known_cites,
)
from scientist.writeup.results import results_tables, results_text
from scientist.writeup.sections import SECTION_NAMES, ready_sections
from scientist.writeup.writing import PROMPTS
from tests.fixtures.writeup.idea_folder import TEMPLATE, load_record


def _ctx(**kw: object) -> CheckContext:
    base: dict[str, object] = {
        "known_keys": {"a2020"},
        "allowed_numbers": [0.4386, 0.0121, 4120.0],
        "allowed_literals": {"97", "7500"},
        "figure_labels": ["fig:val-acc"],
        "table_labels": ["tab:results"],
    }
    return CheckContext(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("gain of 5% here", "gain of 5\\% here"),
        ("the data_set", "the data\\_set"),
        ("R&D", "R\\&D"),
        ("item #1", "item \\#1"),
        ("costs $5 a run", "costs \\$5 a run"),
        ("x^2 growth", "x\\^{}2 growth"),
        ("math $x_i^2$ stays", "math $x_i^2$ stays"),
        ("already 5\\% and a\\_b", "already 5\\% and a\\_b"),
        ("\\begin{tabular}{ll} a & b \\end{tabular}", "\\begin{tabular}{ll} a & b \\end{tabular}"),
    ],
)
def test_specials_are_escaped_outside_math(text: str, escaped: str) -> None:
    assert escape_specials(text) == escaped


def test_clean_removes_headings_fences_and_dangerous_commands() -> None:
    raw = (
        "```latex\n\\section{Method}\n\\label{sec:method}\nWe do **this**. \\input{/etc/passwd}"
        "\n\\def\\x{1}\\usepackage{evil}\n\\begin{figure}\\caption{c}\\end{figure}\n```"
    )
    text, notes = clean_model_latex(raw, "Method")
    assert text.startswith("We do \\textbf{this}.")
    for bad in ("\\section", "\\input", "passwd", "\\def", "\\usepackage", "figure", "```"):
        assert bad not in text
    assert "removed \\input" in notes and "removed environment figure" in notes


def test_unicode_is_made_safe_for_pdflatex() -> None:
    text, _ = clean_model_latex("accuracy ≥ 0.9 — better ± noise … 漢", "Results")
    assert "$\\geq$" in text and "---" in text and "$\\pm$" in text and "漢" not in text


def test_numbers_match_results_at_their_precision() -> None:
    ctx = _ctx()
    text = "Got 0.4386, 0.439, 0.44, 43.86%, 4120 steps, 97 classes, 2021, 3 seeds and 7500 steps."
    assert invented_numbers(text, ctx) == []
    assert invented_numbers("Got 0.4387 and 0.45 and 812 and 51%.", ctx) == [
        "0.4387",
        "0.45",
        "812",
        "51%",
    ]
    assert invented_numbers("See Figure~\\ref{fig:val-acc} and \\cite{a2020}.", ctx) == []


def test_checklist_finds_each_kind() -> None:
    ctx = _ctx()
    text = "Results \\cite{nope} are 0.99 \\ref{fig:missing} \\textbf{open"
    kinds = {i.kind for i in run_checklist("results", text, ctx)}
    assert kinds == {
        "unknown_citation",
        "invented_number",
        "missing_figure_reference",
        "latex_syntax",
    }
    assert run_checklist("method", "", ctx)[0].kind == "empty"
    assert run_checklist("results", "Fine: Figure~\\ref{fig:val-acc} shows 0.4386.", ctx) == []


def test_syntax_issues_name_the_problem() -> None:
    details = " ".join(i.detail for i in syntax_issues("\\foo{x} \\begin{itemize} } "))
    assert "\\foo" in details and "itemize" in details and "unmatched" in details


def test_unknown_cite_keys_are_dropped_and_known_kept() -> None:
    text, dropped = keep_known_cites("A \\cite{a2020,bad}. B \\citep{worse}.", {"a2020"})
    assert text == "A \\cite{a2020}. B." and dropped == ["bad", "worse"]


def test_conservative_rendering_is_plain_escaped_text() -> None:
    text = conservative("\\textbf{Bold 5% claim \\cite{x} \\undefined{y} and_z")
    assert text == "Bold 5\\% claim y and\\_z"


def test_cite_is_placed_at_the_named_sentence_else_the_first() -> None:
    text = "First sentence here. Grokking happens late. Last one."
    assert place_cite(text, "k", "grokking happens late") == (
        "First sentence here. Grokking happens late~\\cite{k}. Last one."
    )
    assert place_cite(text, "k", "unrelated words entirely").startswith(
        "First sentence here~\\cite{k}."
    )


def test_bib_keys_are_unique_and_rekeyed() -> None:
    entry = with_key("@article{old,\n title={T}, year={2020}}", unique_key("old", {"old"}))
    assert entry is not None and entry.key == "olda" and entry.text.startswith("@article{olda,")
    assert entry.field("title") == "T" and parse_bib(entry.text)[0].key == "olda"


def test_results_table_holds_the_measured_numbers() -> None:
    record = load_record()
    tables = results_tables(record)
    assert len(tables) == 1 and tables[0].label == "tab:results"
    latex = tables[0].latex
    assert "$0.4386 \\pm 0.0121$" in latex and "$4120 \\pm 85.3$" in latex
    assert "final\\_val\\_acc" in latex and "Baseline" in latex and "Run 1" in latex
    assert "Run 2" not in latex  # failed
    assert "x_plus_y" in results_text(record) and "0.9712 ± 0.0043" in results_text(record)


def test_assembly_fills_placeholders_and_maps_lines() -> None:
    template = read_template(TEMPLATE)
    assert [e.key for e in template.bib] == ["goodfellow2016deep"]
    bodies = {name: f"Body of {name}." for name in SECTION_NAMES}
    tex = assemble(template, "A & B", bodies, {"results": "% floats"}, cited=True)
    assert "\\title{A \\& B}" in tex and "\\begin{filecontents}" not in tex
    assert "\\bibliography{references}" in tex and "INTRO HERE" not in tex
    spans = section_lines(tex)
    assert set(spans) == set(SECTION_NAMES)
    line = tex.splitlines().index("Body of method.") + 1
    assert section_at(spans, line) == "method"
    uncited = assemble(template, "T", bodies, {}, cited=False)
    assert "\\bibliography" not in uncited


def test_sections_come_in_dependency_waves() -> None:
    first = {s.name for s in ready_sections(set())}
    assert first == {"related_work", "background", "method", "experimental_setup", "results"}
    assert [s.name for s in ready_sections(first)] == ["introduction"]
    assert [s.name for s in ready_sections(first | {"introduction"})] == ["conclusion"]
    assert [s.name for s in ready_sections(set(SECTION_NAMES) - {"abstract"})] == ["abstract"]


def test_html_conversion_of_a_small_paper() -> None:
    tex = (
        "\\title{T}\\begin{document}\\maketitle\\begin{abstract}Abs.\\end{abstract}"
        "\\section{Intro}\\label{sec:intro}\nText \\textbf{bold} \\cite{k} in "
        "Section~\\ref{sec:intro}"
        " with $x \\pm y$ and 5\\%.\n\n\\begin{itemize}\\item one\\end{itemize}\n"
        "\\begin{figure}\\includegraphics[width=1in]{a.png}\\caption{Cap}\\label{fig:a}"
        "\\end{figure}\\end{document}"
    )
    page = paper_html(tex, "@article{k, title={Ref Title}, author={Doe, J}, year={2020}}")
    assert "<h2>1 Intro</h2>" in page and "<b>bold</b> [1] in Section\u00a01" in page
    assert "±" in page and "5%" in page and "<li>one</li>" in page
    assert '<img src="a.png">' in page and "Figure 1: Cap" in page and "Ref Title" in page


def test_ideas_json_accepts_both_item_forms(tmp_path: Path) -> None:
    idea = {
        "Name": "n",
        "Title": "T",
        "Experiment": "E",
        "Interestingness": 5,
        "Feasibility": 5,
        "Novelty": 5,
    }
    path = tmp_path / "ideas.json"
    path.write_text(
        '{"ideas": ['
        + __import__("json").dumps(idea)
        + ', {"idea": '
        + __import__("json").dumps({**idea, "Name": "m"})
        + ', "novel": true}]}'
    )
    assert [i.Name for i in read_ideas(path)] == ["n", "m"]


PROMPT_FILES = sorted(PROMPTS.glob("*.j2"))


def test_every_section_has_an_instruction_prompt() -> None:
    assert {f"section_{n}.j2" for n in SECTION_NAMES} <= {p.name for p in PROMPT_FILES}


def test_missing_style_file_names_the_apt_package() -> None:
    from scientist.writeup.compile import CompileResult, LogError, missing_package_hint

    result = CompileResult(
        ok=False, errors=[LogError(message="LaTeX Error: File `lmodern.sty' not found.")]
    )
    assert "apt-get install -y lmodern" in missing_package_hint(result)
    assert missing_package_hint(CompileResult(ok=False)) == ""


def test_template_with_a_separate_bib_file_is_read(tmp_path: Path) -> None:
    text = TEMPLATE.read_text()
    start = text.index("\\begin{filecontents}")
    end = text.index("\\end{filecontents}") + len("\\end{filecontents}")
    (tmp_path / "template.tex").write_text(text[:start] + text[end:])
    (tmp_path / "mine.bib").write_text("@book{knuth1984tex, title={The TeXbook}, year={1984}}")
    template = read_template(tmp_path / "template.tex")
    assert [e.key for e in template.bib] == ["knuth1984tex"]
    tex = assemble(template, "T", {}, {}, cited=True)
    assert "\\bibliography{references}" in tex
