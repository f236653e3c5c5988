"""Untrusted text in weasyprint renders as text, and weasyprint reads only the paper's folder.

BibTeX fields and LaTeX come from the model and from the literature; an experiment can plant
files. So paper.html escapes every such string, and every weasyprint call of ours gets a URL
fetcher that serves only files inside the paper's own folder (the review report: nothing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

pytest.importorskip("weasyprint")

from PIL import Image
from pypdf import PdfReader

from reviewer.review.pdf_text import extract_paper
from reviewer.review.report import render_pdf
from scientist.writeup.html import WeasyprintCompiler, paper_html

LEAK = "LEAKED-FROM-OUTSIDE"
PASSWD_LINK = '<link rel=stylesheet href="file:///etc/passwd">'
HOSTNAME_IMG = '<img src="file:///etc/hostname">'
FILLER = " ".join(["The method is evaluated on three small tasks and compared to baselines."] * 6)


def _squash(text: str) -> str:
    """Text without whitespace: weasyprint may wrap a long URL anywhere a space or slash is."""
    return "".join(text.split())


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The fetcher's own log lines about what it refused."""
    return [r.getMessage() for r in caplog.records if r.name == "core.html_fetch"]


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (200, 30, 30)).save(path)
    return path


def _evil_css(tmp_path: Path) -> Path:
    """A stylesheet outside the paper folder that shows itself in the PDF if it is loaded."""
    css = tmp_path / "outside" / "evil.css"
    css.parent.mkdir(parents=True, exist_ok=True)
    css.write_text(f'body::after {{ content: "{LEAK}"; }}', encoding="utf-8")
    return css


def _paper(folder: Path, *, figure: str = "fig.png", author: str = "Ada Lovelace") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tex = (
        "\\documentclass{article}\n\\title{A Safe Title}\n\\begin{document}\n\\maketitle\n"
        f"\\begin{{abstract}}\n{FILLER}\n\\end{{abstract}}\n"
        f"\\section{{Introduction}}\nWe build on prior work \\cite{{evil}}. {FILLER}\n\n"
        f"\\begin{{figure}}\n\\includegraphics[width=0.5\\linewidth]{{{figure}}}\n"
        "\\caption{Validation accuracy.}\n\\label{fig:acc}\n\\end{figure}\n"
        "\\end{document}\n"
    )
    bib = (
        "@article{evil,\n"
        f"  author = {{{author}}},\n"
        f"  title = {{Grokking {HOSTNAME_IMG} revisited}},\n"
        "  journal = {J. <b>Bold</b> Research},\n"
        "  year = {2024<script>alert(1)</script>},\n"
        '  url = {https://example.org/"><img src=x>},\n'
        "  note = {<style>body{display:none}</style>}\n"
        "}\n"
    )
    (folder / "paper.tex").write_text(tex, encoding="utf-8")
    (folder / "references.bib").write_text(bib, encoding="utf-8")
    return folder


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every URL weasyprint asks our fetcher for, in order."""
    from core.html_fetch import FolderURLFetcher

    urls: list[str] = []
    original = FolderURLFetcher.fetch

    def recording(self: FolderURLFetcher, url: str, headers: Any = None) -> Any:
        urls.append(url)
        return original(self, url, headers)

    monkeypatch.setattr(FolderURLFetcher, "fetch", recording)
    return urls


class _Counting(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []  # each server gets a subclass with its own list

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(f'body::before {{ content: "{LEAK}"; }}'.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records every request it gets."""
    hits: list[str] = []
    handler = type("Handler", (_Counting,), {"hits": hits})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_every_bibtex_field_in_paper_html_is_escaped(tmp_path: Path) -> None:
    author = f"<i>x</i> and {PASSWD_LINK}"
    folder = _paper(tmp_path / "paper", author=author)
    page = paper_html((folder / "paper.tex").read_text(), (folder / "references.bib").read_text())
    refs = page.split('<ol class="refs">', 1)[1]
    assert "&lt;i&gt;x&lt;/i&gt;" in refs
    assert "&lt;link rel=stylesheet href=&quot;file:///etc/passwd&quot;&gt;" in refs
    assert "&lt;img src=&quot;file:///etc/hostname&quot;&gt;" in refs
    assert "J. &lt;b&gt;Bold&lt;/b&gt; Research" in refs and "&lt;script&gt;" in refs
    for tag in ("<link", "<img", "<b>", "<script", "<style"):
        assert tag not in refs, tag
    assert refs.count("<i>") == 1  # the title's own italics, nothing from the fields


def test_html_in_bibtex_renders_as_literal_text_and_is_never_fetched(
    tmp_path: Path, fetched: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    evil = _evil_css(tmp_path)
    author = f'<i>x</i> and {PASSWD_LINK} and <link rel="stylesheet" href="file://{evil}">'
    folder = _paper(tmp_path / "paper", author=author)
    _png(folder / "fig.png")
    with caplog.at_level(logging.WARNING):
        result = WeasyprintCompiler().compile(folder, "paper.tex", 60)
    assert result.ok and result.pdf is not None
    text = _squash(extract_paper(result.pdf, max_pages=10, max_mb=5).text)
    assert _squash("<i>x</i>") in text
    assert _squash(PASSWD_LINK) in text
    assert _squash(HOSTNAME_IMG) in text
    assert LEAK not in text
    assert not [u for u in fetched if "passwd" in u or "hostname" in u or "evil.css" in u]
    assert _refusals(caplog) == []  # nothing hostile reached the fetcher at all


def test_figure_inside_the_paper_folder_still_renders(
    tmp_path: Path, fetched: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    folder = _paper(tmp_path / "paper", figure="figs/fig.png")
    _png(folder / "figs" / "fig.png")
    with caplog.at_level(logging.WARNING):
        result = WeasyprintCompiler().compile(folder, "paper.tex", 60)
    assert result.ok and result.pdf is not None
    assert len(PdfReader(result.pdf).pages[0].images) == 1
    assert [u.rsplit("/", 2)[-2:] for u in fetched] == [["figs", "fig.png"]]
    assert _refusals(caplog) == []


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "file-url"])
def test_figure_outside_the_paper_folder_is_refused(
    tmp_path: Path, fetched: list[str], caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    outside = _png(tmp_path / "outside" / "secret.png")
    folder = tmp_path / "paper"
    figure = {
        "dotdot": "../outside/secret.png",
        "absolute": str(outside),
        "symlink": "link.png",
        "file-url": f"file://{outside}",
    }[kind]
    _paper(folder, figure=figure)
    if kind == "symlink":
        (folder / "link.png").symlink_to(outside)
    with caplog.at_level(logging.WARNING):
        result = WeasyprintCompiler().compile(folder, "paper.tex", 60)
    assert result.ok and result.pdf is not None  # the paper renders, without that figure
    assert len(PdfReader(result.pdf).pages[0].images) == 0
    refusals = _refusals(caplog)
    assert refusals and all(str(folder) in line for line in refusals)
    assert any("secret.png" in line or "link.png" in line for line in refusals)


def test_paper_renders_even_when_the_tex_holds_our_placeholder_characters(
    tmp_path: Path,
) -> None:
    folder = _paper(tmp_path / "paper")
    tex = (folder / "paper.tex").read_text()
    (folder / "paper.tex").write_text(tex.replace("We build", "\x047\n\n\x0099\x00 We build"))
    _png(folder / "fig.png")
    result = WeasyprintCompiler().compile(folder, "paper.tex", 60)
    assert result.ok
    page = (folder / "paper.html").read_text()
    assert "\x00" not in page and "\x04" not in page


def test_review_pdf_fetches_nothing_from_files_or_the_network(
    tmp_path: Path,
    loopback: tuple[str, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    evil = _evil_css(tmp_path)
    url, hits = loopback
    page = (
        f'<html><head><link rel="stylesheet" href="file://{evil}">'
        f'<link rel="stylesheet" href="{url}/evil.css"></head>'
        f'<body><p>{FILLER}</p><img src="{url}/pixel.png"><img src="file:///etc/hostname">'
        '<img src="data:image/png;base64,iVBORw0KGgo="></body></html>'
    )
    out = tmp_path / "review.pdf"
    with caplog.at_level(logging.WARNING):
        render_pdf(page, out)
    assert hits == []
    assert LEAK not in extract_paper(out, max_pages=10, max_mb=5).text
    refusals = " ".join(_refusals(caplog))
    for name in ("evil.css", "pixel.png", "/etc/hostname", "data:"):
        assert name in refusals, name
