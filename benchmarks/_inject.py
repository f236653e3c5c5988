"""Known errors injected into a pipeline paper's LaTeX, for ``injected_errors.py``.

Each maker takes the paper's own sources (``PaperSource``: paper.tex and its .bib) and a
seeded RNG and returns the edited texts with what was injected (``Injection``), so the
benchmark knows exactly which finding each variant should produce:

- ``fabricated``: K BibTeX entries with titles made from word lists (they exist nowhere,
  and never in the offline index built from the paper's own .bib), each \\cite'd in the text;
- ``wrong_year``: one cited entry's year moved by 2 to 5 years;
- ``number``: a number of the abstract that a results table holds, changed so that no table
  value, difference, ratio or relative change (nor any other number in the paper) is near
  it; without such a number, a sentence with such a result is added to the abstract;
- ``missing_figure``: "Figure N" with N beyond the paper's figures, in a sentence.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from benchmarks._fabricate import make_fabricated
from benchmarks._latex import (
    Cell,
    Injection,
    PaperSource,
    Supported,
    Variant,
    bib_entries,
    body_numbers,
    cited_keys,
    figure_count,
    insert_paragraphs,
    insert_points,
    is_unsupported,
    mean_cells,
    supported_values,
    table_cells,
)
from core.literature.bibtex import BibEntry

MAX_DRAWS = 400
_ABSTRACT = re.compile(r"\\begin\{abstract\}(.*?)\\end\{abstract\}", re.S)
_NUMBER = re.compile(r"(?<![\w.\\{-])(\d+(?:\.\d+)?)(\s*\\%)?(?![\w.]*\})(?!\.\d)")
_YEAR_FIELD = re.compile(r"(year\s*=\s*[{\"]?\s*)(\d{4})")


# ----------------------------------------------------------------------------- wrong year


def year_choices(paper: PaperSource, this_year: int) -> list[tuple[BibEntry, int, int]]:
    """(entry, old year, new year) for every cited entry with a year and every shift of
    2..5 years either way that stays between 1950 and ``this_year``, entries interleaved."""
    cited = cited_keys(paper.tex)
    entries = [e for e in bib_entries(paper) if e.key in cited or "*" in cited]
    entries.sort(key=lambda e: cited.index(e.key) if e.key in cited else len(cited))
    per_entry = []
    for entry in entries:
        match = _YEAR_FIELD.search(entry.text)
        if not match:
            continue
        old = int(match[2])
        shifts = [d for m in (2, 3, 4, 5) for d in (m, -m) if 1950 <= old + d <= this_year]
        per_entry.append([(entry, old, old + d) for d in shifts])
    interleaved = []
    for round_ in range(max((len(p) for p in per_entry), default=0)):
        interleaved += [p[round_] for p in per_entry if round_ < len(p)]
    return interleaved


def make_wrong_year(
    paper: PaperSource, index: int, choice: tuple[BibEntry, int, int]
) -> Variant | None:
    """The entry's year changed in the .bib (the offline index keeps the real one)."""
    entry, old, new = choice
    changed = _YEAR_FIELD.sub(lambda m: f"{m[1]}{new}", entry.text, count=1)
    bib = paper.bib.replace(entry.text, changed, 1)
    if bib == paper.bib:  # the entry was rewritten by the parser (@string macros): not found
        return None
    families = [a.split(",")[0].split()[-1] for a in entry.field("author").split(" and ") if a]
    injection = Injection(
        kind="wrong_year",
        titles=[entry.field("title")],
        keys=[entry.key],
        authors=families,
        old_year=old,
        new_year=new,
        note=f"{entry.key}: year {old} -> {new}",
    )
    return Variant(paper.name, "wrong_year", index, paper.tex, bib, injection)


# ----------------------------------------------------------------------------- numbers

_VALUE_SENTENCES = (
    "Our method reaches a {metric} of {value} on {group}.",
    "On {group}, the proposed model attains a {metric} of {value}.",
    "The best configuration achieves {value} {metric} on {group}.",
)
_CHANGE_SENTENCES = (
    "Compared with the baseline, our approach improves {metric} by {value}\\% on {group}.",
    "On {group}, it reduces {metric} by {value}\\% relative to the baseline.",
)


@dataclass(frozen=True)
class AbstractNumber:
    """A number of the abstract that a table holds: its span in the .tex and form."""

    start: int
    end: int
    literal: str
    value: float
    decimals: int
    percent: bool


def abstract_numbers(tex: str, cells: list[Cell]) -> list[AbstractNumber]:
    """Numbers in the abstract that a table value equals at their printed precision."""
    match = _ABSTRACT.search(tex)
    if not match:
        return []
    found = []
    for number in _NUMBER.finditer(match[1]):
        literal, percent = number[1], bool(number[2])
        decimals = len(literal.split(".")[1]) if "." in literal else 0
        if not decimals and not percent:
            continue  # a count or a year, not a result
        value = float(literal)
        scales = (1.0, 100.0) if percent else (1.0,)
        if any(round(c.value * s, decimals) == value for c in cells for s in scales):
            start = match.start(1) + number.start(1)
            found.append(
                AbstractNumber(start, start + len(literal), literal, value, decimals, percent)
            )
    return found


def _draw_unsupported(
    value: float, decimals: int, percent: bool, supported: list[float], rng: random.Random
) -> str | None:
    """``value`` scaled by a random factor (0.55-0.9 or 1.1-1.6) to a printed number far
    from every supported value; None if no draw lands there."""
    ceiling = 100.0 if percent else (1.0 if value <= 1.0 else float("inf"))
    for _ in range(MAX_DRAWS):
        factor = rng.uniform(0.55, 0.9) if rng.random() < 0.5 else rng.uniform(1.1, 1.6)
        new = round(value * factor, decimals)
        if new >= ceiling or new <= 0 or new == value:
            continue
        if is_unsupported(new, decimals, supported):
            return f"{new:.{decimals}f}"
    return None


def make_changed_number(
    paper: PaperSource,
    index: int,
    number: AbstractNumber,
    supported: Supported,
    rng: random.Random,
) -> Variant | None:
    """The abstract's ``number`` replaced by a value no table supports."""
    literal = _draw_unsupported(
        number.value, number.decimals, number.percent, supported.changes, rng
    )
    if literal is None or literal in paper.tex:
        return None
    tex = paper.tex[: number.start] + literal + paper.tex[number.end :]
    injection = Injection(
        kind="number",
        literal=literal,
        original=number.literal,
        note=f"abstract: {number.literal} -> {literal}",
    )
    return Variant(paper.name, "number", index, tex, paper.bib, injection)


def make_inserted_number(
    paper: PaperSource, index: int, cells: list[Cell], supported: Supported, rng: random.Random
) -> Variant | None:
    """A sentence added to the abstract claiming a result no table supports."""
    abstract = _ABSTRACT.search(paper.tex)
    quoted = mean_cells(cells)
    if not abstract or not quoted:
        return None
    cell = rng.choice(quoted)
    metric = cell.column.replace("_", " ").strip() or "accuracy"
    group = _latex_text(cell.row.split()[-1] if cell.row else "the benchmark")
    change = rng.random() < 0.35
    if change:
        base = rng.uniform(3.0, 60.0)
        literal = _draw_unsupported(base, 1, True, supported.changes, rng)
        template = rng.choice(_CHANGE_SENTENCES)
    else:
        decimals = min(cell.decimals, 4)
        literal = _draw_unsupported(cell.value, decimals, False, supported.values, rng)
        template = rng.choice(_VALUE_SENTENCES)
    if literal is None or literal in paper.tex:
        return None
    sentence = template.format(metric=_latex_text(metric), value=literal, group=group)
    at_end = rng.random() < 0.5
    offset = abstract.end(1) if at_end else abstract.start(1)
    tex = paper.tex[:offset] + "\n" + sentence + "\n" + paper.tex[offset:]
    where = "end" if at_end else "start"
    injection = Injection(kind="number", literal=literal, note=f"abstract {where}: {sentence!r}")
    return Variant(paper.name, "number", index, tex, paper.bib, injection)


def _latex_text(words: str) -> str:
    """Plain words made safe for LaTeX text."""
    return re.sub(r"([_&#%$])", r"\\\1", words)


# ----------------------------------------------------------------------------- figures

_FIGURE_SENTENCES = (
    "As shown in Figure~{n}, the trend holds across all settings.",
    "Figure~{n} illustrates how each run evolves over training.",
    "The complete learning curves are given in Figure~{n}.",
    "As shown in Figure~{n}, the gap between the groups persists.",
)


def make_missing_figure(paper: PaperSource, index: int, rng: random.Random) -> Variant | None:
    """A sentence pointing at "Figure N", N beyond the paper's figures."""
    points = insert_points(paper.tex)
    if not points:
        return None
    n = figure_count(paper.tex) + rng.randint(1, 4)
    sentence = rng.choice(_FIGURE_SENTENCES).format(n=n)
    offset = points[index % len(points)]
    tex = insert_paragraphs(paper.tex, [(offset, sentence)])
    injection = Injection(
        kind="missing_figure", figure=n, note=f"Figure {n} (of {figure_count(paper.tex)})"
    )
    return Variant(paper.name, "missing_figure", index, tex, paper.bib, injection)


# ----------------------------------------------------------------------------- all


@dataclass
class Plan:
    """Variants of one paper, and why a kind has fewer than asked."""

    variants: list[Variant]
    skipped: dict[str, str]


def make_variants(
    paper: PaperSource, counts: Mapping[str, int], fabricated: int, seed: int, this_year: int
) -> Plan:
    """The clean twin and up to ``counts[kind]`` variants of each error kind (each kind draws
    from its own seeded RNG, so one kind's count does not change another's variants)."""

    def rng(kind: str) -> random.Random:
        return random.Random(f"{seed}:{paper.name}:{kind}")

    fab, fig = rng("fabricated"), rng("missing_figure")
    made = {
        "fabricated": _repeat(
            counts["fabricated"], lambda i: make_fabricated(paper, i, fabricated, fab)
        ),
        "wrong_year": _wrong_years(paper, counts["wrong_year"], this_year, rng("wrong_year")),
        "number": _numbers(paper, counts["number"], rng("number")),
        "missing_figure": _repeat(
            counts["missing_figure"], lambda i: make_missing_figure(paper, i, fig)
        ),
    }
    clean = Variant(paper.name, "clean", 0, paper.tex, paper.bib, Injection(kind="clean"))
    variants, skipped = [clean], {}
    for kind, (made_kind, why) in made.items():
        variants += made_kind
        if len(made_kind) < counts[kind]:
            skipped[kind] = f"{len(made_kind)} of {counts[kind]}: {why}"
    return Plan(variants, skipped)


def _repeat(count: int, make: Callable[[int], Variant | None]) -> tuple[list[Variant], str]:
    made = [v for v in (make(i) for i in range(count)) if v is not None]
    return made, "no place to insert a sentence (no \\section)"


def _wrong_years(
    paper: PaperSource, count: int, this_year: int, rng: random.Random
) -> tuple[list[Variant], str]:
    choices = year_choices(paper, this_year)
    if len(choices) > count:  # vary the shift, keep every entry in turn
        head = choices[: len({c[0].key for c in choices})]
        rest = choices[len(head) :]
        rng.shuffle(rest)
        choices = head + rest
    made = [v for c in choices if (v := make_wrong_year(paper, 0, c)) is not None][:count]
    return [replace(v, index=i) for i, v in enumerate(made)], "not enough cited entries with a year"


def _numbers(paper: PaperSource, count: int, rng: random.Random) -> tuple[list[Variant], str]:
    cells = table_cells(paper.tex)
    if not cells:
        return [], "no results table (the number check abstains without one)"
    supported = supported_values(cells, body_numbers(paper.tex))
    changeable = abstract_numbers(paper.tex, cells)
    made: list[Variant] = []
    for attempt in range(count * 4):
        if len(made) == count:
            break
        index = len(made)
        variant = (
            make_changed_number(paper, index, changeable[attempt % len(changeable)], supported, rng)
            if changeable
            else make_inserted_number(paper, index, cells, supported, rng)
        )
        if variant is not None and all(
            v.injection.literal != variant.injection.literal for v in made
        ):
            made.append(variant)
    return made, "no number far enough from every table value was found"
