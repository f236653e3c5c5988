"""The numbers a paper reports in its tables, read back from the extracted text, and what
simple arithmetic on them gives: differences, relative changes, ratios and (for claims
about averages) means. Every value is an interval that allows for the rounding of the
printed digits, so a claim computed from the unrounded results still matches.

pypdf gives a tabular's rows as lines such as ``"Ours 0.85 ± 0.01 12.3"``: a label, then
cells. A block of such lines next to a "Table N:" caption (above or below it) is a table.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from reviewer.checks.layout import Line, SectionKind, caption_line

Interval = tuple[float, float]

CAPTION_WINDOW = 8  # lines from a caption above the table to its first row (caption, header)
CAPTION_BELOW = 4  # lines from a table's last row to a caption below it (notes)
MAX_LABEL_WORDS = 8
MAX_MEAN_ROWS = 40
_PLAIN = re.compile(r"^[+\-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+\-−]?\d+)?%?[*†‡§]*$")
_PAREN = re.compile(r"^\([+\-−]?\d+(?:\.\d+)?%?\)[*†‡§]*$")
_MISSING = frozenset({"—", "–", "-", "--", "n/a", "N/A", "NA", "×", "✗"})
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
_CAPTION_LABEL = re.compile(r"^(?:Table|Tab\.|Figure|Fig\.)\s*\d+\s*[:.|]")
_REFERENCE_ROW = re.compile(
    r"baseline|\bbase\b|vanilla|standard|default|original|\bours\b|proposed|full|\bw/?o\b"
    r"|without|\bno\b|control|reference|\brun[ _]?0\b",
    re.I,
)
_FUNCTION_WORD = re.compile(
    r"^(?:of|to|and|or|at|by|from|in|on|is|was|were|are|be|with|than|for|the|a|an|as|vs\.?)$"
)


@dataclass(frozen=True)
class Cell:
    """A number as printed: its value, the unit of its last digit, whether it had a '%'."""

    value: float
    unit: float
    percent: bool = False

    @property
    def interval(self) -> Interval:
        """The values that print as this number."""
        half = self.unit / 2
        return (self.value - half, self.value + half)


@dataclass
class Row:
    """One table row: its label and its cells (None for a '—'), spreads ('± 0.01') apart."""

    label: str
    cells: list[Cell | None]
    spreads: list[Cell] = field(default_factory=list)

    @property
    def values(self) -> list[Cell]:
        """The cells that hold a number."""
        return [cell for cell in self.cells if cell is not None]


@dataclass
class Table:
    """A block of rows and the lines that belong to the table (caption, header, rows)."""

    rows: list[Row]
    lines: set[int]
    caption: int
    literals: list[Cell] = field(default_factory=list)

    @property
    def spreads(self) -> list[Cell]:
        """The '± 0.01' of every cell that has one."""
        return [spread for row in self.rows for spread in row.spreads]

    def aligned(self) -> list[list[Cell | None]]:
        """The rows as a grid, right-aligned, None where a row has no cell."""
        width = max(len(row.cells) for row in self.rows)
        padding: list[Cell | None] = [None] * width
        return [padding[len(row.cells) :] + row.cells for row in self.rows]


def parse_number(token: str) -> Cell | None:
    """``token`` ("0.85", "85.3%", "(0.02)", "7500.0*", "10,000") as a cell, else None."""
    text = token.strip("()*†‡§").replace(",", "").replace("−", "-")
    percent = text.endswith("%")
    text = text.rstrip("%")
    try:
        value = float(text)
    except ValueError:
        return None
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return Cell(value, 10.0 ** (int(exponent or 0) - decimals), percent)


def _cell_zone_start(tokens: list[str]) -> int:
    """Index of the first token of the trailing run of cells."""
    start = len(tokens)
    while start > 0:
        token = tokens[start - 1]
        plain_before = start >= 2 and bool(_PLAIN.match(tokens[start - 2]))
        if (
            _PLAIN.match(token)
            or token in _MISSING
            or token == "±"
            or (_PAREN.match(token) and plain_before)
        ):
            start -= 1
        else:
            break
    while start < len(tokens) and tokens[start] == "±":
        start += 1
    return start


def _cells(tokens: list[str]) -> tuple[list[Cell | None], list[Cell]]:
    cells: list[Cell | None] = []
    spreads: list[Cell] = []
    spread_next = False
    for token in tokens:
        if token == "±":
            spread_next = True
            continue
        cell = None if token in _MISSING else parse_number(token)
        if (spread_next or token.startswith("(")) and cell is not None and cells:
            spreads.append(cell)
        else:
            cells.append(cell)
        spread_next = False
    return cells, spreads


def parse_row(text: str) -> Row | None:
    """``text`` as a table row (a short label, then two or more cells; or a label of at most
    four words and one cell), else None. Prose that ends in a number is not a row."""
    tokens = re.sub(r"\s*±\s*", " ± ", text).split()
    start = _cell_zone_start(tokens)
    label = tokens[:start]
    if len(label) > MAX_LABEL_WORDS or (label and _FUNCTION_WORD.match(label[-1])):
        return None
    cells, spreads = _cells(tokens[start:])
    values = [cell for cell in cells if cell is not None]
    if len(values) >= 2 or (len(values) == 1 and 1 <= len(label) <= 4):
        return Row(" ".join(label), cells, spreads)
    return None


def _gap_line(text: str) -> bool:
    """A line that may sit between rows of one table: a group name such as "Baseline"."""
    return len(text.split()) <= 6 and not text.endswith(".") and caption_line(text) is None


def _blocks(lines: list[Line], rows: dict[int, Row]) -> list[list[int]]:
    """Runs of row lines on one page, allowing up to two group-name lines between rows."""
    blocks: list[list[int]] = []
    for index in sorted(rows):
        if blocks:
            last = blocks[-1][-1]
            between = range(last + 1, index)
            same_page = lines[last].page == lines[index].page
            if same_page and len(between) <= 2 and all(_gap_line(lines[i].text) for i in between):
                blocks[-1].append(index)
                continue
        blocks.append([index])
    return blocks


def _header_above(lines: list[Line], first: int) -> set[int]:
    """The header lines right above a table's first row (short, no full stop)."""
    header: set[int] = set()
    index = first - 1
    while index >= max(0, first - 3) and lines[index].page == lines[first].page:
        text = lines[index].text
        if len(text.split()) > 12 or text.endswith((".", ",")) or caption_line(text):
            break
        header.add(index)
        index -= 1
    return header


def _caption_end(lines: list[Line], start: int) -> int:
    """The last line of the caption that starts at ``start`` (it ends with a full stop)."""
    end = start
    while end < min(len(lines) - 1, start + 3) and not lines[end].text.endswith("."):
        if lines[end + 1].page != lines[start].page or caption_line(lines[end + 1].text):
            break
        end += 1
    return end


def _table_for(lines: list[Line], block: list[int], caption: int) -> Table | None:
    """The table ``block`` forms with the caption at line ``caption``, if they are close."""
    first, last = block[0], block[-1]
    if lines[caption].page != lines[first].page:
        return None
    caption_end = _caption_end(lines, caption)
    if caption < first and first - caption <= CAPTION_WINDOW:
        header = set(range(caption_end + 1, first))
    elif last < caption and caption - last <= CAPTION_BELOW:
        header = _header_above(lines, first)
        header |= set(range(last + 1, caption))
    else:
        return None
    owned = set(range(caption, caption_end + 1)) | header | set(range(first, last + 1))
    return Table([], owned, caption)


def row_blocks(lines: list[Line], kinds: list[SectionKind]) -> list[list[tuple[int, Row]]]:
    """Blocks of lines that read as table rows (two rows at least, or one with two cells),
    with or without a caption; the references are not read."""
    rows = {
        i: row
        for i, line in enumerate(lines)
        if kinds[i] != "references" and (row := parse_row(line.text)) is not None
    }
    blocks = [[(i, rows[i]) for i in block] for block in _blocks(lines, rows)]
    return [block for block in blocks if len(block) >= 2 or len(block[0][1].values) >= 2]


def find_tables(lines: list[Line], kinds: list[SectionKind]) -> list[Table]:
    """The paper's tables: blocks of row lines next to a "Table N" caption."""
    table_captions = [i for i, line in enumerate(lines) if caption_line(line.text) == "Table"]
    tables = []
    for block in row_blocks(lines, kinds):
        indexes, block_rows = [i for i, _ in block], [row for _, row in block]
        for caption in table_captions:
            table = _table_for(lines, indexes, caption)
            if table is not None:
                table.rows = block_rows
                table.literals = _literals(lines, table, block_rows)
                tables.append(table)
                break
    return tables


def unread_tables(lines: list[Line], tables: list[Table]) -> list[str]:
    """The "Table N" captions whose rows could not be read (an image, a layout the text
    lost): the tables a claim may come from that the check cannot see."""
    read = {table.caption for table in tables}
    return [
        line.text
        for index, line in enumerate(lines)
        if caption_line(line.text) == "Table" and index not in read
    ]


def _literals(lines: list[Line], table: Table, rows: list[Row]) -> list[Cell]:
    """Numbers a table prints outside its cells: caption, header and labels ("Steps to 99%",
    "Combined (15%)")."""
    texts = [
        _CAPTION_LABEL.sub("", lines[i].text)
        for i in table.lines
        if parse_row(lines[i].text) is None
    ]
    texts += [row.label for row in rows]
    return [cell for text in texts for m in _NUMBER.finditer(text) if (cell := parse_number(m[0]))]


@dataclass
class Candidates:
    """What a table supports, by kind of claim: values, differences (absolute, or
    percentage points), relative changes in % (a decrease is relative to the larger value,
    an increase to the smaller) and ratios."""

    values: list[Interval] = field(default_factory=list)
    differences: list[Interval] = field(default_factory=list)
    increases: list[Interval] = field(default_factory=list)
    decreases: list[Interval] = field(default_factory=list)
    ratios: list[Interval] = field(default_factory=list)
    fractions: list[Interval] = field(default_factory=list)
    fraction_differences: list[Interval] = field(default_factory=list)

    def extend(self, other: Candidates) -> None:
        """Add ``other``'s candidates to these."""
        for name, values in vars(other).items():
            getattr(self, name).extend(values)

    def add_value(self, cell: Cell) -> None:
        """A printed value (a fraction too when it reads as one: 0.85, not 1 or 85)."""
        self.values.append(_magnitude(cell.interval))
        if _fraction(cell):
            self.fractions.append(_magnitude(cell.interval))

    def add_cells(self, a: Cell, b: Cell) -> None:
        """The combinations of two printed values (see ``add_pair``)."""
        self.add_pair(a.interval, b.interval)
        if _fraction(a) and _fraction(b):
            self.fraction_differences.append(self.differences[-1])

    def add_pair(self, a: Interval, b: Interval) -> None:
        """|a - b|, the relative change each way (in %) and the ratio each way."""
        self.differences.append(_magnitude(_corners(lambda x, y: x - y, a, b)))
        for top, bottom in ((a, b), (b, a)):
            if bottom[0] <= 0 <= bottom[1]:
                continue
            change = _magnitude(_corners(lambda x, y: (x - y) / y * 100, top, bottom))
            rising = abs(sum(top)) > abs(sum(bottom))
            (self.increases if rising else self.decreases).append(change)
            self.ratios.append(_magnitude(_corners(lambda x, y: x / y, top, bottom)))


def _fraction(cell: Cell) -> bool:
    return cell.unit < 1 and abs(cell.value) <= 1 and not cell.percent


def _corners(function: Callable[[float, float], float], a: Interval, b: Interval) -> Interval:
    values = [function(x, y) for x in a for y in b]
    return (min(values), max(values))


def _magnitude(interval: Interval) -> Interval:
    low, high = interval
    if low <= 0 <= high:
        return (0.0, max(-low, high))
    return (min(abs(low), abs(high)), max(abs(low), abs(high)))


def _compared(rows: list[Row], first: int, second: int) -> bool:
    """Whether a paper would compare two rows of one column: with a baseline (or the
    paper's own method), with the next row (an ablation step), or two rows with the same
    label (one dataset under two methods, in a table grouped by method)."""
    labels = rows[first].label, rows[second].label
    return (
        second == first + 1
        or labels[0] == labels[1]
        or any(_REFERENCE_ROW.search(label) for label in labels)
    )


def _side_by_side(width: int, first: int, second: int) -> bool:
    """Whether two cells of one row are two versions of one metric: neighbours (baseline
    and ours under one header) or the same place in two halves (two groups of columns)."""
    return second == first + 1 or (width % 2 == 0 and second - first == width // 2)


def pair_candidates(table: Table) -> Candidates:
    """Values of ``table`` and the combinations of two of them a paper would compare: two
    cells of one row side by side (see ``_side_by_side``) and two cells of one column in
    rows that are compared (see ``_compared``)."""
    found = Candidates()
    for cell in [*(cell for row in table.rows for cell in row.values), *table.spreads]:
        found.add_value(cell)
    grid = table.aligned()
    width = len(grid[0])
    for row in grid:
        for i, j in itertools.combinations(range(width), 2):
            a, b = row[i], row[j]
            if a is not None and b is not None and _side_by_side(width, i, j):
                found.add_cells(a, b)
    for c in range(width):
        for i, j in itertools.combinations(range(len(grid)), 2):
            a, b = grid[i][c], grid[j][c]
            if a is not None and b is not None and _compared(table.rows, i, j):
                found.add_cells(a, b)
    return found


def _mean(intervals: list[Interval]) -> Interval:
    lows, highs = zip(*intervals, strict=True)
    return (sum(lows) / len(intervals), sum(highs) / len(intervals))


def _runs(length: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every run of at least two consecutive rows."""
    for start in range(length):
        for end in range(start + 2, length + 1):
            yield start, end


def mean_candidates(table: Table) -> Candidates:
    """For claims about averages: means of consecutive cells of a column, the changes between
    two such means (the same rows in two columns, or two equally long groups of rows of one
    column), and the mean over consecutive rows of the change between two columns. Tables
    longer than ``MAX_MEAN_ROWS`` get none (the combinations grow with the cube of rows)."""
    grid = table.aligned()
    if len(grid) > MAX_MEAN_ROWS:
        return Candidates()
    found = Candidates()
    means = _column_means(grid)
    found.values = [_magnitude(mean) for mean in means.values()]
    for (c, start, end), mean in means.items():
        for other_column in range(c + 1, len(grid[0])):
            other = means.get((other_column, start, end))
            if other is not None:
                found.add_pair(mean, other)
        length = end - start
        for later in range(end, len(grid) - length + 1, length):
            other = means.get((c, later, later + length))
            if other is not None:
                found.add_pair(mean, other)
    found.extend(_per_row_means(grid))
    return found


def _column_means(grid: list[list[Cell | None]]) -> dict[tuple[int, int, int], Interval]:
    """(column, first row, end row) -> the mean of that run of cells, where all are numbers."""
    means: dict[tuple[int, int, int], Interval] = {}
    for c in range(len(grid[0])):
        for start, end in _runs(len(grid)):
            cells = [row[c] for row in grid[start:end]]
            if all(cell is not None for cell in cells):
                means[(c, start, end)] = _mean([cell.interval for cell in cells if cell])
    return means


def _per_row_means(grid: list[list[Cell | None]]) -> Candidates:
    """Means over consecutive rows of the per-row change between two columns."""
    found = Candidates()
    for c1, c2 in itertools.combinations(range(len(grid[0])), 2):
        per_row = []
        for row in grid:
            a, b = row[c1], row[c2]
            pair = Candidates()
            if a is not None and b is not None:
                pair.add_pair(a.interval, b.interval)
            per_row.append(pair)
        for start, end in _runs(len(grid)):
            window = per_row[start:end]
            for name in ("differences", "increases", "decreases", "ratios"):
                parts = [getattr(pair, name) for pair in window]
                if all(len(part) == len(parts[0]) for part in parts) and parts[0]:
                    means = [_mean([part[k] for part in parts]) for k in range(len(parts[0]))]
                    getattr(found, name).extend(means)
    return found
