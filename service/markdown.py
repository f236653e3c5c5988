"""Markdown a stage wrote (a literature review, a plan) as HTML that is safe on a page.

Every character of the text is escaped first; only the block structure (headings, lists,
paragraphs, fenced code) and inline code and bold become tags, ours. Links and raw HTML
stay visible text: a file a model wrote can put nothing active on the page, and nothing
that sends the reader elsewhere. Headings start at ``<h3>`` (the page has h1 and h2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
NUMBERED = re.compile(r"^\s{0,3}\d{1,9}[.)]\s+(.*)$")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"`([^`]+)`")
BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
TOP_HEADING = 3


def inline(text: str) -> str:
    """One line's text, escaped, with `code` and **bold** as tags."""
    parts = CODE_SPAN.split(text)
    out = []
    for index, part in enumerate(parts):
        safe = escape(part)
        out.append(f"<code>{safe}</code>" if index % 2 else BOLD.sub(r"<strong>\1</strong>", safe))
    return "".join(out)


@dataclass
class _Blocks:
    """The HTML built so far and the block being read."""

    html: list[str] = field(default_factory=list)
    paragraph: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    list_tag: str = ""
    code: list[str] | None = None

    def close(self) -> None:
        """End the open paragraph or list."""
        if self.paragraph:
            self.html.append(f"<p>{inline(' '.join(self.paragraph))}</p>")
            self.paragraph = []
        if self.items:
            body = "".join(f"<li>{inline(item)}</li>" for item in self.items)
            self.html.append(f"<{self.list_tag}>{body}</{self.list_tag}>")
            self.items, self.list_tag = [], ""

    def item(self, tag: str, text: str) -> None:
        """A list item; a list of the other kind ends the one before."""
        if self.list_tag != tag or self.paragraph:
            self.close()
        self.list_tag = tag
        self.items.append(text)

    def line(self, text: str) -> None:
        """A line of text: continues a list item (when indented) or a paragraph."""
        if self.items and text.startswith((" ", "\t")):
            self.items[-1] += " " + text.strip()
            return
        if self.items:
            self.close()
        self.paragraph.append(text.strip())

    def fence(self) -> None:
        """Open or close a fenced code block."""
        if self.code is None:
            self.close()
            self.code = []
            return
        self.html.append(f"<pre><code>{escape(chr(10).join(self.code))}</code></pre>")
        self.code = None


def render_markdown(text: str) -> Markup:
    """``text`` as safe HTML (see the module's docstring)."""
    blocks = _Blocks()
    for raw in text.splitlines():
        if FENCE.match(raw):
            blocks.fence()
        elif blocks.code is not None:
            blocks.code.append(raw)
        else:
            _block_line(blocks, raw)
    if blocks.code is not None:  # an unclosed fence runs to the end
        blocks.fence()
    blocks.close()
    return Markup("\n".join(blocks.html))


def _block_line(blocks: _Blocks, raw: str) -> None:
    if not raw.strip():
        blocks.close()
    elif heading := HEADING.match(raw):
        blocks.close()
        level = min(len(heading.group(1)) + TOP_HEADING - 1, 6)
        blocks.html.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
    elif bullet := BULLET.match(raw):
        blocks.item("ul", bullet.group(1))
    elif numbered := NUMBERED.match(raw):
        blocks.item("ol", numbered.group(1))
    else:
        blocks.line(raw)
