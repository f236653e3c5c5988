"""The template's own preamble and style files, with the sections, tables and figures put in.

The embedded ``filecontents`` bibliography (The AI Scientist's form) is lifted out of the
template: its entries become trusted template references, and ``\\bibliography`` points at
a separate references.bib holding only what the paper cites. Each section body sits
between ``%%% BEGIN <name>`` / ``%%% END <name>`` comments, so compiler errors map back
to the section they came from.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.literature.bibtex import BibEntry, parse_bib
from scientist.writeup.errors import WriteupInputError
from scientist.writeup.latex import plain_to_latex
from scientist.writeup.sections import SECTIONS, SectionSpec

TEX_NAME = "paper.tex"
BIB_NAME = "references.bib"
SUPPORT_SUFFIXES = (".sty", ".cls", ".bst", ".clo", ".cfg", ".def")
_FILECONTENTS = re.compile(
    r"\\begin\{filecontents\*?\}(?:\[[^\]]*\])?\{([^}]*)\}(.*?)\\end\{filecontents\*?\}\s*",
    re.DOTALL,
)
_MARK = re.compile(r"^%%% (BEGIN|END) (\w+)$")


@dataclass(frozen=True)
class PaperTemplate:
    """A template's LaTeX without its embedded bibliography, and that bibliography's entries."""

    path: Path
    text: str
    bib: list[BibEntry]


def template_path(idea_dir: Path) -> Path:
    """``latex/template.tex`` in the idea folder (a copy of the research template)."""
    path = idea_dir / "latex" / "template.tex"
    if not path.is_file():
        raise WriteupInputError(
            f"{path} does not exist: the idea folder must hold the template's latex/ folder "
            "(the experiment stage copies the template there)."
        )
    return path


def read_template(path: Path) -> PaperTemplate:
    """The template with every ``filecontents`` .bib block lifted out (plus a sibling .bib)."""
    text = path.read_text(encoding="utf-8")
    entries: list[BibEntry] = []
    for match in _FILECONTENTS.finditer(text):
        if match.group(1).strip().endswith(".bib") or "." not in match.group(1):
            entries += parse_bib(match.group(2), source=f"{path}, filecontents {match.group(1)}")
    text = _FILECONTENTS.sub("", text)
    for bib in sorted(path.parent.glob("*.bib")):
        entries += parse_bib(bib.read_text(encoding="utf-8", errors="replace"), source=str(bib))
    first: dict[str, BibEntry] = {}
    for entry in entries:
        first.setdefault(entry.key, entry)
    return PaperTemplate(path=path, text=text, bib=list(first.values()))


def copy_support_files(template: PaperTemplate, paper_dir: Path) -> None:
    """Style, class and bibliography-style files from the template's folder into paper/."""
    for item in template.path.parent.iterdir():
        if item.is_file() and item.suffix in SUPPORT_SUFFIXES:
            shutil.copyfile(item, paper_dir / item.name)


def _ensure_package(text: str, package: str) -> str:
    if re.search(r"\\usepackage(?:\[[^\]]*\])?\{[^}]*\b" + package + r"\b", text):
        return text
    return text.replace("\\begin{document}", f"\\usepackage{{{package}}}\n\\begin{{document}}", 1)


def _set_title(text: str, title: str) -> str:
    match = re.search(r"\\title\{", text)
    if not match:
        return text
    depth, end = 0, match.end() - 1
    for i in range(match.end() - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            end = i
            break
    return text[: match.end()] + plain_to_latex(title) + text[end:]


def _block(name: str, body: str) -> str:
    return f"%%% BEGIN {name}\n{body.strip()}\n%%% END {name}"


def _place(text: str, spec: SectionSpec, body: str, extra: str) -> str:
    """Put one section's block at its placeholder, after its heading, or before the end."""
    block = _block(spec.name, body) + (f"\n{extra.strip()}" if extra.strip() else "")
    for placeholder in spec.placeholders:
        pattern = re.compile(rf"^[ \t]*{re.escape(placeholder)}[ \t]*$", re.MULTILINE)
        if pattern.search(text):
            return pattern.sub(lambda _m: block, text, count=1)
    if spec.name == "abstract":
        env = re.search(r"\\begin\{abstract\}.*?\\end\{abstract\}", text, re.DOTALL)
        wrapped = f"\\begin{{abstract}}\n{block}\n\\end{{abstract}}"
        if env:
            return text[: env.start()] + wrapped + text[env.end() :]
        return text.replace("\\maketitle", "\\maketitle\n" + wrapped, 1)
    heading = re.search(
        rf"\\section\*?\{{{re.escape(spec.title)}\}}(?:\s*\\label\{{[^}}]*\}})?", text
    )
    if heading:
        return text[: heading.end()] + "\n" + block + text[heading.end() :]
    section = f"\\section{{{spec.title}}}\n{block}\n\n"
    anchor = re.search(r"\\bibliographystyle|\\bibliography\{|\\end\{document\}", text)
    at = anchor.start() if anchor else len(text)
    return text[:at] + section + text[at:]


def _bibliography(text: str, cited: bool) -> str:
    if not cited:
        text = re.sub(r"^[ \t]*\\bibliographystyle\{[^}]*\}[ \t]*\n?", "", text, flags=re.M)
        return re.sub(r"^[ \t]*\\bibliography\{[^}]*\}[ \t]*\n?", "", text, flags=re.M)
    if re.search(r"\\bibliography\{", text):
        return re.sub(r"\\bibliography\{[^}]*\}", lambda _m: "\\bibliography{references}", text)
    style = "" if "\\bibliographystyle" in text else "\\bibliographystyle{plainnat}\n"
    return text.replace(
        "\\end{document}", f"{style}\\bibliography{{references}}\n\\end{{document}}"
    )


def assemble(
    template: PaperTemplate,
    title: str,
    bodies: dict[str, str],
    extras: dict[str, str],
    cited: bool,
) -> str:
    """paper.tex: the template with title, section blocks (then code-made floats) and the
    bibliography pointer set."""
    text = _set_title(template.text, title)
    for package in ("graphicx", "booktabs"):
        text = _ensure_package(text, package)
    for spec in SECTIONS:
        text = _place(text, spec, bodies.get(spec.name, ""), extras.get(spec.name, ""))
    return _bibliography(text, cited)


def section_lines(tex: str) -> dict[str, tuple[int, int]]:
    """First and last line (1-based) of each section block in an assembled paper.tex."""
    spans: dict[str, tuple[int, int]] = {}
    starts: dict[str, int] = {}
    for number, line in enumerate(tex.splitlines(), start=1):
        match = _MARK.match(line)
        if not match:
            continue
        kind, name = match.groups()
        if kind == "BEGIN":
            starts[name] = number
        elif name in starts:
            spans[name] = (starts[name], number)
    return spans


def section_at(spans: dict[str, tuple[int, int]], line: int | None) -> str | None:
    """The section whose block holds ``line``."""
    if line is None:
        return None
    return next((name for name, (a, b) in spans.items() if a <= line <= b), None)
