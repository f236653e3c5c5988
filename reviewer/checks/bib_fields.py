"""The fields of one bibliography entry, from its text: family names, title, year, venue, DOI
and arXiv id; and the normal forms (names, titles) that lookups and citations compare.

Handles the styles LaTeX papers print: natbib/plainnat/ICLR ("Jonathan Ho, Ajay Jain, and
Pieter Abbeel. Title. In Venue, 2020."), inverted initials (ICML, APA: "Smith, J. and Lee,
K. Title."), quoted titles (IEEE: 'A. Smith, "Title," in Venue, 2020.'). Pure functions.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

YEAR = re.compile(r"(?<![\w./:\-])((?:19|20)\d{2})[a-z]?(?![\w/])")
DOI = re.compile(r"\b(10\.\d{4,9}/[^\s,;\"'<>]+)", re.I)
ARXIV = re.compile(
    r"(?:arxiv(?:\.org/abs/|\.org/pdf/|\s*:\s*|\s*,\s*abs/)|\babs/)"
    r"((?:\d{4}\.\d{4,5})|(?:[a-z\-]+(?:\.[A-Z]{2})?/\d{7}))(?:v\d+)?",
    re.I,
)
_URL = re.compile(
    r"(?:\bURL\s+)?(?:https?://|www\.)\S+|\bdoi:\s*\S+|\b(?:ISBN|ISSN)[\s:]*[\dX][\d\-X ,]*", re.I
)
_PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "le", "la"}
_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}
_INITIAL = re.compile(r"^(?:[A-Z]\.?-?)+$")
_INVERTED = re.compile(r"^[^\W\d_][\w'’\- ]{0,40}?,\s*(?:[A-Z]\.\s*-?\s*)+(?:,|\s+and\b|\s*&|$)")
_TITLE_END = re.compile(
    r"[?!]\s+(?=(?:In\b|arXiv|ArXiv|CoRR|Proceedings|Advances|URL)\b)"
    r"|(?<!\bvs)(?<!\bv)(?<!\be\.g)(?<!\bi\.e)(?<!\bcf)\.\s"
)
_VENUE_CUT = re.compile(
    r",\s*(?:vol(?:ume)?\.?\s|no\.\s|pp?\.|pages\b|\(?\d|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
    r"Oct|Nov|Dec)|\s\d+\s*\(\d+\)|\s+pp\.\s"
)
_TRANSLITERATE = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "đ": "d"})


@dataclass
class EntryFields:
    """What one entry's text says, each field None (or empty) when it cannot be told."""

    authors: list[str] = field(default_factory=list)
    title: str | None = None
    year: int | None = None
    venue: str | None = None
    doi: str | None = None
    arxiv: str | None = None


def ascii_fold(text: str) -> str:
    """``text`` without accents ("Łukasz Rücklé" -> "Lukasz Ruckle")."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def name_key(name: str) -> str:
    """A family name as compared: folded, lower case, letters only ("Sohl-Dickstein" ->
    "sohldickstein")."""
    return re.sub(r"[^a-z]", "", ascii_fold(name).lower())


def title_key(title: str) -> str:
    """A title as compared: folded, lower case, hyphens dropped (a line break may have cut
    "diffusion-based" either way), other punctuation to spaces, words single-spaced."""
    text = ascii_fold(unicodedata.normalize("NFKC", title)).lower()
    text = re.sub(r"[-‐‑–]", "", text)
    return " ".join(re.findall(r"[a-z0-9]+", text))


def parse_fields(text: str) -> EntryFields:
    """Every field of one entry's text (its label already removed)."""
    fields = EntryFields(doi=find_doi(text), arxiv=find_arxiv(text))
    plain = _URL.sub(" ", text)
    quoted = re.search(r"[“\"](.{8,400}?)[,.]?[”\"]", plain)
    if quoted:
        names, title, rest = plain[: quoted.start()], quoted.group(1), plain[quoted.end() :]
    else:
        names, after = split_authors(plain)
        title, rest = split_title(re.sub(r"^\(?(?:19|20)\d{2}[a-z]?\)?[.,]?\s*", "", after))
    fields.authors = family_names(names)
    fields.title = clean_title(title)
    fields.year = find_year(plain[len(names) :] if names else plain)
    fields.venue = find_venue(rest)
    return fields


def find_doi(text: str) -> str | None:
    """The first DOI in ``text``, without a trailing full stop."""
    found = DOI.search(text)
    return found.group(1).rstrip(".").rstrip(")") if found else None


def find_arxiv(text: str) -> str | None:
    """The first arXiv id ("arXiv:2101.00001", "abs/2101.00001", arxiv.org/abs/...)."""
    found = ARXIV.search(text)
    return found.group(1) if found else None


def find_year(text: str) -> int | None:
    """The publication year: a parenthesised year right after the authors (APA), else the last
    year in the text once arXiv ids are gone (natbib puts the year at the end)."""
    text = ARXIV.sub(" ", text)
    early = re.match(r"\s*\(((?:19|20)\d{2})[a-z]?\)", text)
    if early:
        return int(early.group(1))
    years = YEAR.findall(text)
    return int(years[-1]) if years else None


def split_authors(text: str) -> tuple[str, str]:
    """(author list, the rest) of an entry; ("", text) when no author list is recognised.

    The list ends at the first full stop that does not close an initial ("J. Z. Kolter.")
    or, in the inverted style ("Smith, J. and Lee, K."), at an initial followed by a word
    that is neither another initial nor "and".
    """
    inverted = bool(_INVERTED.match(text))
    for stop in re.finditer(r"\.(?=\s+\S)|:(?=\s)", text):
        before = text[: stop.start()].rstrip()
        word = before.rsplit(None, 1)[-1] if before else ""
        following = text[stop.end() :].lstrip()
        if _closes_author_list(word, following, inverted, stop.group() == ":"):
            names = text[: stop.end()]
            if _looks_like_names(names):
                return names, text[stop.end() :].strip()
            return "", text
    return "", text


def _closes_author_list(word: str, following: str, inverted: bool, colon: bool) -> bool:
    if colon:  # LNCS: "Smith, J., Lee, K.: Title"
        return inverted
    bare = word.lstrip("(").rstrip(",")
    if bare == "al":
        return True
    if not _INITIAL.match(bare) or len(bare.replace(".", "").replace("-", "")) > 2:
        return True
    if not inverted:
        return False
    nxt = following.split(None, 1)[0] if following else ""
    return not (_INITIAL.match(nxt) or nxt in {"and", "&"})


def _looks_like_names(names: str) -> bool:
    pieces = _name_pieces(names)
    if not pieces:
        return False
    for piece in pieces:
        words = piece.split()
        if len(words) > 6 and piece != "et al.":
            return False
        capital = [w for w in words if w[0].isupper() or w.lower() in _PARTICLES or w == "al."]
        if len(capital) < len(words) and piece not in {"et al", "et al."}:
            return False
    return True


def _name_pieces(names: str) -> list[str]:
    text = names.strip().rstrip(".:").strip()
    text = re.sub(r"\bet\s+al\.?", "", text)
    parts = re.split(r",\s*(?:and\s+)?|\s+and\s+|\s*&\s*", text)
    return [p.strip() for p in parts if p.strip()]


def family_names(names: str) -> list[str]:
    """Family names, in order, from an author list in any of the styles above."""
    if not names:
        return []
    if _INVERTED.match(names):
        pairs = re.findall(r"(?:^|,|\band\b|&)\s*([^,&]+?),\s*(?:[A-Z][a-z]?\.\s*-?\s*)+", names)
        return [re.sub(r"^and\s+", "", p).strip() for p in pairs if p.strip()]
    return [f for f in (_family(piece) for piece in _name_pieces(names)) if f]


def _family(piece: str) -> str:
    words = [w for w in piece.split() if w.lower().rstrip(",") not in _SUFFIXES]
    if not words:
        return ""
    family = [words[-1]]
    for word in reversed(words[:-1]):
        if word.lower() not in _PARTICLES:
            break
        family.insert(0, word)
    return " ".join(family).rstrip(".,")


def split_title(text: str) -> tuple[str, str]:
    """(title, the rest): the title is the first sentence after the author list."""
    end = _TITLE_END.search(text)
    if not end:
        return text, ""
    return text[: end.start() + 1], text[end.end() :].strip()


def clean_title(title: str) -> str | None:
    """The title without trailing punctuation, year or ", volume N"; None when too short."""
    title = " ".join(title.split()).strip(" .,;")
    title = re.sub(r"(?:,|(?<=[?!]))\s*(?:(?:19|20)\d{2}[a-z]?|volume\s+\d+)$", "", title)
    title = title.strip(" .,;")
    title = title.strip("“”\"'")
    return title if len(re.findall(r"[^\W\d_]{2,}", title)) >= 1 and len(title) >= 4 else None


def find_venue(rest: str) -> str | None:
    """Where it appeared: "arXiv" for preprints, else the text after the title up to the
    volume, pages or year (editors, "In" and publisher cities dropped)."""
    text = " ".join(rest.split())
    if re.match(r"(?:arxiv|corr|preprint|\w+\s+preprint)", text, re.I) or re.match(r"abs/\d", text):
        return "arXiv"
    if text.startswith("URL"):
        return None
    text = re.sub(r"^[,\s]*in:?\s+", "", text, flags=re.I)
    editors = list(re.finditer(r"\((?:eds?\.?|editors?)\),?\s*|\beditors,\s*", text))
    if editors:
        text = text[editors[-1].end() :]
    text = _VENUE_CUT.split(text, maxsplit=1)[0]
    text = re.sub(r"[,.]?\s*(?:19|20)\d{2}[a-z]?\.?$", "", text).strip(" .,;_")
    return text[:150] if len(text) >= 3 else None
