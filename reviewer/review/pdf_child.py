"""Read a PDF for the review graph in a bounded child process, never in the reviewer's own.

``read_pdf`` runs ``python -m reviewer.review.pdf_child`` through the rlimit launcher with an
address-space and CPU-time bound and a wall-clock timeout (``review.pdf_timeout_s``,
``review.pdf_memory_mb``): the child extracts the text (``pdf_text.extract_paper``, which
bounds pages and file size) and looks for hidden text (``injection.find_hidden_text``), and
answers with one JSON line. The reviewer's typed errors come back as themselves; a child
that passes its bounds or dies is ``PdfTooCostlyError``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel, ValidationError

from core.isolation import CHILD_ENV, exit_out_of_memory, launcher_command, parser_limits
from reviewer.review.errors import PdfTooCostlyError, ReviewInputError, input_error_named
from reviewer.review.form import InjectionFlag, PaperText
from reviewer.review.injection import find_hidden_text
from reviewer.review.pdf_text import extract_paper


class PdfReading(BaseModel):
    """What the child found: the paper's text and its hidden-text flags."""

    paper: PaperText
    flags: list[InjectionFlag]


def read_pdf(
    path: Path, *, max_pages: int, max_mb: float, timeout_s: float, memory_mb: int
) -> PdfReading:
    """The paper's text and hidden-text flags, read in a bounded child."""
    limits = parser_limits(memory_mb, math.ceil(timeout_s))
    child = [sys.executable, "-m", "reviewer.review.pdf_child", str(path.resolve())]
    child += [str(max_pages), str(max_mb)]
    with tempfile.TemporaryDirectory(prefix="pdf-child-") as scratch:
        try:
            done = subprocess.run(
                launcher_command(child, limits),
                cwd=scratch,
                env=CHILD_ENV,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PdfTooCostlyError(path, f"reading it took over {timeout_s:g} s") from exc
    lines = done.stdout.decode("utf-8", errors="replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        stopped = f"the reader stopped (exit {done.returncode}) within {memory_mb} MB"
        raise PdfTooCostlyError(path, stopped)
    if "error" in answer:
        raise input_error_named(str(answer["error"]))(path, str(answer.get("detail", "")))
    try:
        return PdfReading.model_validate(answer)
    except ValidationError as exc:
        raise PdfTooCostlyError(path, f"the reader's answer did not validate: {exc}") from exc


def main(argv: list[str]) -> None:
    """The child: ``PATH MAX_PAGES MAX_MB``; one JSON line on stdout."""
    path, max_pages, max_mb = Path(argv[0]), int(argv[1]), float(argv[2])
    try:
        paper = extract_paper(path, max_pages=max_pages, max_mb=max_mb)
        reading = PdfReading(paper=paper, flags=find_hidden_text(path))
    except ReviewInputError as exc:
        print(json.dumps({"error": type(exc).__name__, "detail": exc.detail}))
        return
    except MemoryError:
        exit_out_of_memory()
    print(reading.model_dump_json())


if __name__ == "__main__":
    main(sys.argv[1:])
