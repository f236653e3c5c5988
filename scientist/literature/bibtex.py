"""Citation keys and BibTeX entries: stable keys, generated entries, re-keyed source entries."""

from __future__ import annotations

import re
import unicodedata

STOPWORDS = frozenset(
    {
        *("a", "an", "the", "on", "of", "in", "for", "to", "and", "with", "by", "from", "at"),
        *("via", "towards", "toward", "is", "are", "do", "does", "how", "what", "why", "when"),
        *("can", "we", "our", "your", "its", "their"),
    }
)
_KEY_OF_ENTRY = re.compile(r"^(\s*@\s*\w+\s*[{(])\s*([^,\s]*)\s*,", re.DOTALL)
_LATEX_SPECIALS = re.compile(r"([&%$#_])")
_CONFERENCE_WORDS = ("conference", "proceedings", "workshop", "symposium", "iclr", "neurips")


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


class KeyRegistry:
    """Hands out citation keys, unique across every paper it has seen and stable per paper."""

    def __init__(self) -> None:
        self._by_paper: dict[str, str] = {}
        self._taken: set[str] = set()

    def key_for(self, paper_id: str, authors: list[str], year: int | None, title: str) -> str:
        """The paper's key: the same id always gets the same key; clashes get a, b, c..."""
        if paper_id in self._by_paper:
            return self._by_paper[paper_id]
        base = base_key(authors, year, title)
        key, n = base, 0
        while key in self._taken:
            key = f"{base}{_suffix(n)}"
            n += 1
        self._taken.add(key)
        self._by_paper[paper_id] = key
        return key


def _suffix(n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return letters[n] if n < len(letters) else f"x{n}"


def escape(text: str) -> str:
    """Escape the characters BibTeX/LaTeX treat specially in plain field values."""
    text = " ".join(text.split()).replace("{", "").replace("}", "")
    return _LATEX_SPECIALS.sub(r"\\\1", text)


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
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}"


def rekey_bibtex(entry: str, key: str) -> str | None:
    """``entry`` with its citation key replaced by ``key``; None if it is not one entry."""
    match = _KEY_OF_ENTRY.match(entry)
    if match is None:
        return None
    return f"{match.group(1)}{key},{entry[match.end() :]}".strip()
