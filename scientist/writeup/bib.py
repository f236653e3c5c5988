"""BibTeX entries as data: split a .bib, read a few fields, re-key, keep only what is cited."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENTRY_START = re.compile(r"@(\w+)\s*\{\s*([^,\s]+)\s*,", re.MULTILINE)
_KEY_SAFE = re.compile(r"[^A-Za-z0-9_:.-]")


@dataclass(frozen=True)
class BibEntry:
    """One BibTeX entry: its type, key and full text (with that key)."""

    kind: str
    key: str
    text: str

    def field(self, name: str) -> str:
        """A field's value with outer braces or quotes removed ('' when absent)."""
        match = re.search(rf"\b{name}\s*=\s*", self.text, re.IGNORECASE)
        if not match:
            return ""
        rest = self.text[match.end() :]
        if rest.startswith("{"):
            depth = 0
            for i, ch in enumerate(rest):
                depth += ch == "{"
                depth -= ch == "}"
                if depth == 0:
                    return re.sub(r"[{}]", "", rest[1:i]).strip()
            return ""
        if rest.startswith('"'):
            end = rest.find('"', 1)
            return rest[1:end].strip() if end > 0 else ""
        return re.split(r"[,}\n]", rest, maxsplit=1)[0].strip()


def parse_bib(text: str) -> list[BibEntry]:
    """Every entry in a .bib text (comments and @string/@preamble skipped)."""
    entries: list[BibEntry] = []
    for match in _ENTRY_START.finditer(text):
        kind = match.group(1).lower()
        if kind in ("string", "preamble", "comment"):
            continue
        end = _entry_end(text, match.start() + text[match.start() :].index("{"))
        entries.append(BibEntry(kind=kind, key=match.group(2), text=text[match.start() : end]))
    return entries


def _entry_end(text: str, brace: int) -> int:
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def safe_key(key: str) -> str:
    """A BibTeX key with only safe characters (never empty)."""
    return _KEY_SAFE.sub("", key) or "ref"


def unique_key(wanted: str, taken: set[str]) -> str:
    """``wanted`` if free, else ``wanted`` + a, b, c… (then numbers)."""
    base = safe_key(wanted)
    if base not in taken:
        return base
    for suffix in [*"abcdefghijklmnopqrstuvwxyz", *map(str, range(2, 1000))]:
        if base + suffix not in taken:
            return base + suffix
    raise ValueError(f"no free BibTeX key near {wanted!r}")


def with_key(bibtex: str, key: str) -> BibEntry | None:
    """The first entry of ``bibtex`` re-keyed to ``key``; None when it holds no entry."""
    entries = parse_bib(bibtex)
    if not entries:
        return None
    entry = entries[0]
    text = _ENTRY_START.sub(lambda m: f"@{m.group(1)}{{{key},", entry.text, count=1)
    return BibEntry(kind=entry.kind, key=key, text=text.strip())


def bib_text(entries: list[BibEntry]) -> str:
    """A .bib file's text."""
    return "\n\n".join(entry.text.strip() for entry in entries) + ("\n" if entries else "")
