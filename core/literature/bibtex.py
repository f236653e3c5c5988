"""BibTeX in one place: reading .bib text, citation keys, and the entries we write.

Reading is bibtexparser's splitter (braces, quotes, comments, recovery after a broken entry)
plus the value expressions it leaves as written: ``@string`` macros (case-insensitive, as in
BibTeX) and ``#`` concatenation are resolved here, because bibtexparser 2.0's
``ResolveStringReferencesMiddleware`` only replaces a value that is a macro name on its own.
An entry that needed resolving is rewritten with the resolved values, so that it stands alone
in a references.bib without the ``@string`` lines it came with. A malformed entry is skipped
with a warning that names its line; nothing is dropped without one.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections.abc import Iterator

import bibtexparser
from bibtexparser.model import (
    Block,
    DuplicateBlockKeyBlock,
    DuplicateFieldKeyBlock,
    Entry,
    Field,
    ImplicitComment,
    ParsingFailedBlock,
    String,
)

log = logging.getLogger(__name__)
# bibtexparser logs each broken block with a 0-based line and no file name; _warn below
# says the same with both, so only its errors (its own parser bugs) are let through.
logging.getLogger("bibtexparser.splitter").setLevel(logging.ERROR)

STOPWORDS = frozenset(
    {
        *("a", "an", "the", "on", "of", "in", "for", "to", "and", "with", "by", "from", "at"),
        *("via", "towards", "toward", "is", "are", "do", "does", "how", "what", "why", "when"),
        *("can", "we", "our", "your", "its", "their"),
    }
)
_KEY_OF_ENTRY = re.compile(r"^(\s*@\s*\w+\s*[{(])\s*([^,\s]*)\s*,", re.DOTALL)
_KEY_SAFE = re.compile(r"[^A-Za-z0-9_:.-]")
_LATEX_SPECIALS = re.compile(r"([&%$#_])")
_MACRO_NAME = re.compile(r"[^\s\"#{}=,]+")
_LOOKS_LIKE_ENTRY = re.compile(r"^\s*@\s*\w+\s*[{(]", re.MULTILINE)
_CONFERENCE_WORDS = ("conference", "proceedings", "workshop", "symposium", "iclr", "neurips")
_SUFFIXES = (*"abcdefghijklmnopqrstuvwxyz", *map(str, range(2, 1000)))
# Month macros come with every BibTeX style, so an entry may use them without an @string.
_MONTHS = frozenset(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
)

# ----------------------------------------------------------------------------- keys


def ascii_word(text: str) -> str:
    """Lower-case ASCII letters and digits of ``text`` (accents folded, the rest dropped)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def last_name(author: str) -> str:
    """The family name of 'First Last' or 'Last, First'."""
    author = author.strip()
    if "," in author:
        return author.split(",", 1)[0]
    parts = author.split()
    return parts[-1] if parts else ""


def first_title_word(title: str) -> str:
    """The first word of ``title`` that is not a stop word (as ASCII), or ''."""
    for word in re.split(r"[\s\-:/]+", title):
        cleaned = ascii_word(word)
        if cleaned and cleaned not in STOPWORDS:
            return cleaned
    return ""


def base_key(authors: list[str], year: int | None, title: str) -> str:
    """``lastname`` + ``year`` + first title word, e.g. ``power2022grokking``."""
    name = ascii_word(last_name(authors[0])) if authors else ""
    key = f"{name or 'anon'}{year or ''}{first_title_word(title)}"
    return key if key[0].isalpha() else f"ref{key}"


def safe_key(key: str) -> str:
    """A BibTeX key with only safe characters (never empty)."""
    return _KEY_SAFE.sub("", key) or "ref"


def unique_key(wanted: str, taken: set[str]) -> str:
    """``wanted`` (made safe) if free, else with a, b, c… (then 2, 3…) appended."""
    base = safe_key(wanted)
    for key in (base, *(base + suffix for suffix in _SUFFIXES)):
        if key not in taken:
            return key
    raise ValueError(f"no free BibTeX key near {wanted!r}")


class KeyRegistry:
    """Hands out citation keys, unique across every paper it has seen and stable per paper."""

    def __init__(self) -> None:
        self._by_paper: dict[str, str] = {}
        self._taken: set[str] = set()

    def key_for(self, paper_id: str, authors: list[str], year: int | None, title: str) -> str:
        """The paper's key: the same id always gets the same key; clashes get a, b, c..."""
        if paper_id not in self._by_paper:
            key = unique_key(base_key(authors, year, title), self._taken)
            self._taken.add(key)
            self._by_paper[paper_id] = key
        return self._by_paper[paper_id]


# ----------------------------------------------------------------------------- writing


def escape(text: str) -> str:
    """Escape the characters BibTeX/LaTeX treat specially in plain field values."""
    text = " ".join(text.split()).replace("{", "").replace("}", "")
    return _LATEX_SPECIALS.sub(r"\\\1", text)


def entry_text(kind: str, key: str, fields: list[tuple[str, str]]) -> str:
    """One entry's BibTeX; each value is written as given (braced text or a macro name)."""
    style = bibtexparser.BibtexFormat()
    style.indent = "  "
    entry = Entry(kind, key, [Field(name, value) for name, value in fields])
    library = bibtexparser.Library([entry])
    return bibtexparser.write_string(library, unparse_stack=[], bibtex_format=style).strip()


def make_bibtex(
    key: str,
    *,
    title: str,
    authors: list[str],
    year: int | None,
    venue: str | None,
    ids: dict[str, str],
    url: str | None = None,
) -> str:
    """A BibTeX entry from a record: @inproceedings for conferences, else @article or @misc."""
    fields: list[tuple[str, str]] = [("title", "{" + escape(title) + "}")]
    if authors:
        fields.append(("author", " and ".join(escape(a) for a in authors)))
    if year:
        fields.append(("year", str(year)))
    kind = "misc"
    if venue:
        is_conf = any(w in venue.lower() for w in _CONFERENCE_WORDS)
        kind = "inproceedings" if is_conf else "article"
        fields.append(("booktitle" if is_conf else "journal", escape(venue)))
    if ids.get("doi"):
        fields.append(("doi", ids["doi"]))
    if ids.get("arxiv"):
        fields += [("eprint", ids["arxiv"]), ("archiveprefix", "arXiv")]
    if url:
        fields.append(("url", url))
    return entry_text(kind, key, [(name, "{" + value + "}") for name, value in fields])


# ----------------------------------------------------------------------------- reading


@dataclasses.dataclass(frozen=True)
class BibEntry:
    """One BibTeX entry: its type, key, text, and field values with macros resolved.

    ``text`` is the entry as written, or rewritten with resolved values when it used
    ``@string`` macros or ``#``; ``values`` maps lower-case field names to resolved values
    (outer braces or quotes removed, inner braces kept).
    """

    kind: str
    key: str
    text: str
    values: dict[str, str] = dataclasses.field(default_factory=dict, hash=False)

    def field(self, name: str) -> str:
        """A field's value with every brace removed and spaces collapsed ('' when absent)."""
        value = self.values.get(name.lower(), "")
        return " ".join(value.replace("{", "").replace("}", "").split())


@dataclasses.dataclass(frozen=True)
class _Piece:
    """Part of a resolved value: literal text, or a macro left for BibTeX (``jan``)."""

    text: str
    macro: bool = False


_Macros = dict[str, list[_Piece]]


def parse_bib(text: str, source: str = "") -> list[BibEntry]:
    """Every entry of a .bib text, in order; @string, @preamble and @comment are not entries.

    ``source`` names the text in warnings (a file name). Entries with a duplicate key are all
    returned (the caller decides which to keep); a malformed entry is skipped with a warning.
    """
    library = bibtexparser.parse_string(text, parse_stack=[])
    macros: _Macros = {}
    entries: list[BibEntry] = []
    for block in library.blocks:
        entry = _entry_of(block, macros, source)
        if entry is not None:
            entries.append(entry)
    return entries


def with_key(bibtex: str, key: str) -> BibEntry | None:
    """The first entry of ``bibtex`` re-keyed to ``key``; None when it holds no entry."""
    entries = parse_bib(bibtex)
    if not entries:
        return None
    text = _KEY_OF_ENTRY.sub(lambda m: f"{m.group(1)}{key},", entries[0].text.strip(), count=1)
    return dataclasses.replace(entries[0], key=key, text=text)


def bib_text(entries: list[BibEntry]) -> str:
    """A .bib file's text."""
    return "\n\n".join(entry.text.strip() for entry in entries) + ("\n" if entries else "")


def _entry_of(block: Block, macros: _Macros, source: str) -> BibEntry | None:
    """The entry a block holds (a @string block is added to ``macros``), or None."""
    if isinstance(block, DuplicateFieldKeyBlock):
        names = ", ".join(sorted(block.duplicate_keys))
        _warn(source, block, f"{names} given twice; the first value is used")
    if isinstance(block, DuplicateBlockKeyBlock | DuplicateFieldKeyBlock):
        # A repeated key or field: BibTeX reads the block all the same.
        block = block.ignore_error_block or block
    if isinstance(block, String):
        macros[block.key.lower()] = _resolve(block.value, macros)[0]
    elif isinstance(block, Entry):
        return _bib_entry(block, macros, source)
    elif isinstance(block, ParsingFailedBlock):
        reason = getattr(block.error, "abort_reason", None) or str(block.error)
        _warn(source, block, f"skipped a malformed entry ({reason.strip()})")
    elif isinstance(block, ImplicitComment) and _LOOKS_LIKE_ENTRY.search(block.comment):
        _warn(source, block, "text that looks like an entry was not read (write @type{key, …})")
    return None


def _bib_entry(entry: Entry, macros: _Macros, source: str) -> BibEntry:
    """The entry with its values resolved (the first of a repeated field counts, as in BibTeX)."""
    values: dict[str, str] = {}
    resolved: list[tuple[str, list[_Piece]]] = []
    rewrite = False
    for item in entry.fields:
        name = str(item.key).lower()
        pieces, changed = _resolve(str(item.value), macros)
        rewrite = rewrite or changed
        for piece in pieces:
            if piece.macro and piece.text.lower() not in _MONTHS:
                _warn(source, entry, f"{entry.key}: @string {piece.text!r} is not defined")
        if name not in values:
            values[name] = "".join(piece.text for piece in pieces)
            resolved.append((name, pieces))
    text = str(entry.raw).strip()
    if rewrite:
        fields = [(name, _written(pieces)) for name, pieces in resolved]
        text = entry_text(entry.entry_type, entry.key, fields)
    return BibEntry(kind=entry.entry_type, key=entry.key, text=text, values=values)


def _resolve(value: str, macros: _Macros) -> tuple[list[_Piece], bool]:
    """The pieces of a value expression, and whether it used ``#`` or a defined macro."""
    operands = list(_operands(value))
    pieces: list[_Piece] = []
    changed = len(operands) > 1
    for operand in operands:
        if operand[:1] + operand[-1:] in ("{}", '""') and len(operand) > 1:
            pieces.append(_Piece(operand[1:-1]))
        elif operand.isdigit() or not _MACRO_NAME.fullmatch(operand):
            pieces.append(_Piece(operand))
        elif operand.lower() in macros:
            pieces += macros[operand.lower()]
            changed = True
        else:
            pieces.append(_Piece(operand, macro=True))
    return _merged(pieces), changed


def _operands(value: str) -> Iterator[str]:
    """The parts of ``value`` joined by ``#`` outside braces and quotes."""
    depth, quoted, start = 0, False, 0
    for i, char in enumerate(value):
        if i and value[i - 1] == "\\":
            continue
        if char in "{}":
            depth += 1 if char == "{" else -1
        elif char == '"' and depth == 0:
            quoted = not quoted
        elif char == "#" and depth == 0 and not quoted:
            yield value[start:i].strip()
            start = i + 1
    yield value[start:].strip()


def _merged(pieces: list[_Piece]) -> list[_Piece]:
    out: list[_Piece] = []
    for piece in pieces:
        if out and not piece.macro and not out[-1].macro:
            out[-1] = _Piece(out[-1].text + piece.text)
        else:
            out.append(piece)
    return out


def _written(pieces: list[_Piece]) -> str:
    """A resolved value as BibTeX: braced text, with undefined macros left by name."""
    return " # ".join(p.text if p.macro else "{" + p.text + "}" for p in pieces) or "{}"


def _warn(source: str, block: Block, message: str) -> None:
    line = f"line {block.start_line + 1}" if block.start_line is not None else "a block"
    log.warning("%s%s: %s", f"{source}: " if source else "", line, message)
