"""The only URL fetcher our weasyprint calls use: files inside one folder, nothing else.

weasyprint's default fetcher reads any ``file://`` path and any ``http(s)://`` URL a page
names, and our pages carry text from models, papers and experiments. This one serves a
file only when its real path (symlinks resolved) lies inside ``root``; it refuses every
other ``file://`` path, every network scheme and ``data:`` URLs too (our pages never
emit them, so refusing keeps the rule "only the folder's files" without exceptions).
Each refusal is logged with the URL; weasyprint then renders the page without it.

Import this module only where weasyprint is used: importing weasyprint needs Pango.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from weasyprint.urls import URLFetcher, URLFetcherResponse

log = logging.getLogger(__name__)


class URLRefusedError(ValueError):
    """weasyprint asked for a URL outside what the page may read."""


def folder_file(url: str, root: Path | None) -> Path | None:
    """The real path ``url`` names when it is a file inside ``root``; None otherwise."""
    parts = urlsplit(url)
    if root is None or parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    try:
        path = Path(url2pathname(unquote(parts.path))).resolve()
        inside = path.is_relative_to(root.resolve())
        return path if inside and path.is_file() else None
    except (OSError, ValueError):  # a NUL byte or an unreadable path is not ours to serve
        return None


class FolderURLFetcher(URLFetcher):
    """A weasyprint URL fetcher that serves files inside ``root`` and refuses the rest.

    ``root=None`` refuses everything (a page with all its resources inline).
    """

    def __init__(self, root: Path | None) -> None:
        super().__init__(allowed_protocols=("file",), allow_redirects=False)
        self.root = root

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        """The file ``url`` names, or URLRefusedError (weasyprint logs it and goes on)."""
        path = folder_file(url, self.root)
        if path is None:
            allowed = f"files inside {self.root}" if self.root is not None else "nothing"
            log.warning("weasyprint: refused %s (this page may load %s)", url, allowed)
            raise URLRefusedError(f"refused {url}: this page may load {allowed}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(
            path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
        )
