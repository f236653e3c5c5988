"""Compile time of an 8-page paper with latexmk (pdflatex + bibtex, all passes).

The paper is built by the write-up stage's own code, without a model: the test template
(tests/fixtures/latex_template), deterministic prose per section, the results table from
the fixture experiments.json, two matplotlib figures and 12 cited BibTeX entries. Its
length is tuned to 8 pages before the references. Timed, each ``--repeats`` times (median):
a cold build in a clean folder (latexmk runs pdflatex, bibtex, pdflatex x2), a rebuild
after one section changed, latexmk with nothing changed, chktex, and the page count (pypdf).
Prints a table and, as the last stdout line, one JSON object; without latexmk it prints
``{"skipped": reason}``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.table import Table

from benchmarks._common import emit_json, fmt, make_console, median, verdict
from core.literature.bibtex import bib_text, parse_bib
from scientist.writeup.assemble import BIB_NAME, TEX_NAME, assemble, read_template
from scientist.writeup.compile import LatexmkCompiler, count_pages, missing_tools
from scientist.writeup.results import collect_figures, figure_latex, results_tables
from scientist.writeup.sections import SECTIONS
from tests.fixtures.writeup.idea_folder import TEMPLATE, draw_figures, load_record, template_text

TARGET_S = 10.0  # a cold 8-page build should take well under a fix round's model call
SENTENCES = (
    "Grokking describes networks that generalise long after they have memorised the data.",
    "We scale the learning rate of the embedding layer and keep every other layer unchanged.",
    "Validation accuracy is measured every 100 steps on a held-out half of all pairs.",
    "The baseline uses a single learning rate for all layers, as in the original setup.",
    "Each configuration is trained with three seeds and we report the standard error.",
    "The effect is larger on division than on addition, which is the harder operation.",
)
PARAGRAPHS = {
    "abstract": 1,
    "introduction": 7,
    "related_work": 6,
    "background": 5,
    "method": 7,
    "experimental_setup": 6,
    "results": 5,
    "conclusion": 4,
}


def bibliography(count: int) -> str:
    """``count`` plausible BibTeX entries."""
    return "\n\n".join(
        f"@article{{ref{i},\n  title={{A study of generalisation, part {i}}},\n"
        f"  author={{Author, A. and Writer, B.}},\n  journal={{Journal of Benchmarks}},\n"
        f"  year={{{2010 + i}}}\n}}"
        for i in range(count)
    )


def body(name: str, cites: list[str]) -> str:
    """Deterministic prose for one section, citing ``cites`` along the way."""
    paragraphs = []
    for p in range(PARAGRAPHS[name]):
        text = " ".join(SENTENCES[(p + i) % len(SENTENCES)] for i in range(7))
        if cites and name != "abstract":
            text += f" Related results appear in prior work~\\cite{{{cites[p % len(cites)]}}}."
        paragraphs.append(text)
    if name == "results":
        paragraphs.append("Table~\\ref{tab:results} and Figure~\\ref{fig:val-acc} show it.")
    return "\n\n".join(paragraphs)


def build_paper(folder: Path) -> None:
    """paper.tex, references.bib and the figures in ``folder`` (figures drawn beside it)."""
    idea = folder.parent / "idea"
    idea.mkdir(exist_ok=True)
    draw_figures(idea)
    template = idea / "template.tex"
    template.write_text(template_text(TEMPLATE), encoding="utf-8")
    record = load_record()
    figures = collect_figures(record, idea, folder)
    floats = [t.latex for t in results_tables(record)] + [figure_latex(f) for f in figures]
    entries = parse_bib(bibliography(12))
    keys = [e.key for e in entries]
    bodies = {spec.name: body(spec.name, keys) for spec in SECTIONS}
    tex = assemble(
        read_template(template),
        "Layer-wise Learning Rates Speed Up Grokking",
        bodies,
        {"results": "\n\n".join(floats)},
        cited=True,
    )
    (folder / TEX_NAME).write_text(tex, encoding="utf-8")
    (folder / BIB_NAME).write_text(bib_text(entries), encoding="utf-8")


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds and result of one call."""
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def one_round(compiler: LatexmkCompiler, timeout: float) -> dict[str, Any]:
    """A clean build, a one-section rebuild, a no-op run, chktex and the page count."""
    with tempfile.TemporaryDirectory(prefix="bench-latex-") as tmp:
        folder = Path(tmp) / "paper"
        folder.mkdir()
        build_paper(folder)
        cold_s, cold = timed(lambda: compiler.compile(folder, TEX_NAME, timeout))
        if not cold.ok:
            raise SystemExit(f"the benchmark paper did not compile: {cold.errors}")
        tex = (folder / TEX_NAME).read_text(encoding="utf-8")
        (folder / TEX_NAME).write_text(
            tex.replace("%%% END method", "One more sentence.\n%%% END method"), encoding="utf-8"
        )
        rebuild_s, _ = timed(lambda: compiler.compile(folder, TEX_NAME, timeout))
        noop_s, _ = timed(lambda: compiler.compile(folder, TEX_NAME, timeout))
        lint_s, warnings = timed(lambda: compiler.lint(folder, TEX_NAME))
        pages_s, (pages, content) = timed(lambda: count_pages(folder / "paper.pdf"))
    return {
        "cold_s": cold_s,
        "rebuild_s": rebuild_s,
        "noop_s": noop_s,
        "chktex_s": lint_s,
        "pages_s": pages_s,
        "pages": pages,
        "content_pages": content,
        "chktex_warnings": len(warnings),
    }


def main() -> None:
    """Time the builds and print the table and the JSON figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Timed rounds (median).")
    parser.add_argument("--timeout", type=float, default=120.0, help="latexmk timeout, s.")
    args = parser.parse_args()
    missing = missing_tools(("latexmk", "pdflatex", "bibtex"))
    if missing:
        reason = f"{', '.join(missing)} not installed"
        print(f"skipped: {reason}")
        emit_json({"skipped": reason})
        return
    compiler = LatexmkCompiler()
    rounds = [one_round(compiler, args.timeout) for _ in range(args.repeats)]
    figures = {
        key: median([r[key] for r in rounds])
        for key in ("cold_s", "rebuild_s", "noop_s", "chktex_s", "pages_s")
    }
    table = Table(
        title=f"latexmk on an {rounds[0]['content_pages']}-page paper "
        f"({rounds[0]['pages']} pages with references), median of {args.repeats}"
    )
    table.add_column("step")
    table.add_column("seconds", justify="right")
    labels = {
        "cold_s": "clean build (pdflatex, bibtex, pdflatex x2)",
        "rebuild_s": "rebuild after one section changed",
        "noop_s": "latexmk, nothing changed",
        "chktex_s": "chktex",
        "pages_s": "page count (pypdf)",
    }
    for key, label in labels.items():
        table.add_row(label, fmt(figures[key], 2))
    make_console().print(table)
    cold = figures["cold_s"]
    print(
        f"clean build {fmt(cold, 2)} s (target < {TARGET_S:g} s: "
        f"{verdict(cold, TARGET_S, higher_is_better=False)})"
    )
    emit_json(
        {
            "repeats": args.repeats,
            "pages": rounds[0]["pages"],
            "content_pages": rounds[0]["content_pages"],
            **{k: round(v, 3) if v is not None else None for k, v in figures.items()},
            "chktex_warnings": rounds[0]["chktex_warnings"],
            "target_cold_s": TARGET_S,
            "verdict": verdict(cold, TARGET_S, higher_is_better=False),
            "latexmk": shutil.which("latexmk"),
        }
    )


if __name__ == "__main__":
    main()
