"""Semantic Scholar through the ``semanticscholar`` package (0.12.0).

The package builds the URLs, fields and pagination and parses its Paper objects; its HTTP
layer is replaced by ``StrictRequester`` because the shipped one retries 429 for up to four
minutes (``retry=True``), returns ``{}`` for 502/503 (indistinguishable from "no results"),
has a single timeout for connect and read, and raises KeyError on a 500 without a JSON
``message``. Ours maps every answer to a typed error and uses a short connect timeout; the
caller adds the bounded retry policy, the rate limit and the deadline.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote_plus

import httpx
from semanticscholar import SemanticScholar
from semanticscholar.ApiRequester import ApiRequester

from core.literature.bibtex import base_key, make_bibtex, with_key
from core.literature.errors import MalformedResponseError, SourceError
from core.literature.http import expect_dict, json_body, transport_error
from core.literature.models import Paper, SourceName

NAME: SourceName = "semantic_scholar"
FIELDS = [
    "paperId",
    "title",
    "abstract",
    "year",
    "venue",
    "authors",
    "citationCount",
    "externalIds",
    "url",
    "citationStyles",
]


class PaperNotFound(SourceError):
    """HTTP 404 for a paper id: the paper does not exist there (not a source failure)."""


class StrictRequester(ApiRequester):
    """The package's requester interface over httpx, with typed errors and no retries."""

    def __init__(self, timeout: httpx.Timeout) -> None:
        super().__init__(timeout=timeout, retry=False)

    async def get_data_async(
        self,
        url: str,
        parameters: str,
        headers: dict[str, str],
        payload: dict[str, Any] | None = None,
    ) -> Any:
        """GET (or POST with ``payload``) one page; raise a typed error for anything but 2xx."""
        method = "POST" if payload else "GET"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.request(
                    method, url, params=parameters.lstrip("&"), headers=headers, json=payload
                )
        except httpx.HTTPError as exc:
            raise transport_error(exc, NAME) from exc
        if response.status_code == 404:
            raise PaperNotFound(f"{NAME}: not found: {url}", source=NAME, status=404)
        body = expect_dict(json_body(response, NAME), NAME, "a page")
        if url.endswith("/search") and not isinstance(body.get("data"), list):
            # the package would read a page without "data" as "no results"
            raise MalformedResponseError(f"{NAME}: the answer has no 'data' list.", source=NAME)
        return body


def api_key(configured: str | None) -> str | None:
    """The configured key, else ``S2_API_KEY`` from the environment (read at call time)."""
    return configured or os.environ.get("S2_API_KEY") or None


class SemanticScholarSource:
    """Search and paper lookup; one short-lived client per call, so key changes apply."""

    name: SourceName = NAME
    cache_tag = "v1"

    def __init__(self, *, api_url: str | None, key: str | None, timeout: httpx.Timeout) -> None:
        self.api_url = api_url
        self.key = key
        self.timeout = timeout

    def _client(self) -> SemanticScholar:
        client = SemanticScholar(
            timeout=30, api_key=api_key(self.key), api_url=self.api_url, retry=False
        )
        # 0.12.0 keeps its requester here; ours replaces it (see the module docstring).
        client._AsyncSemanticScholar._requester = StrictRequester(self.timeout)
        return client

    def search(self, query: str, limit: int) -> list[Paper]:
        """The first page of a relevance search (``.items``; iterating would fetch 1000)."""
        # The package pastes the query into the query string unescaped: escape it here.
        results = self._client().search_paper(
            quote_plus(query), limit=min(limit, 100), fields=FIELDS
        )
        return [paper_from_s2(item.raw_data) for item in results.items[:limit]]

    def fetch(self, paper_id: str) -> Paper | None:
        """The paper ``s2:<id>`` (or any id S2 accepts, e.g. ``DOI:...``), or None."""
        try:
            item = self._client().get_paper(paper_id.removeprefix("s2:"), fields=FIELDS)
        except PaperNotFound:
            return None
        return paper_from_s2(item.raw_data)


def _ids(data: dict[str, Any]) -> dict[str, str]:
    external = data.get("externalIds") or {}
    ids = {"s2": str(data["paperId"])}
    for ours, theirs in (("doi", "DOI"), ("arxiv", "ArXiv")):
        if isinstance(external, dict) and external.get(theirs):
            ids[ours] = str(external[theirs])
    return ids


def paper_from_s2(data: dict[str, Any]) -> Paper:
    """Our Paper from one S2 record; BibTeX from ``citationStyles`` when present, re-keyed."""
    if not isinstance(data, dict) or not data.get("paperId") or not data.get("title"):
        raise MalformedResponseError(f"{NAME}: a paper record lacks paperId or title.", source=NAME)
    authors = [str(a.get("name")) for a in data.get("authors") or [] if isinstance(a, dict)]
    year = data.get("year") if isinstance(data.get("year"), int) else None
    title = " ".join(str(data["title"]).split())
    ids = _ids(data)
    key = base_key(authors, year, title)
    styles = data.get("citationStyles") or {}
    given = styles.get("bibtex") if isinstance(styles, dict) else None
    rekeyed = with_key(given, key) if isinstance(given, str) else None
    venue = data.get("venue") or None
    return Paper(
        paper_id=f"s2:{data['paperId']}",
        title=title,
        authors=authors,
        year=year,
        venue=venue,
        abstract=data.get("abstract") or None,
        citation_count=data.get("citationCount"),
        ids=ids,
        bibtex=rekeyed.text
        if rekeyed
        else make_bibtex(
            key, title=title, authors=authors, year=year, venue=venue, ids=ids, url=data.get("url")
        ),
        citation_key=key,
        source="semantic_scholar",
    )
