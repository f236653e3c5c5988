"""The LaTeX toolchain behind a seam: preflight, latexmk under a timeout, chktex, page count.

``LatexCompiler`` is the protocol the write-up graph uses; ``LatexmkCompiler`` runs the
real toolchain (no shell escape, files opened only inside the paper folder), and
``scientist.writeup.html.WeasyprintCompiler`` renders the same paper.tex from HTML.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from scientist.writeup.errors import TemplateCompileError, ToolchainMissingError

TOOLS = ("latexmk", "pdflatex", "bibtex", "chktex")
APT_PACKAGES = (
    "texlive-latex-base texlive-latex-recommended texlive-latex-extra "
    "texlive-fonts-recommended latexmk chktex"
)
PDFLATEX = (
    "pdflatex -no-shell-escape -interaction=nonstopmode -halt-on-error -file-line-error %O %S"
)
# chktex checks too pedantic for model text: spacing before \cite/\ref, dashes, quotes...
CHKTEX_SILENCED = (1, 2, 3, 8, 11, 12, 13, 18, 24, 26, 36, 44)
_FILE_LINE_ERROR = re.compile(r"^(?:\./)?[^:\n]+\.tex:(\d+): (.*)$")


class LogError(BaseModel):
    """One compiler error: the paper.tex line (if known), the message and the lines after it."""

    line: int | None = None
    message: str
    context: str = ""

    def render(self) -> str:
        """The error as one or two lines for a person or a model."""
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.message}" + (f" [{self.context}]" if self.context else "")


class CompileResult(BaseModel):
    """What one compile produced."""

    ok: bool
    pdf: Path | None = None
    errors: list[LogError] = Field(default_factory=list)
    seconds: float = 0.0
    timed_out: bool = False


class LintWarning(BaseModel):
    """One chktex warning."""

    line: int
    message: str


class LatexCompiler(Protocol):
    """Turns a paper folder's .tex into a PDF; tests may substitute their own."""

    engine: str

    def preflight(self, template_dir: Path, tex_name: str, timeout_s: float) -> None:
        """Raise a typed error, before any model is called, if the paper cannot be built."""
        ...

    def compile(
        self, folder: Path, tex_name: str, timeout_s: float, *, bibliography: bool = True
    ) -> CompileResult:
        """Build ``folder/tex_name`` into ``folder/<stem>.pdf``."""
        ...

    def lint(self, folder: Path, tex_name: str) -> list[LintWarning]:
        """Style and syntax warnings for ``folder/tex_name`` (may be empty)."""
        ...


# Style files that Debian ships outside the texlive-* packages installed by `make setup`.
STY_PACKAGES = {"lmodern.sty": "lmodern", "tgtermes.sty": "tex-gyre", "type1ec.sty": "cm-super"}
_MISSING_FILE = re.compile(r"File `([^']+)' not found")


def missing_package_hint(result: CompileResult) -> str:
    """A line naming what to install when the log says a .sty/.cls file is missing."""
    names = [m.group(1) for e in result.errors if (m := _MISSING_FILE.search(e.message))]
    if not names:
        return ""
    known = [STY_PACKAGES[n] for n in names if n in STY_PACKAGES]
    how = (
        f"`sudo apt-get install -y {' '.join(known)}`"
        if known
        else "the TeX package that provides it (Debian: `apt-file search <name>`)"
    )
    return f"Missing TeX file(s) {', '.join(names)}: install {how}, or remove the \\usepackage.\n"


def missing_tools(tools: tuple[str, ...] = TOOLS) -> list[str]:
    """Tools of the TeX toolchain not on PATH."""
    return [tool for tool in tools if shutil.which(tool) is None]


def check_toolchain() -> None:
    """Raise ToolchainMissingError naming the missing tools and the apt packages to install."""
    missing = missing_tools()
    if missing:
        raise ToolchainMissingError(
            f"The LaTeX toolchain is incomplete: {', '.join(missing)} not found on PATH. Install "
            f"it with `sudo apt-get install -y --no-install-recommends {APT_PACKAGES}`, or render "
            "from HTML instead with --pdf-engine weasyprint."
        )


class LatexmkCompiler:
    """``latexmk -pdf`` (pdflatex + bibtex, as many passes as needed) in the paper folder."""

    engine = "latex"

    def preflight(self, template_dir: Path, tex_name: str, timeout_s: float) -> None:
        """The toolchain is installed and the template compiles as it is."""
        check_toolchain()
        with tempfile.TemporaryDirectory(prefix="template-check-") as tmp:
            work = Path(tmp) / "latex"
            shutil.copytree(template_dir, work)
            result = self.compile(work, tex_name, timeout_s, bibliography=False)
        if not result.ok:
            errors = "\n".join(e.render() for e in result.errors[:10]) or "(no error in the log)"
            raise TemplateCompileError(
                f"The paper template {template_dir / tex_name} does not compile as it is, before "
                f"anything was written into it:\n{errors}\n{missing_package_hint(result)}Fix the "
                "template (or its style files) and run the write-up again."
            )

    def compile(
        self, folder: Path, tex_name: str, timeout_s: float, *, bibliography: bool = True
    ) -> CompileResult:
        """Run latexmk; on failure, the log's errors (file:line messages) are returned."""
        command = ["latexmk", "-pdf", f"-pdflatex={PDFLATEX}", "-silent"]
        command += [] if bibliography else ["-bibtex-"]
        start = time.perf_counter()
        timed_out = _run([*command, tex_name], folder, timeout_s)
        seconds = time.perf_counter() - start
        pdf = folder / f"{Path(tex_name).stem}.pdf"
        errors = read_log_errors(folder / f"{Path(tex_name).stem}.log")
        if timed_out:
            errors.insert(0, LogError(message=f"latexmk did not finish within {timeout_s:g} s"))
        ok = not timed_out and not errors and pdf.is_file()
        if not ok and not errors:
            errors = bibtex_errors(folder / f"{Path(tex_name).stem}.blg") or [
                LogError(message="latexmk failed without an error in the log")
            ]
        return CompileResult(
            ok=ok, pdf=pdf if ok else None, errors=errors, seconds=seconds, timed_out=timed_out
        )

    def lint(self, folder: Path, tex_name: str) -> list[LintWarning]:
        """chktex's warnings, with the noisiest checks silenced."""
        if shutil.which("chktex") is None:
            return []
        command = ["chktex", "-q", "-I0", "-f", "%l:%n: %m\n"]
        command += [f"-n{n}" for n in CHKTEX_SILENCED] + [tex_name]
        try:
            proc = subprocess.run(
                command, cwd=folder, capture_output=True, text=True, timeout=60, check=False
            )
        except subprocess.TimeoutExpired:
            return []
        warnings = []
        for line in proc.stdout.splitlines():
            head, _, message = line.partition(": ")
            number = head.split(":")[0]
            if number.isdigit():
                warnings.append(LintWarning(line=int(number), message=message.strip()))
        return warnings


def _run(command: list[str], folder: Path, timeout_s: float) -> bool:
    """Run ``command`` in its own process group; kill the group on timeout. True if it timed out."""
    env = {**os.environ, "openout_any": "p", "openin_any": "p", "shell_escape": "f"}
    with subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as proc:
        try:
            proc.wait(timeout=timeout_s)
            return False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True


def read_log_errors(log: Path, limit: int = 20) -> list[LogError]:
    """Errors in a pdflatex log (``-file-line-error`` style and ``!`` lines)."""
    if not log.is_file():
        return []
    lines = log.read_text(encoding="latin-1", errors="replace").splitlines()
    errors: list[LogError] = []
    for i, line in enumerate(lines):
        match = _FILE_LINE_ERROR.match(line)
        if match:
            context = " ".join(s.strip() for s in lines[i + 1 : i + 3] if s.strip())
            errors.append(
                LogError(line=int(match.group(1)), message=match.group(2), context=context[:200])
            )
        elif line.startswith("! "):
            number = next(
                (int(m.group(1)) for s in lines[i + 1 : i + 8] if (m := re.match(r"l\.(\d+)", s))),
                None,
            )
            errors.append(LogError(line=number, message=line[2:].strip()))
    return errors[:limit]


def bibtex_errors(blg: Path) -> list[LogError]:
    """BibTeX's complaints from the .blg file."""
    if not blg.is_file():
        return []
    text = blg.read_text(encoding="latin-1", errors="replace")
    return [
        LogError(message=f"bibtex: {line.strip()}")
        for line in text.splitlines()
        if "error" in line.lower() or line.startswith("I ")
    ][:10]


def count_pages(pdf: Path) -> tuple[int, int]:
    """Total pages, and pages before the references (the page where they start counts)."""
    try:
        reader = PdfReader(str(pdf))
        total = len(reader.pages)
        for index in range(total - 1, -1, -1):
            text = reader.pages[index].extract_text() or ""
            if re.search(r"^\s*(?:\d+\s*)?References\s*$", text, re.MULTILINE):
                return total, index + 1
    except (PyPdfError, OSError, ValueError):
        return 0, 0
    return total, total
