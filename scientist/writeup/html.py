"""``--pdf-engine weasyprint``: the same paper.tex rendered from HTML, without TeX.

A deliberately small LaTeX subset is converted: title, abstract, (sub)sections,
paragraphs, itemize/enumerate, \\textbf/\\emph/\\texttt, inline math shown as text with
common symbols, figures as ``<img>`` with captions, booktabs tables, \\ref as numbers and
\\cite as ``[n]`` with a numbered reference list from references.bib. Anything else loses
its command and keeps its text. It is a fallback for machines without TeX, not a typesetter.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

from core.isolation import Isolation
from core.literature.bibtex import BibEntry, parse_bib
from scientist.writeup.compile import (
    CompileResult,
    LatexCompiler,
    LatexmkCompiler,
    LintWarning,
    LogError,
)
from scientist.writeup.errors import ToolchainMissingError

CSS = """
@page { size: letter; margin: 1in; @bottom-center { content: counter(page); } }
body { font-family: 'DejaVu Serif', serif; font-size: 10.5pt; line-height: 1.35; }
h1 { font-size: 17pt; text-align: center; margin-bottom: 4pt; }
.author { text-align: center; margin-bottom: 14pt; }
.abstract { margin: 0 2.5em 14pt; font-size: 9.5pt; }
.abstract h2 { font-size: 10.5pt; text-align: center; }
h2 { font-size: 12.5pt; margin-top: 14pt; } h3 { font-size: 11pt; }
p { text-align: justify; margin: 0 0 6pt; }
figure { text-align: center; margin: 10pt 0; page-break-inside: avoid; }
figure img { max-width: 80%; }
figcaption, caption { font-size: 9pt; margin: 4pt 0; }
table { border-collapse: collapse; margin: 8pt auto; font-size: 8.5pt; }
th, td { padding: 2pt 6pt; } thead tr { border-bottom: 1px solid black; }
table { border-top: 1.5px solid black; border-bottom: 1.5px solid black; }
.refs li { font-size: 9pt; margin-bottom: 3pt; }
"""
SYMBOLS = {
    "pm": "±",
    "times": "×",
    "leq": "≤",
    "geq": "≥",
    "le": "≤",
    "ge": "≥",
    "neq": "≠",
    "approx": "≈",
    "cdot": "·",
    "infty": "∞",
    "rightarrow": "→",
    "to": "→",
    "sim": "∼",
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "eta": "η",
    "theta": "θ",
    "lambda": "λ",
    "mu": "μ",
    "pi": "π",
    "sigma": "σ",
    "tau": "τ",
    "phi": "φ",
    "omega": "ω",
    "Delta": "Δ",
    "Sigma": "Σ",
    "sum": "∑",
    "in": "∈",
    "circ": "°",
}
_FLOAT = re.compile(r"\\begin\{(figure|table)\*?\}(.*?)\\end\{\1\*?\}", re.DOTALL)
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.DOTALL)
_PLACEHOLDER_CHARS = re.compile(r"[\x00-\x04]")
_CITE = re.compile(r"\\cite[a-zA-Z]*\*?(?:\[[^\]]*\]){0,2}\{([^}]*)\}")


class Numbering:
    """Numbers of sections, figures, tables and cited references, in order of appearance."""

    def __init__(self, tex: str, bib: dict[str, BibEntry]) -> None:
        self.labels: dict[str, str] = {}
        counters = {"section": 0, "figure": 0, "table": 0}
        pattern = re.compile(r"\\section\*?\{|\\begin\{(figure|table)\*?\}|\\label\{([^}]*)\}")
        current = ""
        for match in pattern.finditer(tex):
            if match.group(0).startswith("\\section"):
                counters["section"] += 1
                current = str(counters["section"])
            elif match.group(1):
                counters[match.group(1)] += 1
                current = str(counters[match.group(1)])
            elif match.group(2):
                self.labels[match.group(2)] = current
        self.cited: list[str] = []
        for match in _CITE.finditer(tex):
            for key in (k.strip() for k in match.group(1).split(",")):
                if key in bib and key not in self.cited:
                    self.cited.append(key)

    def cite(self, keys: str) -> str:
        numbers = [
            str(self.cited.index(k) + 1)
            for k in (x.strip() for x in keys.split(","))
            if k in self.cited
        ]
        return f"[{', '.join(numbers)}]" if numbers else ""


def _group(text: str, start: int) -> tuple[str, int]:
    """The content of the brace group opening at ``start`` and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{" and text[i - 1 : i] != "\\":
            depth += 1
        elif text[i] == "}" and text[i - 1 : i] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return text[start + 1 :], len(text)


def _command_arg(text: str, command: str) -> str:
    match = re.search(rf"\\{command}\*?(?:\[[^\]]*\])?\{{", text)
    return _group(text, match.end() - 1)[0] if match else ""


def math_html(tex: str) -> str:
    """Inline math as readable text with common symbols."""
    tex = re.sub(r"\\([A-Za-z]+)", lambda m: SYMBOLS.get(m.group(1), ""), tex)
    pieces = re.split(r"\^(\S)", tex.replace("{", "").replace("}", ""))  # odd: superscripts
    text = "".join(
        f"<sup>{html.escape(p)}</sup>" if i % 2 else html.escape(p) for i, p in enumerate(pieces)
    )
    return f"<i>{text}</i>"


def inline_html(tex: str, numbering: Numbering) -> str:
    """Running text: math, cites, refs, emphasis, escapes; everything else keeps its text."""
    maths: list[str] = []

    def keep_math(match: re.Match[str]) -> str:
        maths.append(math_html(next(g for g in match.groups() if g is not None)))
        return f"\x00{len(maths) - 1}\x00"

    tex = _MATH.sub(keep_math, tex)
    tex = _CITE.sub(lambda m: "\x01" + numbering.cite(m.group(1)) + "\x02", tex)
    tex = re.sub(
        r"\\(?:ref|eqref|autoref)\{([^}]*)\}", lambda m: numbering.labels.get(m.group(1), "?"), tex
    )
    tex = re.sub(r"\\label\{[^}]*\}", "", tex)
    tex = re.sub(r"\\([%#_&$])", r"\1", tex)
    tex = tex.replace("~", "\u00a0").replace("``", "“").replace("''", "”").replace("---", "—")
    tex = tex.replace("--", "–").replace("\\\\", " ")
    text = html.escape(tex, quote=False)
    for command, tag in (("textbf", "b"), ("emph", "em"), ("textit", "em"), ("texttt", "code")):
        text = re.sub(rf"\\{command}\{{([^{{}}]*)\}}", rf"<{tag}>\1</{tag}>", text)
    text = re.sub(r"\\[A-Za-z@]+\*?(?:\[[^\]]*\])?", "", text)
    text = text.replace("{", "").replace("}", "").replace("\x01", "").replace("\x02", "")
    return re.sub(r"\x00(\d+)\x00", lambda m: maths[int(m.group(1))], text)


def table_html(body: str, numbering: Numbering) -> str:
    """A table float: caption and the tabular's rows (booktabs rules dropped)."""
    caption = inline_html(_command_arg(body, "caption"), numbering)
    label = numbering.labels.get(_command_arg(body, "label"), "")
    match = re.search(r"\\begin\{tabular\}\{[^}]*\}(.*?)\\end\{tabular\}", body, re.DOTALL)
    rows = []
    raw_rows = match.group(1).split("\\\\") if match else []
    for index, raw in enumerate(r for r in raw_rows if r.strip()):
        raw = re.sub(r"\\(?:toprule|midrule|bottomrule|hline)", "", raw).strip()
        if not raw:
            continue
        tag = "th" if index == 0 else "td"
        cells = "".join(
            f"<{tag}>{inline_html(c.strip(), numbering)}</{tag}>"
            for c in re.split(r"(?<!\\)&", raw)
        )
        rows.append(f"<tr>{cells}</tr>")
    head, rest = (rows[:1], rows[1:]) if rows else ([], [])
    return (
        f"<table><caption>Table {label}: {caption}</caption><thead>{''.join(head)}</thead>"
        f"<tbody>{''.join(rest)}</tbody></table>"
    )


def figure_html(body: str, numbering: Numbering) -> str:
    """A figure float as an image with its caption."""
    src = html.escape(_command_arg(body, "includegraphics"))
    caption = inline_html(_command_arg(body, "caption"), numbering)
    label = numbering.labels.get(_command_arg(body, "label"), "")
    return f'<figure><img src="{src}"><figcaption>Figure {label}: {caption}</figcaption></figure>'


def blocks_html(tex: str, numbering: Numbering) -> str:
    """Paragraphs, headings and lists of a piece of body text."""
    out = []
    tex = re.sub(r"\\begin\{(?:itemize|enumerate)\}", "\n\n\x03ul\n\n", tex)
    tex = re.sub(r"\\end\{(?:itemize|enumerate)\}", "\n\n\x03/ul\n\n", tex)
    tex = tex.replace("\\item", "\n\n\x03li")
    for para in re.split(r"\n\s*\n", tex):
        para = para.strip()
        if not para:
            continue
        if para in ("\x03ul", "\x03/ul"):
            out.append("<ul>" if para == "\x03ul" else "</ul>")
        elif para.startswith("\x03li"):
            out.append(f"<li>{inline_html(para[3:].strip(), numbering)}</li>")
        elif (heading := re.match(r"\\(sub)?section\*?\{", para)) is not None:
            title, end = _group(para, heading.end() - 1)
            level = "h3" if heading.group(1) else "h2"
            number = numbering.labels.get(_command_arg(para, "label"), "")
            out.append(f"<{level}>{number} {inline_html(title, numbering)}</{level}>")
            rest = para[end:].strip()
            if rest:
                out.append(f"<p>{inline_html(rest, numbering)}</p>")
        else:
            out.append(f"<p>{inline_html(para, numbering)}</p>")
    return "\n".join(out)


def references_html(numbering: Numbering, bib: dict[str, BibEntry]) -> str:
    """The numbered reference list of cited entries."""
    if not numbering.cited:
        return ""
    items = "".join(f"<li>{reference_html(bib[key])}</li>" for key in numbering.cited)
    return f'<h2>References</h2><ol class="refs">{items}</ol>'


def reference_html(entry: BibEntry) -> str:
    """One reference: author. <i>title</i>. venue. year. Every field is escaped text.

    The fields come from the model and from literature APIs, so none of them may carry
    markup: an author field such as ``<link href="file:///…">`` must print as written.
    """
    venue = entry.field("journal") or entry.field("booktitle") or entry.field("venue")
    title = entry.field("title")
    parts = [
        html.escape(entry.field("author")),
        f"<i>{html.escape(title)}</i>" if title else "",
        html.escape(venue),
        html.escape(entry.field("year")),
    ]
    return ". ".join(p for p in parts if p) + "."


def paper_html(tex: str, bib_text: str) -> str:
    """The HTML of an assembled paper.tex."""
    # \x00-\x04 mark placeholders below; model text that holds them must not reach them.
    tex, bib_text = _PLACEHOLDER_CHARS.sub("", tex), _PLACEHOLDER_CHARS.sub("", bib_text)
    tex = re.sub(r"(?<!\\)%.*", "", tex)
    bib = {entry.key: entry for entry in parse_bib(bib_text)}
    numbering = Numbering(tex, bib)
    title = inline_html(_command_arg(tex, "title"), numbering)
    body = tex.split("\\begin{document}", 1)[-1].split("\\end{document}", 1)[0]
    body = re.sub(r"\\(?:maketitle|bibliographystyle\{[^}]*\}|bibliography\{[^}]*\})", "", body)
    abstract = re.search(r"\\begin\{abstract\}(.*?)\\end\{abstract\}", body, re.DOTALL)
    body = body.replace(abstract.group(0), "") if abstract else body
    floats: list[str] = []

    def keep_float(match: re.Match[str]) -> str:
        render = figure_html if match.group(1) == "figure" else table_html
        floats.append(render(match.group(2), numbering))
        return f"\n\n\x04{len(floats) - 1}\n\n"

    body = blocks_html(_FLOAT.sub(keep_float, body), numbering)
    body = re.sub(r"<p>\x04(\d+)</p>", lambda m: floats[int(m.group(1))], body)
    abstract_html = (
        (
            f'<div class="abstract"><h2>Abstract</h2>'
            f"{blocks_html(abstract.group(1), numbering)}</div>"
        )
        if abstract
        else ""
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{CSS}</style></head>'
        f'<body><h1>{title}</h1><div class="author">Anonymous</div>{abstract_html}'
        f"{body}{references_html(numbering, bib)}</body></html>"
    )


class WeasyprintCompiler:
    """Renders paper.tex through HTML with weasyprint; never fails on LaTeX syntax."""

    engine = "weasyprint"

    def preflight(self, template_dir: Path, tex_name: str, timeout_s: float) -> None:
        """weasyprint and its system libraries (Pango) load."""
        try:
            import weasyprint  # noqa: F401
        except (ImportError, OSError) as exc:
            raise ToolchainMissingError(
                f"weasyprint cannot load ({exc}). Install its libraries with `sudo apt-get install "
                "-y libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 "
                "libfontconfig1 fonts-dejavu-core`, or use --pdf-engine latex."
            ) from exc

    def compile(
        self, folder: Path, tex_name: str, timeout_s: float, *, bibliography: bool = True
    ) -> CompileResult:
        """paper.html and paper.pdf from paper.tex and references.bib."""
        from weasyprint import HTML

        # Lazy, as weasyprint above: html_fetch imports weasyprint (Pango, PDF path only).
        from core.html_fetch import FolderURLFetcher

        start = time.perf_counter()
        tex = (folder / tex_name).read_text(encoding="utf-8")
        bib = folder / "references.bib"
        page = paper_html(tex, bib.read_text(encoding="utf-8") if bib.is_file() else "")
        stem = Path(tex_name).stem
        (folder / f"{stem}.html").write_text(page, encoding="utf-8")
        pdf = folder / f"{stem}.pdf"
        try:
            fetcher = FolderURLFetcher(folder)  # figures from this folder only
            HTML(string=page, base_url=str(folder), url_fetcher=fetcher).write_pdf(str(pdf))
        except (OSError, ValueError) as exc:
            error = LogError(message=f"weasyprint: {exc}")
            return CompileResult(ok=False, errors=[error], seconds=time.perf_counter() - start)
        return CompileResult(ok=True, pdf=pdf, seconds=time.perf_counter() - start)

    def lint(self, folder: Path, tex_name: str) -> list[LintWarning]:
        """No linter for the HTML path."""
        return []


def compiler_for(engine: str, isolation: Isolation = "bwrap") -> LatexCompiler:
    """The compiler seam for ``--pdf-engine``: latexmk (boxed per ``isolation``), or
    weasyprint from HTML."""
    return WeasyprintCompiler() if engine == "weasyprint" else LatexmkCompiler(isolation)
