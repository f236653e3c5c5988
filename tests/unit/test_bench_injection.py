"""The injected-errors benchmark's LaTeX edits (benchmarks/_latex, _fabricate, _inject): each
variant carries exactly the error it claims, in a form the checks can be judged on."""

from __future__ import annotations

import random
import re

from benchmarks._fabricate import fabricated_title
from benchmarks._inject import abstract_numbers, make_variants
from benchmarks._judge import mentions
from benchmarks._latex import (
    KINDS,
    Injection,
    PaperSource,
    body_numbers,
    cited_keys,
    figure_count,
    is_unsupported,
    strip_comments,
    supported_values,
    table_cells,
)
from core.literature.bibtex import parse_bib

BIB = r"""@article{smith2019deep,
  title = {Deep Networks for Digits},
  author = {Smith, Jane and Lee, Kim},
  journal = {Journal of Machine Learning Research},
  year = {2019}
}

@inproceedings{power2022grokking,
  title = {Grokking: Generalization Beyond Overfitting},
  author = {Power, Alethea},
  booktitle = {ICLR},
  year = 2022
}
"""
TEX = r"""\documentclass{article}
\usepackage[numbers]{natbib}
\begin{document}
\begin{abstract}
%%% BEGIN abstract
Our model reaches 0.9712 accuracy, and 12.5\% fewer steps.
%%% END abstract
\end{abstract}
\section{Introduction}
We build on~\cite{smith2019deep,power2022grokking}. We train for 7500 steps.
\section{Results}
\begin{table}[h]
\begin{tabular}{@{}lrr@{}}%
\toprule%
Run&val\_acc&steps\\%
\midrule%
Baseline&$0.4386 \pm 0.0121$&$4120 \pm 85.3$\\%
Run 1&$0.9712 \pm 0.0043$&$1210 \pm 40.2$\\\bottomrule%
\end{tabular}
\caption{Results.}
\end{table}
\begin{figure}\includegraphics{a.png}\caption{A.}\end{figure}
\begin{figure}\includegraphics{b.png}\caption{B.}\end{figure}
\section{Conclusion}
Done.
\bibliographystyle{plainnat}
\bibliography{references}
\end{document}
"""
COUNTS: dict[str, int] = {kind: 2 for kind in KINDS}


def paper() -> PaperSource:
    return PaperSource("run/idea", "/nowhere", TEX, "references.bib", BIB)


def test_comments_go_but_an_escaped_percent_stays() -> None:
    assert strip_comments(r"43.9\% fewer % a comment") == r"43.9\% fewer "
    assert strip_comments("a\\\\% after a line break") == "a\\\\"


def test_table_cells_read_values_columns_and_rows() -> None:
    cells = table_cells(TEX)
    assert [c.value for c in cells] == [0.4386, 0.0121, 4120, 85.3, 0.9712, 0.0043, 1210, 40.2]
    assert cells[0].column == "val_acc" and cells[0].row == "Baseline" and cells[0].decimals == 4
    assert cells[6].column == "steps" and cells[6].row == "Run 1"


def test_reading_counts_figures_citations_and_abstract_numbers() -> None:
    assert figure_count(TEX) == 2
    assert cited_keys(TEX) == ["smith2019deep", "power2022grokking"]
    found = abstract_numbers(TEX, table_cells(TEX))
    assert [(n.literal, n.percent) for n in found] == [("0.9712", False)]  # 12.5% is in none


def test_a_number_near_a_table_value_or_difference_is_supported() -> None:
    supported = supported_values(table_cells(TEX), body_numbers(TEX))
    assert not is_unsupported(0.9712, 4, supported.values)
    assert not is_unsupported(0.5326, 4, supported.values)  # 0.9712 - 0.4386
    assert not is_unsupported(53.26, 2, supported.values)  # the same, as a percentage
    assert not is_unsupported(121.4, 1, supported.changes)  # (0.9712 - 0.4386) / 0.4386
    assert is_unsupported(0.7031, 4, supported.values)


def test_variants_carry_exactly_their_error() -> None:
    plan = make_variants(paper(), {k: 3 for k in KINDS}, fabricated=2, seed=7, this_year=2026)
    by_kind = {k: [v for v in plan.variants if v.kind == k] for k in ("clean", "fabricated")}
    assert plan.skipped == {} and len(plan.variants) == 1 + 4 * 3
    assert by_kind["clean"][0].tex == TEX and by_kind["clean"][0].bib == BIB
    for variant in plan.variants:
        injection = variant.injection
        if variant.kind == "fabricated":
            added = parse_bib(variant.bib)[2:]
            assert [e.field("title") for e in added] == injection.titles
            assert all(variant.tex.count("{" + e.key + "}") == 1 for e in added)
        elif variant.kind == "wrong_year":
            assert injection.old_year is not None and injection.new_year is not None
            assert 2 <= abs(injection.new_year - injection.old_year) <= 5
            assert injection.new_year <= 2026 and variant.tex == TEX
            changed = [
                (a.field("year"), b.field("year"))
                for a, b in zip(parse_bib(BIB), parse_bib(variant.bib), strict=True)
                if a.text != b.text
            ]
            assert changed == [(str(injection.old_year), str(injection.new_year))]
        elif variant.kind == "number":
            assert injection.original == "0.9712" and injection.literal not in TEX
            abstract = variant.tex.split(r"\end{abstract}")[0]
            assert injection.literal in abstract and "0.9712" not in abstract
            supported = supported_values(table_cells(TEX), body_numbers(TEX))
            assert is_unsupported(float(injection.literal), 4, supported.changes)
        elif variant.kind == "missing_figure":
            assert injection.figure is not None and injection.figure > 2
            assert f"Figure~{injection.figure}" in variant.tex


def test_variants_are_the_same_for_the_same_seed() -> None:
    first = make_variants(paper(), COUNTS, fabricated=2, seed=3, this_year=2026)
    again = make_variants(paper(), COUNTS, fabricated=2, seed=3, this_year=2026)
    other = make_variants(paper(), COUNTS, fabricated=2, seed=4, this_year=2026)
    assert [v.tex for v in first.variants] == [v.tex for v in again.variants]
    assert [v.bib for v in first.variants] != [v.bib for v in other.variants]


def test_fabricated_titles_are_varied_title_case_phrases() -> None:
    rng = random.Random(1)
    titles = [fabricated_title(rng) for _ in range(50)]
    assert len(set(titles)) >= 45
    assert all(re.fullmatch(r"[A-Z][\w:,' -]+", t) for t in titles)


def test_a_paper_without_a_table_gets_no_number_variant() -> None:
    tex = re.sub(r"\\begin\{table\}.*?\\end\{table\}", "", TEX, flags=re.S)
    source = PaperSource("run/idea", "/nowhere", tex, "references.bib", BIB)
    plan = make_variants(source, COUNTS, fabricated=1, seed=1, this_year=2026)
    assert not [v for v in plan.variants if v.kind == "number"]
    assert "no results table" in plan.skipped["number"]


def test_a_review_mentions_an_error_only_by_its_own_words() -> None:
    fabricated = Injection(kind="fabricated", titles=["Sparse Adapters for Tabular Prediction"])
    year = Injection(kind="wrong_year", authors=["Srivastava"], old_year=2014, new_year=2017)
    number = Injection(kind="number", literal="0.5874")
    figure = Injection(kind="missing_figure", figure=8)
    assert mentions(
        ["The paper cites sparse adapters for tabular prediction, unknown."], fabricated
    )
    assert mentions(["Reference 3 was not found in any index."], fabricated)
    assert not mentions(["The related work is thin."], fabricated)
    assert mentions(["Srivastava et al. is dated 2017 here."], year)
    assert not mentions(["Since 2017 many works appeared.", "Srivastava is cited."], year)
    assert mentions(["The abstract claims 0.5874, which no table shows."], number)
    assert not mentions(["Accuracy 0.58745 is high."], number)
    assert mentions(["Figure 8 is referenced but absent."], figure)
    assert not mentions(["Figure 18 is fine."], figure)
