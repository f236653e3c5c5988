"""A user's .bib with @string macros and ``#``, read and written back, passes real BibTeX."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from core.literature.bibtex import bib_text, make_bibtex, parse_bib

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("pdflatex") is None or shutil.which("bibtex") is None,
        reason="no TeX toolchain: `make setup`",
    ),
]
USER_BIB = Path(__file__).resolve().parents[1] / "fixtures" / "user_macros.bib"
PAPER = r"""\documentclass{article}
\begin{document}
\cite{smith2020parts,lee2020braces,after2022,gen2020}
\bibliographystyle{plain}
\bibliography{references}
\end{document}
"""


def _run(args: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=120)


def test_written_references_compile_without_bibtex_warnings(tmp_path: Path) -> None:
    generated = make_bibtex(
        "gen2020",
        title="Deep {Nets} & 100% of_it",
        authors=["Ann Smith"],
        year=2020,
        venue="Journal of ML & Co",
        ids={"doi": "10.1/x_y"},
    )
    entries = [*parse_bib(USER_BIB.read_text(encoding="utf-8")), *parse_bib(generated)]
    (tmp_path / "references.bib").write_text(bib_text(entries), encoding="utf-8")
    (tmp_path / "paper.tex").write_text(PAPER, encoding="utf-8")
    latex = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"]
    assert _run(latex, tmp_path).returncode == 0
    bibtex = _run(["bibtex", "paper"], tmp_path)
    assert bibtex.returncode == 0 and "Warning--" not in bibtex.stdout, bibtex.stdout
    assert _run(latex, tmp_path).returncode == 0 and (tmp_path / "paper.pdf").is_file()
    bbl = (tmp_path / "paper.bbl").read_text(encoding="utf-8")
    assert (
        "Advances in Neural Information Processing Systems 33" in bbl and "Part one part two" in bbl
    )
    assert "Deep Nets \\& 100\\% of\\_it" in bbl and "Journal of ML \\& Co" in bbl
