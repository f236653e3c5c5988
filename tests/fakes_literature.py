"""A loopback HTTP server that speaks Semantic Scholar and OpenAlex, and misbehaves on cue.

Paths: ``/graph/v1/paper/search``, ``/graph/v1/paper/<id>`` (Semantic Scholar, answers in
its ``{"total", "offset", "data"}`` shape with ``citationStyles``) and ``/works``,
``/works/<id>`` (OpenAlex, ``{"meta", "results"}`` with inverted-index abstracts). Each
service follows its own script of behaviours: ok, a status (429, 500...), a hang, or
malformed JSON; every request is recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from core.literature.models import Paper, SearchResult, SourceOutcome

GROKKING_S2: dict[str, Any] = {
    "paperId": "a" * 40,
    "title": "Grokking: Generalization Beyond Overfitting on Small Algorithmic Datasets",
    "abstract": "Neural networks trained on small algorithmic datasets generalise long after "
    "they overfit.",
    "year": 2022,
    "venue": "arXiv.org",
    "authors": [
        {"authorId": "1", "name": "Alethea Power"},
        {"authorId": "2", "name": "Yuri Burda"},
    ],
    "citationCount": 321,
    "externalIds": {"ArXiv": "2201.02177", "CorpusId": 245769834},
    "url": "https://www.semanticscholar.org/paper/" + "a" * 40,
    "citationStyles": {
        "bibtex": "@Article{Power2022GrokkingGB,\n author = {Alethea Power and Yuri Burda},\n"
        " journal = {ArXiv},\n title = {Grokking: Generalization Beyond Overfitting on Small "
        "Algorithmic Datasets},\n year = {2022}\n}\n"
    },
}
PROGRESS_S2: dict[str, Any] = {
    "paperId": "b" * 40,
    "title": "Progress measures for grokking via mechanistic interpretability",
    "abstract": "We reverse-engineer a transformer trained on modular addition.",
    "year": 2023,
    "venue": "ICLR",
    "authors": [{"authorId": "3", "name": "Neel Nanda"}],
    "citationCount": 150,
    "externalIds": {"DOI": "10.48550/arXiv.2301.05217"},
    "url": None,
    "citationStyles": None,
}
GROKKING_OPENALEX: dict[str, Any] = {
    "id": "https://openalex.org/W4226399794",
    "doi": "https://doi.org/10.48550/arxiv.2201.02177",
    "display_name": "Grokking: Generalization Beyond Overfitting on Small Algorithmic Datasets",
    "publication_year": 2022,
    "authorships": [{"author": {"display_name": "Alethea Power"}}],
    "primary_location": {"source": {"display_name": "arXiv (Cornell University)"}},
    "cited_by_count": 120,
    "abstract_inverted_index": {"Networks": [0], "generalise": [1], "late": [2]},
}


@dataclass
class Act:
    """One behaviour: ``ok``, ``status`` (with ``status``), ``hang`` or ``malformed``."""

    kind: str = "ok"
    status: int = 200
    body: Any = None


@dataclass
class Service:
    """A service's script (then its default) and the requests it received."""

    script: list[Act] = field(default_factory=list)
    default: Act = field(default_factory=Act)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def next_act(self, request: dict[str, Any], lock: threading.Lock) -> Act:
        with lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else self.default


@dataclass
class FakeLiterature:
    """Both services on one loopback server; ``release`` ends every hang."""

    s2: Service = field(default_factory=Service)
    openalex: Service = field(default_factory=Service)
    s2_papers: list[dict[str, Any]] = field(default_factory=lambda: [GROKKING_S2, PROGRESS_S2])
    openalex_works: list[dict[str, Any]] = field(default_factory=lambda: [GROKKING_OPENALEX])
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def s2_answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path.endswith("/paper/search"):
            limit = int(query.get("limit", ["10"])[0])
            data = self.s2_papers[:limit]
            return 200, {"total": len(data), "offset": 0, "data": data}
        paper_id = path.rsplit("/", 1)[-1]
        for paper in self.s2_papers:
            if paper["paperId"] == paper_id:
                return 200, paper
        return 404, {"error": "Paper with id " + paper_id + " not found"}

    def openalex_answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path.rstrip("/") == "/works":
            limit = int(query.get("per-page", ["25"])[0])
            return 200, {"meta": {"count": 1}, "results": self.openalex_works[:limit]}
        work_id = path.rsplit("/", 1)[-1]
        for work in self.openalex_works:
            if work["id"].endswith(work_id):
                return 200, work
        return 404, {"error": "not found"}


def _handler(fake: FakeLiterature) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            query = parse_qs(parsed.query)
            s2 = parsed.path.startswith("/graph/")
            service = fake.s2 if s2 else fake.openalex
            record = {"path": parsed.path, "query": query, "headers": dict(self.headers)}
            act = service.next_act(record, fake.lock)
            if act.kind == "hang":
                fake.release.wait(30)
                return
            if act.kind == "malformed":
                self._send(200, b'{"data": [ {"paperId": "x", ')
                return
            if act.kind == "status":
                body = act.body if act.body is not None else {"message": f"fake {act.status}"}
                self._send(act.status, json.dumps(body).encode())
                return
            status, body = (fake.s2_answer if s2 else fake.openalex_answer)(parsed.path, query)
            self._send(status, json.dumps(act.body if act.body is not None else body).encode())

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def fake_literature_server() -> Iterator[FakeLiterature]:
    """Serve a FakeLiterature on a free loopback port for the duration of the block."""
    fake = FakeLiterature()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()


class StaticLiterature:
    """A Literature for unit tests: papers per query (or a default), and every query asked."""

    def __init__(
        self,
        by_query: dict[str, list[Paper]] | None = None,
        default: list[Paper] | None = None,
        *,
        answered: bool = True,
    ) -> None:
        self.by_query = by_query or {}
        self.default = default or []
        self.answered = answered
        self.queries: list[str] = []

    def search(self, query: str, limit: int) -> SearchResult:
        """The scripted papers for ``query``; one outcome, answered or failed."""
        self.queries.append(query)
        papers = self.by_query.get(query, self.default)[:limit] if self.answered else []
        outcome = SourceOutcome(
            source="offline",
            ok=self.answered,
            results=len(papers),
            error=None if self.answered else "offline: index missing",
        )
        return SearchResult(query=query, papers=papers, outcomes=[outcome])

    def paper(self, paper_id: str) -> Paper | None:
        """A paper from any scripted list."""
        every = [p for papers in self.by_query.values() for p in papers] + self.default
        return next((p for p in every if p.paper_id == paper_id), None)


def make_paper(record_id: str, title: str, year: int = 2022) -> Paper:
    """An offline Paper with a generated key and BibTeX."""
    key = f"anon{year}{record_id}"
    return Paper(
        paper_id=f"offline:{record_id}",
        title=title,
        year=year,
        venue="ICLR 2022",
        abstract=f"An abstract about {title.lower()}.",
        citation_count=3,
        bibtex=f"@misc{{{key},\n  title = {{{title}}}\n}}",
        citation_key=key,
        source="offline",
    )
