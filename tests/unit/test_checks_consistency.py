"""The reviewer's internal-consistency checks on small papers compiled with real pdflatex and
read back with the real pypdf extraction: numbers the text claims that no table supports,
references to figures, tables, sections, equations and appendices that do not exist, and
LaTeX's "??". Each injected error is found with its page; each clean twin yields nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewer.checks.crossrefs import cross_ref_findings
from reviewer.checks.models import Finding
from reviewer.checks.numbers import number_findings
from reviewer.checks.tables import parse_row
from tests.checks_support import paper_from_latex

TITLE = r"\begin{center}{\Large\bfseries Gated Adapters for Small Classifiers}\end{center}"
ABSTRACT = (
    "Gated adapters reach a test accuracy of 91.2\\% on the digits task, 4.2 percentage "
    "points above the baseline, and cut the test loss by 26.9\\%."
)
INTRODUCTION = (
    "Small classifiers are cheap but brittle. We show that gated adapters improve accuracy "
    "from 0.870 to 0.912, a relative improvement of 4.8\\%, and train 1.25x faster than the "
    "baseline. Section~\\ref{sec:results} reports the results of 2024."
)
METHOD = r"""
We train for 20 epochs with a learning rate of 0.001, a dropout of 0.1 and a batch size of
64, over 3 seeds, as Smith et al.\ (2020) did. The loss is
\begin{equation} L = -\sum_i y_i \log p_i \label{eq:loss} \end{equation}
and Equation~(\ref{eq:loss}) is minimised with Adam as in Section 7 of [4].
"""
TABLE = r"""
\begin{table}[h]\centering
\caption{Test accuracy, test loss and training time per method.}\label{tab:main}
\begin{tabular}{lrrr}
Method & Accuracy & Loss & Time (s) \\
Baseline & 0.870 & 0.412 & 12.5 \\
Gated adapters & 0.912 & 0.301 & 10.0 \\
\end{tabular}
\end{table}
"""
RESULTS = (
    "Table~\\ref{tab:main} lists the results. Gated adapters reach 0.912, the loss falls "
    "from 0.412 to 0.301, and training takes 10.0 s instead of 12.5 s."
)
FIGURES = r"""
\begin{figure}[h]\centering\fbox{\rule{0pt}{1.5cm}\rule{3cm}{0pt}}
\caption{Training curves.}\label{fig:curves}\end{figure}
\begin{figure}[h]\centering\fbox{\rule{0pt}{1.5cm}\rule{3cm}{0pt}}
\caption{Gate values per layer.}\label{fig:gates}\end{figure}
"""


def paper(
    *,
    abstract: str = ABSTRACT,
    results: str = RESULTS,
    extra: str = "",
    table: str = TABLE,
    page_break: bool = False,
) -> str:
    """The body of a small paper; the keywords change one part of it."""
    return "\n".join(
        [
            TITLE,
            rf"\begin{{abstract}}{abstract}\end{{abstract}}",
            rf"\section{{Introduction}}{INTRODUCTION}",
            rf"\section{{Method}}{METHOD}",
            r"\newpage" if page_break else "",
            rf"\section{{Results}}\label{{sec:results}}{results}",
            table,
            FIGURES,
            extra,
            r"\section{Conclusion}Gated adapters help small classifiers.",
        ]
    )


def pages_of(body: str, folder: Path) -> list[str]:
    """The page texts of ``body`` compiled in ``folder``."""
    return paper_from_latex(body, folder).page_texts


def kinds(findings: list[Finding]) -> list[tuple[str, str, int | None]]:
    return [(f.check, f.kind, f.page) for f in findings]


def test_the_clean_paper_yields_no_finding(tmp_path: Path) -> None:
    pages = pages_of(paper(), tmp_path)

    assert number_findings(pages) == []
    assert cross_ref_findings(pages) == []


def test_an_abstract_number_no_table_supports_is_found_on_its_page(tmp_path: Path) -> None:
    changed = ABSTRACT.replace("26.9", "31.5")
    pages = pages_of(paper(abstract=changed), tmp_path)

    findings = number_findings(pages)

    assert kinds(findings) == [("numbers", "unsupported_number", 1)]
    assert "31.5" in findings[0].message
    assert "cut the test loss by 31.5%" in findings[0].evidence
    assert findings[0].message.startswith("The abstract")


@pytest.mark.parametrize(
    ("claim", "supported"),
    [
        ("improves accuracy by 4.8\\% over the baseline", True),  # relative change
        ("is 4.2 percentage points more accurate than the baseline", True),
        ("improves accuracy by 4.2\\%", True),  # percentage points, stated as %
        ("reduces the loss by 26.9\\%", True),  # (0.412 - 0.301) / 0.412
        ("raises the loss of the baseline by 36.9\\%", True),  # (0.412 - 0.301) / 0.301
        ("trains 1.25x faster", True),  # 12.5 / 10.0
        ("reaches 91.2\\% accuracy", True),  # 0.912 as a percentage
        ("reduces the loss by 36.9\\%", False),  # a reduction is relative to the larger
        ("improves accuracy by 6.3\\%", False),
        ("trains 1.6x faster", False),
        ("reaches 0.934 accuracy", False),
    ],
)
def test_relative_changes_points_and_factors_are_supported(
    tmp_path: Path, claim: str, supported: bool
) -> None:
    pages = pages_of(paper(results=f"{RESULTS} Our method {claim}."), tmp_path)

    findings = number_findings(pages)

    assert (findings == []) is supported, findings


def test_a_finding_on_the_second_page_says_page_two(tmp_path: Path) -> None:
    wrong = RESULTS.replace("Gated adapters reach 0.912", "Gated adapters reach 0.934")
    clean = pages_of(paper(page_break=True), tmp_path / "clean")
    pages = pages_of(paper(results=wrong, page_break=True), tmp_path / "wrong")

    findings = number_findings(pages)

    assert number_findings(clean) == []
    assert len(pages) >= 2
    assert kinds(findings) == [("numbers", "unsupported_number", 2)]
    assert "0.934" in findings[0].evidence
    assert findings[0].message.startswith("Section 3 (Results)")


def test_a_paper_without_a_table_gets_no_number_finding(tmp_path: Path) -> None:
    changed = ABSTRACT.replace("26.9", "31.5")
    pages = pages_of(paper(abstract=changed, table=""), tmp_path)

    assert number_findings(pages) == []


def test_a_reference_to_a_missing_figure_is_found_with_its_page(tmp_path: Path) -> None:
    clean = pages_of(paper(extra="Figure 2 shows the gates."), tmp_path / "clean")
    extra = r"\newpage Figure 5 shows the gates per layer."
    pages = pages_of(paper(extra=extra), tmp_path / "missing")

    findings = cross_ref_findings(pages)

    assert cross_ref_findings(clean) == []
    assert kinds(findings) == [("cross_refs", "missing_target", 2)]
    assert "Figure 5" in findings[0].message
    assert "up to 2" in findings[0].message
    assert "Figure 5 shows the gates" in findings[0].evidence


def test_a_ref_to_a_missing_label_prints_question_marks_that_are_found(tmp_path: Path) -> None:
    extra = r"Figure~\ref{fig:nowhere} shows more, and so does Section~\ref{sec:nowhere}."
    pages = pages_of(paper(extra=extra), tmp_path)

    findings = cross_ref_findings(pages)

    assert kinds(findings) == [("cross_refs", "unresolved_reference", 1)] * 2
    assert "Figure ??" in findings[0].message
    assert "Section ??" in findings[1].message
    assert "??" in findings[0].evidence


APPENDICES = r"""
\begin{thebibliography}{9}
\bibitem{smith} John Smith. Adapters. In Proceedings of a Workshop, 2020.
\end{thebibliography}
\appendix
\section{Extra Results}More results.
\section{Proofs}The proofs.
"""


def test_missing_tables_sections_equations_and_appendices_are_found(tmp_path: Path) -> None:
    clean = "See Table 1, Section 4, Eq. (1) and Appendix B."
    wrong = "See Table 4, Section 9, Eq. (12) and Appendix C."
    clean_pages = pages_of(paper(extra=clean) + APPENDICES, tmp_path / "clean")
    pages = pages_of(paper(extra=wrong) + APPENDICES, tmp_path / "wrong")

    findings = cross_ref_findings(pages)

    assert cross_ref_findings(clean_pages) == []
    messages = " ".join(f.message for f in findings)
    assert {f.kind for f in findings} == {"missing_target"}
    for target in ("'Table 4'", "'Section 9'", "'Eq. 12'", "'Appendix C'"):
        assert target in messages
    assert len(findings) == 4


def test_kinds_without_any_caption_or_numbering_are_not_checked(tmp_path: Path) -> None:
    extra = "Algorithm 3 and Figure 7 are in the supplement."
    pages = pages_of(paper(extra=extra).replace(FIGURES, ""), tmp_path)

    assert cross_ref_findings(pages) == []


def test_numbers_that_are_not_results_are_left_alone() -> None:
    pages = [
        "Abstract\nWe study adapters (version 2.1) since 2019.\n1 Introduction\n"
        "Prior work reports 0.95 [3]. Steps to reach 99% accuracy are in Section 4.2.\n"
        "2 Method\nWe use a learning rate of 0.003 and a weight decay of 0.05.\n"
        "3 Results\nTable 1: Accuracy.\nMethod Accuracy\nBaseline 0.81\nOurs 0.85\n"
        "Ours reaches 0.85 on the test set. It stays over 0.8 on every seed (p < 0.01)\n"
        "with a 5×5 grid and 0.1–0.3 noise. Ours with a learning rate of 0.003 does too.\n"
        "Figure 2 shows 0.77 at the start of training.\n"
    ]

    assert number_findings(pages) == []
    changed = number_findings([pages[0].replace("reaches 0.85", "reaches 0.88")])
    assert [f.evidence for f in changed] == ["Ours reaches 0.88 on the test set."]


def test_table_rows_are_read_with_spreads_and_missing_cells() -> None:
    row = parse_row("Combined (15%) 0.9145 ± 0.0051 399.12 ± 2.98 —")

    assert row is not None
    assert row.label == "Combined (15%)"
    assert [cell.value if cell else None for cell in row.cells] == [0.9145, 399.12, None]
    assert [spread.value for spread in row.spreads] == [0.0051, 2.98]
    assert parse_row("the loss falls from 0.412 to 0.301") is None


SECTIONS = (
    "Abstract\nA short paper.\n1 Introduction\nText.\n2 Method\nText.\n3 Results\n"
    "Figure 1: Curves.\nTable 1: Scores.\nMethod Score\nBaseline 0.81\nOurs 0.85\n"
    "4 Conclusion\nText.\n"
)


def test_other_papers_figures_and_sections_are_not_checked() -> None:
    others = (
        "As in (Smith et al., 2020, Section 7) and Lee (2019, Appendix D), their Figure 9 "
        "and Table 5 of [3] show it; Eq. (57) in Duncan et al. (2019) bounds it.\n"
    )
    assert cross_ref_findings([SECTIONS + others]) == []
    missing = cross_ref_findings([SECTIONS + others + "Our Figure 9 shows it.\n"])
    assert [f.message.split("'")[1] for f in missing] == ["Figure 9"]


def test_appendix_letters_count_only_when_they_are_clearly_appendices() -> None:
    references = "References\n[1] J. Smith. Graphs. 2020.\nA Survey of Graph Learning\n"
    mention = "Details are in Appendix C.\n"
    # One title-case line after the references may be a reference, not appendix A.
    assert cross_ref_findings([SECTIONS + mention + references]) == []
    appendices = references + "A Proof of Lemma 1\nText.\nB Proof of Theorem 2\nText.\n"
    findings = cross_ref_findings([SECTIONS + mention + appendices])
    assert [f.message for f in findings] == [
        "'Appendix C' refers to an appendix the paper does not have (the appendices go up to B)."
    ]


def test_a_page_without_headings_is_checked_not_crashed() -> None:
    """A paper whose text has no numbered heading (a one-page note, a poor extraction)
    still gets its cross-references checked."""
    [finding] = cross_ref_findings(["See Figure ?? here."])
    assert finding.kind == "unresolved_reference" and finding.page == 1
    assert number_findings(["See Figure ?? here."]) == []
