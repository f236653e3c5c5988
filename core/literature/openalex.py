"""OpenAlex over plain HTTP with an injected ``httpx`` client and the polite-pool ``mailto``."""

from __future__ import annotations

from typing import Any

import httpx

from core.literature.bibtex import base_key, make_bibtex
from core.literature.errors import MalformedResponseError
from core.literature.http import expect_dict, json_body, transport_error
from core.literature.models import Paper, SourceName

NAME: SourceName = "openalex"
SELECT = (
    "id,doi,display_name,publication_year,authorships,primary_location,"
    "cited_by_count,abstract_inverted_index,ids"
)


class OpenAlexSource:
    """``/works`` search and lookup; every request carries the timeouts given."""

    name: SourceName = NAME
    cache_tag = "v1"

    def __init__(
        self,
        client: httpx.Client,
        *,
        base_url: str,
        mailto: str | None,
        timeout: httpx.Timeout,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.mailto = mailto
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str | int]) -> dict[str, Any]:
        if self.mailto:
            params = {**params, "mailto": self.mailto}
        try:
            response = self.client.get(
                f"{self.base_url}{path}", params=params, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, NAME) from exc
        if response.status_code == 404:
            return {}
        return expect_dict(json_body(response, NAME), NAME, path)

    def search(self, query: str, limit: int) -> list[Paper]:
        """The most relevant works for ``query``."""
        data = self._get("/works", {"search": query, "per-page": min(limit, 200), "select": SELECT})
        results = data.get("results")
        if not isinstance(results, list):
            raise MalformedResponseError(f"{NAME}: the answer has no 'results' list.", source=NAME)
        return [paper_from_openalex(work) for work in results[:limit]]

    def fetch(self, paper_id: str) -> Paper | None:
        """The work ``openalex:W...``, or None when OpenAlex does not know it."""
        work = self._get(f"/works/{paper_id.removeprefix('openalex:')}", {"select": SELECT})
        return paper_from_openalex(work) if work else None


def abstract_text(inverted: Any) -> str | None:
    """The abstract from OpenAlex's inverted index ({word: [positions]})."""
    if not isinstance(inverted, dict) or not inverted:
        return None
    slots: dict[int, str] = {}
    for word, positions in inverted.items():
        for position in positions if isinstance(positions, list) else []:
            if isinstance(position, int):
                slots[position] = str(word)
    return " ".join(slots[i] for i in sorted(slots)) or None


def _venue(work: dict[str, Any]) -> str | None:
    location = work.get("primary_location") or {}
    source = location.get("source") if isinstance(location, dict) else None
    return (
        str(source["display_name"])
        if isinstance(source, dict) and source.get("display_name")
        else None
    )


def _ids(work_id: str, work: dict[str, Any]) -> dict[str, str]:
    ids = {"openalex": work_id}
    doi = work.get("doi")
    if isinstance(doi, str) and doi:
        ids["doi"] = doi.removeprefix("https://doi.org/")
    return ids


def paper_from_openalex(work: Any) -> Paper:
    """Our Paper from one OpenAlex work, with a generated BibTeX entry."""
    if not isinstance(work, dict) or not work.get("id") or not work.get("display_name"):
        raise MalformedResponseError(f"{NAME}: a work lacks id or display_name.", source=NAME)
    work_id = str(work["id"]).rsplit("/", 1)[-1]
    authors = [
        str(a["author"]["display_name"])
        for a in work.get("authorships") or []
        if isinstance(a, dict)
        and isinstance(a.get("author"), dict)
        and a["author"].get("display_name")
    ]
    year = work.get("publication_year") if isinstance(work.get("publication_year"), int) else None
    title = " ".join(str(work["display_name"]).split())
    venue, ids = _venue(work), _ids(work_id, work)
    key = base_key(authors, year, title)
    count = work.get("cited_by_count")
    return Paper(
        paper_id=f"openalex:{work_id}",
        title=title,
        authors=authors,
        year=year,
        venue=venue,
        abstract=abstract_text(work.get("abstract_inverted_index")),
        citation_count=count if isinstance(count, int) else None,
        ids=ids,
        bibtex=make_bibtex(key, title=title, authors=authors, year=year, venue=venue, ids=ids),
        citation_key=key,
        source="openalex",
    )
