"""The LaTeX toolchain behind a seam: preflight, latexmk under a timeout, chktex, page count.

``LatexCompiler`` is the protocol the write-up graph uses; ``LatexmkCompiler`` runs the
real toolchain in a box, because the idea folder is written by experiment code and is not
trusted: ``latexmk -norc`` (no latexmkrc is read), in a fresh folder holding only the files
the paper uses (its .tex, .bib, style files and referenced figures; never a symlink),
under an allow-listed environment (no API keys) with shell escape off and TeX's file
access paranoid; the PDF, log and .blg are copied back. ``scientist.writeup.html.
WeasyprintCompiler`` renders the same paper.tex from HTML.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, Field
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from core.isolation import (
    INSIDE_TMP,
    Isolation,
    box_for,
    bwrap_command,
    check_bwrap,
    lent_to,
)
from scientist.writeup.errors import TemplateCompileError, ToolchainMissingError
from scientist.writeup.latex import words

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
# What a build may see besides its .tex: bibliography, style and class files (top level) ...
SOURCE_SUFFIXES = (".bib", ".sty", ".cls", ".bst", ".clo", ".cfg", ".def")
# ... the figures the .tex names (pdflatex tries these suffixes when none is given) ...
GRAPHIC_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg")
# ... and what comes back from it.
OUTPUT_SUFFIXES = (".pdf", ".log", ".blg", ".bbl")
# The only variables the toolchain inherits; TeX's own settings are forced paranoid.
PASSED_ENVIRONMENT = words(
    "PATH HOME LANG LANGUAGE LC_ALL LC_CTYPE TZ TMPDIR SOURCE_DATE_EPOCH FORCE_SOURCE_DATE",
    "TEXMFHOME TEXMFVAR TEXMFCONFIG TEXINPUTS BIBINPUTS BSTINPUTS",
)
PARANOID_TEX = {"openin_any": "p", "openout_any": "p", "shell_escape": "f"}
# What TeX reads outside /usr and /etc: the generated formats and font maps.
TEX_READ_ONLY = tuple(p for p in (Path("/var/lib/texmf"),) if p.is_dir())
_GRAPHICS = re.compile(r"\\includegraphics\*?(?:\[[^\]]*\])?\{([^}]*)\}")
_GRAPHICS_PATH = re.compile(r"\\graphicspath\{((?:\s*\{[^}]*\})+)\s*\}")
_TEX_INPUTS = re.compile(r"\\(?:input|include)\{([^}]*)\}")


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
    """``latexmk -pdf`` (pdflatex + bibtex, as many passes as needed) in a fresh folder that
    holds only the paper's chosen sources; the outputs come back to the paper folder.

    With ``isolation="bwrap"`` (the default; ``writing.isolation``) latexmk runs in the same
    bubblewrap box as an experiment (``core.isolation``): the TeX installation read-only, the
    fresh folder its only writable place, no network, dead with its caller.
    """

    engine = "latex"

    def __init__(self, isolation: Isolation = "bwrap") -> None:
        self.isolation: Isolation = isolation
        self._bwrap = check_bwrap() if isolation == "bwrap" else None

    def preflight(self, template_dir: Path, tex_name: str, timeout_s: float) -> None:
        """The toolchain is installed and the template compiles as it is."""
        check_toolchain()
        with tempfile.TemporaryDirectory(prefix="template-check-") as tmp:
            work = Path(tmp) / "latex"
            stage_sources(template_dir, tex_name, work)
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
        """Run latexmk in a box (see the module docstring); the PDF, log and .blg come back to
        ``folder``. On failure, the log's errors (file:line messages) are returned."""
        command = ["latexmk", "-norc", "-pdf", f"-pdflatex={PDFLATEX}", "-silent"]
        command += [] if bibliography else ["-bibtex-"]
        stem = Path(tex_name).stem
        with tempfile.TemporaryDirectory(prefix="latex-box-") as tmp:
            box = Path(tmp)
            stage_sources(folder, tex_name, box)
            start = time.perf_counter()
            timed_out = self._run([*command, tex_name], box, timeout_s)
            seconds = time.perf_counter() - start
            errors = read_log_errors(box / f"{stem}.log")
            bib_errors = bibtex_errors(box / f"{stem}.blg")
            returned = bring_back(box, folder, stem)
        pdf = folder / f"{stem}.pdf"
        if timed_out:
            errors.insert(0, LogError(message=f"latexmk did not finish within {timeout_s:g} s"))
        ok = not timed_out and not errors and pdf in returned
        if not ok and not errors:
            errors = bib_errors or [LogError(message="latexmk failed without an error in the log")]
        return CompileResult(
            ok=ok, pdf=pdf if ok else None, errors=errors, seconds=seconds, timed_out=timed_out
        )

    def _run(self, command: list[str], box: Path, timeout_s: float) -> bool:
        """latexmk in ``box``, boxed unless isolation is off; True if it timed out."""
        if self._bwrap is None:
            return _run(command, box, latex_environment(), timeout_s)
        spec = box_for(box, TEX_READ_ONLY, sys.executable)
        env = latex_environment() | {"HOME": str(INSIDE_TMP), "TEXMFVAR": str(INSIDE_TMP)}
        with lent_to(spec):
            return _run(bwrap_command(spec, command, self._bwrap), box, env, timeout_s)

    def lint(self, folder: Path, tex_name: str) -> list[LintWarning]:
        """chktex's warnings, with the noisiest checks silenced."""
        if shutil.which("chktex") is None:
            return []
        command = ["chktex", "-q", "-I0", "-f", "%l:%n: %m\n"]
        command += [f"-n{n}" for n in CHKTEX_SILENCED] + [tex_name]
        if not is_plain_source(folder, tex_name):
            return []
        with tempfile.TemporaryDirectory(prefix="chktex-box-") as tmp:
            (Path(tmp) / tex_name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / tex_name, Path(tmp) / tex_name)
            try:
                proc = subprocess.run(
                    command,
                    cwd=tmp,
                    env=latex_environment(),
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
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


def latex_environment() -> dict[str, str]:
    """The toolchain's whole environment: the allow-listed variables and paranoid TeX file
    access (no writing or reading outside the build folder, no dotfiles, no shell escape)."""
    passed = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
    return {**passed, **PARANOID_TEX}


def is_plain_source(folder: Path, name: str) -> bool:
    """Whether ``folder/name`` is a regular file inside ``folder``: a relative name without
    ``..``, not a symlink, and not reached through one."""
    relative = Path(name)
    if not name or relative.is_absolute() or ".." in relative.parts:
        return False
    path = folder / relative
    if path.is_symlink() or not path.is_file():
        return False
    return path.resolve().is_relative_to(folder.resolve())


def chosen_sources(folder: Path, tex_name: str) -> list[str]:
    """What a build of ``folder/tex_name`` may see: that .tex and the .tex files it inputs,
    the folder's bibliography and style files, and the figures the .tex files name."""
    chosen = {p.name for p in folder.iterdir() if p.suffix in SOURCE_SUFFIXES}
    pending, seen = [tex_name], set[str]()
    while pending:
        name = pending.pop()
        if name in seen or not is_plain_source(folder, name):
            continue
        seen.add(name)
        text = (folder / name).read_text(encoding="utf-8", errors="replace")
        pending += [_with_suffix(m.strip(), ".tex") for m in _TEX_INPUTS.findall(text)]
        chosen |= _figure_names(text)
    return sorted(n for n in chosen | seen if is_plain_source(folder, n))


def _with_suffix(name: str, suffix: str) -> str:
    return name if Path(name).suffix else name + suffix


def _figure_names(tex: str) -> set[str]:
    """Every name pdflatex may try for the figures ``tex`` includes (dirs of \\graphicspath)."""
    dirs = [""] + [d for m in _GRAPHICS_PATH.findall(tex) for d in re.findall(r"\{([^}]*)\}", m)]
    names = set()
    for figure in (m.strip() for m in _GRAPHICS.findall(tex)):
        for prefix in dirs:
            base = f"{prefix}{figure}"
            names |= {base, *(base + suffix for suffix in GRAPHIC_SUFFIXES)}
    return {n for n in names if Path(n).suffix.lower() in GRAPHIC_SUFFIXES}


def stage_sources(folder: Path, tex_name: str, box: Path) -> None:
    """Copy the chosen sources of ``folder/tex_name`` into the fresh folder ``box``."""
    box.mkdir(parents=True, exist_ok=True)
    for name in chosen_sources(folder, tex_name):
        target = box / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / name, target)


def bring_back(box: Path, folder: Path, stem: str) -> list[Path]:
    """Copy the build's outputs into ``folder`` (replacing, never writing through, what is
    there); returns the paths written."""
    returned = []
    for suffix in OUTPUT_SUFFIXES:
        source = box / f"{stem}{suffix}"
        if source.is_file():
            target = folder / source.name
            target.unlink(missing_ok=True)
            shutil.copyfile(source, target)
            returned.append(target)
    return returned


def _run(command: list[str], folder: Path, env: dict[str, str], timeout_s: float) -> bool:
    """Run ``command`` in its own process group; kill the group on timeout. True if it timed out."""
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
