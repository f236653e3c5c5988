"""Small papers for the reviewer's checks: LaTeX written in a test, compiled with the real
pdflatex, read back with the real pypdf extraction the reviewer uses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reviewer.review.form import PaperText
from reviewer.review.pdf_text import extract_paper

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[margin=1in]{geometry}
\usepackage{graphicx}
\begin{document}
"""


def needs_pdflatex() -> None:
    """Skip the calling test with a reason when pdflatex is not installed."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base)")


def compile_latex(body: str, folder: Path, name: str = "paper") -> Path:
    """``body`` (everything between \\begin{document} and \\end{document}) as a PDF.
    Runs pdflatex twice so that \\ref and \\cite resolve where they can; a \\ref to a
    label that does not exist prints '??', as in a real paper."""
    needs_pdflatex()
    folder.mkdir(parents=True, exist_ok=True)
    tex = folder / f"{name}.tex"
    tex.write_text(PREAMBLE + body + "\n\\end{document}\n", encoding="utf-8")
    for _ in range(2):
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"pdflatex failed on {tex}:\n{done.stdout[-2000:]}")
    return folder / f"{name}.pdf"


def read_paper(pdf: Path) -> PaperText:
    """The PDF as the reviewer reads it (pypdf, cleaned, with page texts)."""
    return extract_paper(pdf, max_pages=50, max_mb=30.0)


def paper_from_latex(body: str, folder: Path, name: str = "paper") -> PaperText:
    """Compile ``body`` and read it back."""
    return read_paper(compile_latex(body, folder, name))
