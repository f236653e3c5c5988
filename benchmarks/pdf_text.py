"""Pages per second of ``reviewer.review.pdf_text.extract_paper`` on the sample papers.

Each PDF in ``../shared/data/papers`` (relative to the repository) is extracted ``--repeats``
times (default 3) after one warm-up; the median time per file gives its pages/s, and the
total pages over the summed medians gives the overall figure. The hidden-text check
(``reviewer.review.injection.find_hidden_text``), a second pass over the same pages, is timed the
same way. Prints a table and, as the last stdout line, one JSON object; when the sample
folder is absent it prints a message and ``{"skipped": reason}``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import emit_json, fmt, make_console, median
from rich.table import Table

from reviewer.review.injection import find_hidden_text
from reviewer.review.pdf_text import extract_paper

PAPERS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "papers"


def time_call(call: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``call`` in seconds over ``repeats`` runs, after one warm-up."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return median(times) or 0.0


def measure(path: Path, repeats: int) -> dict[str, Any]:
    """Pages, characters, sections and median times of one PDF."""
    paper = extract_paper(path, max_pages=1000, max_mb=1000)
    pages = paper.pages or 0
    extract_s = time_call(lambda: extract_paper(path, max_pages=1000, max_mb=1000), repeats)
    hidden_s = time_call(lambda: find_hidden_text(path), repeats)
    return {
        "pages": pages,
        "chars": len(paper.text),
        "sections": len(paper.sections),
        "extract_s": round(extract_s, 4),
        "pages_per_s": round(pages / extract_s, 1) if extract_s else None,
        "hidden_text_s": round(hidden_s, 4),
        "hidden_pages_per_s": round(pages / hidden_s, 1) if hidden_s else None,
    }


def report(per_file: dict[str, dict[str, Any]]) -> None:
    """Print one row per file."""
    table = Table(title="extract_paper on the sample papers (median of repeats)")
    for column in (
        "file",
        "pages",
        "chars",
        "sections",
        "extract ms",
        "pages/s",
        "hidden-text ms",
        "hidden pages/s",
    ):
        table.add_column(column, justify="left" if column == "file" else "right")
    for name, row in per_file.items():
        table.add_row(
            name,
            str(row["pages"]),
            f"{row['chars']:,}",
            str(row["sections"]),
            fmt(row["extract_s"] * 1000),
            fmt(row["pages_per_s"]),
            fmt(row["hidden_text_s"] * 1000),
            fmt(row["hidden_pages_per_s"]),
        )
    make_console().print(table)


def main() -> None:
    """Time every sample PDF and print the table and the JSON figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per file.")
    parser.add_argument("--papers", type=Path, default=PAPERS, help="Folder of PDFs.")
    args = parser.parse_args()
    files = sorted(args.papers.glob("*.pdf")) if args.papers.is_dir() else []
    if not files:
        reason = f"no sample PDFs found in {args.papers}"
        print(f"skipped: {reason}")
        emit_json({"skipped": reason})
        return
    per_file = {path.name: measure(path, args.repeats) for path in files}
    report(per_file)
    pages = sum(row["pages"] for row in per_file.values())
    extract_s = sum(row["extract_s"] for row in per_file.values())
    hidden_s = sum(row["hidden_text_s"] for row in per_file.values())
    print(
        f"{len(files)} files, {pages} pages: {pages / extract_s:.1f} pages/s extraction, "
        f"{pages / hidden_s:.1f} pages/s hidden-text check"
    )
    emit_json(
        {
            "files": len(files),
            "pages": pages,
            "repeats": args.repeats,
            "pages_per_s": round(pages / extract_s, 1),
            "hidden_text_pages_per_s": round(pages / hidden_s, 1),
            "per_file": per_file,
        }
    )


if __name__ == "__main__":
    main()
