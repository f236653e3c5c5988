"""The LaTeX and BibTeX of a pipeline paper, read and edited for ``injected_errors.py``.

Regular expressions, enough for the write-up's own papers (the template's sections, a results
table, figures as floats), not for any LaTeX. ``PaperSource`` is a paper as found on disk,
``Variant`` one edited copy and ``Injection`` what the edit put in, so the benchmark knows
which finding the variant should produce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import product
from typing import Literal

from core.literature.bibtex import BibEntry, parse_bib

ErrorKind = Literal["fabricated", "wrong_year", "number", "missing_figure"]
KINDS: tuple[ErrorKind, ...] = ("fabricated", "wrong_year", "number", "missing_figure")
NEAR_RELATIVE = 0.01  # an injected number is at least 1 % away from every supported value ...
NEAR_UNITS = 5  # ... and at least 5 units of its last printed digit

_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*")
_SECTION = re.compile(r"^\\section\*?\{", re.M)
_BIBLIOGRAPHY = re.compile(r"^\\bibliography(?:style)?\{", re.M)
_END_DOCUMENT = re.compile(r"^\\end\{document\}", re.M)
_CITE = re.compile(r"\\(?:no)?cite[a-zA-Z]*\*?(?:\[[^\]]*\])*\{([^}]*)\}")
_FIGURE_ENV = re.compile(r"\\begin\{figure\*?\}(.*?)\\end\{figure\*?\}", re.S)
_TABULAR = re.compile(
    r"\\begin\{tabular\*?\}(?:\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})+(.*?)\\end\{tabular", re.S
)
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class PaperSource:
    """One pipeline paper: its folder (read only), its .tex and .bib texts."""

    name: str
    folder: str
    tex: str
    bib_name: str
    bib: str


@dataclass(frozen=True)
class Injection:
    """What one variant injected: enough to recognise the finding it should produce."""

    kind: ErrorKind | Literal["clean"]
    titles: list[str] = field(default_factory=list)  # fabricated: the made-up titles
    keys: list[str] = field(default_factory=list)  # fabricated / wrong year: the BibTeX keys
    authors: list[str] = field(default_factory=list)  # wrong year: the entry's family names
    old_year: int | None = None
    new_year: int | None = None
    literal: str = ""  # number: the number as printed in the PDF ("0.6231", "23.4")
    original: str = ""  # number: what it replaced ('' when a sentence was added)
    figure: int | None = None  # missing figure: N
    note: str = ""  # one line for people


@dataclass(frozen=True)
class Variant:
    """A paper with (or, for the clean twin, without) one injected error."""

    paper: str
    kind: ErrorKind | Literal["clean"]
    index: int
    tex: str
    bib: str
    injection: Injection

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.index}"


# ----------------------------------------------------------------------------- reading


def strip_comments(tex: str) -> str:
    """``tex`` without its % comments (``\\%`` stays; ``\\\\%`` is a line break, then one)."""
    return _COMMENT.sub(r"\1", tex)


def insert_points(tex: str) -> list[int]:
    """Offsets where a new paragraph may go: before each \\section but the first, and
    before the bibliography (or the end of the document)."""
    sections = [m.start() for m in _SECTION.finditer(tex)][1:]
    tail = _BIBLIOGRAPHY.search(tex) or _END_DOCUMENT.search(tex)
    return sections + ([tail.start()] if tail else [])


def figure_count(tex: str) -> int:
    """Numbered figures: figure floats with a caption."""
    return sum(1 for m in _FIGURE_ENV.finditer(strip_comments(tex)) if "\\caption" in m[1])


def cited_keys(tex: str) -> list[str]:
    """The BibTeX keys the text cites, in order of first citation."""
    keys = [k.strip() for m in _CITE.finditer(strip_comments(tex)) for k in m[1].split(",")]
    return list(dict.fromkeys(k for k in keys if k))


def uses_natbib(tex: str) -> bool:
    return "natbib" in strip_comments(tex)


@dataclass(frozen=True)
class Cell:
    """A number of a results table with the names of its column and row."""

    value: float
    decimals: int
    column: str
    row: str


def _plain(text: str) -> str:
    """A table cell's LaTeX as words: commands, braces and math markers dropped."""
    text = text.replace("\\_", "_").replace("\\%", "%")
    text = re.sub(r"\\[a-zA-Z]+\*?", " ", text)
    return " ".join(re.sub(r"[{}$~]", " ", text).split())


def table_cells(tex: str) -> list[Cell]:
    """Every number in the tabulars (means and their errors), with column and row names."""
    cells: list[Cell] = []
    for body in (m[1] for m in _TABULAR.finditer(strip_comments(tex))):
        header: list[str] = []
        for row in (r for r in re.split(r"\\\\", body) if "&" in r):
            row = re.sub(r"\\(?:top|mid|bottom)rule|\\hline|\\cline\{[^}]*\}", " ", row)
            parts = [_plain(p) for p in re.split(r"(?<!\\)&", row)]
            if not header and not any(map(_numeric, parts)):
                header = parts
                continue
            cells += _row_cells(parts, header)
    return cells


def _numeric(cell: str) -> bool:
    """Whether a cell (as words) holds numbers only ("0.97 0.002" for "$0.97 \\pm 0.002$")."""
    return bool(_PLAIN_NUMBER.search(cell)) and bool(re.fullmatch(r"[-+\d.\s%]+", cell))


def _row_cells(parts: list[str], header: list[str]) -> list[Cell]:
    names = " ".join(p for p in parts if p and not _numeric(p))
    cells = []
    for position, part in enumerate(parts):
        if not _numeric(part):
            continue
        column = header[position] if position < len(header) else ""
        for literal in _PLAIN_NUMBER.findall(part):
            decimals = len(literal.split(".")[1]) if "." in literal else 0
            cells.append(Cell(float(literal), decimals, column, names))
    return cells


def mean_cells(cells: list[Cell]) -> list[Cell]:
    """The cells a result sentence would quote: decimals in a named column of a named row
    (the first number of each "mean ± error" cell)."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for cell in cells:
        if cell.decimals and cell.column and (cell.column, cell.row) not in seen:
            seen.add((cell.column, cell.row))
            kept.append(cell)
    return kept


@dataclass(frozen=True)
class Supported:
    """What an injected number must stay away from. ``values``: every table value, every
    difference of two, the column means and every other number the paper writes; ``changes``:
    those and every ratio and relative change of two table values (for a claimed change)."""

    values: list[float]
    changes: list[float]


def supported_values(cells: list[Cell], body_numbers: list[float]) -> Supported:
    """The values and changes a paper's tables (and its other numbers) support."""
    numbers = [c.value for c in cells]
    values = set(numbers) | set(body_numbers)
    changes: set[float] = set()
    for a, b in product(numbers, repeat=2):
        values |= {a - b, abs(a - b)}
        if b:
            changes |= {a / b, (a - b) / b, abs(a - b) / abs(b)}
    columns: dict[str, list[float]] = {}
    for cell in cells:
        columns.setdefault(cell.column, []).append(cell.value)
    values |= {sum(v) / len(v) for v in columns.values()}
    return Supported(sorted(values), sorted(values | changes))


def is_unsupported(value: float, decimals: int, supported: list[float]) -> bool:
    """Whether ``value`` (printed with ``decimals``) is far from every supported value, as
    printed, as a percentage and as a fraction (0.85 = 85%)."""
    tolerance = max(NEAR_UNITS * 10.0**-decimals, NEAR_RELATIVE * abs(value))
    return all(
        abs(value - s * scale) > tolerance for s in supported for scale in (1.0, 100.0, 0.01)
    )


def body_numbers(tex: str) -> list[float]:
    """Every number written in the document body (settings, counts, table values)."""
    body = strip_comments(tex).split("\\begin{document}")[-1]
    return [float(m[0]) for m in _PLAIN_NUMBER.finditer(body)]


def insert_paragraphs(tex: str, insertions: list[tuple[int, str]]) -> str:
    """``tex`` with each (offset, sentence) added as its own paragraph at that offset."""
    for offset, sentence in sorted(insertions, key=lambda x: x[0], reverse=True):
        tex = tex[:offset] + sentence + "\n\n" + tex[offset:]
    return tex


def ensure_bibliography(tex: str, bib_name: str) -> str:
    """``tex`` with a bibliography when it had none (a paper that cited nothing)."""
    if re.search(r"^\\bibliography\{", tex, re.M):
        return tex
    stem = bib_name.removesuffix(".bib")
    style = "plainnat" if uses_natbib(tex) else "plain"
    block = f"\\bibliographystyle{{{style}}}\n\\bibliography{{{stem}}}\n\n"
    end = _END_DOCUMENT.search(tex)
    return tex[: end.start()] + block + tex[end.start() :] if end else tex + block


def bib_entries(paper: PaperSource) -> list[BibEntry]:
    return parse_bib(paper.bib, paper.bib_name)
