"""Model LaTeX as data: cleaning, escaping, dangerous-command stripping, and small queries.

The writer model returns LaTeX; it is never trusted. ``clean_model_latex`` removes what
a section body must not contain (preamble commands, file and shell access, catcode tricks)
and escapes special characters that are evidently meant as text (``50%``, ``data_set``,
``R&D``, ``#1``, a lone ``$5``). Text that is plain by nature (titles, figure notes, run
names) goes through pylatex's ``escape_latex`` instead.
"""

from __future__ import annotations

import re
import unicodedata

from pylatex.utils import escape_latex


def words(*lines: str) -> frozenset[str]:
    """The whitespace-separated words of ``lines``, as a set."""
    return frozenset(word for line in lines for word in line.split())


# File, shell and catcode access, definitions, preamble-only and bibliography commands.
FORBIDDEN_COMMANDS = words(
    "input include includeonly InputIfFileExists IfFileExists write immediate openout openin",
    "read readline newread newwrite closeout closein catcode lccode uccode mathcode def edef",
    "gdef xdef let futurelet newcommand renewcommand providecommand DeclareRobustCommand",
    "NewDocumentCommand RenewDocumentCommand newenvironment renewenvironment usepackage",
    "RequirePackage documentclass special directlua latelua luaexec ShellEscape verbatiminput",
    "lstinputlisting includegraphics bibliography bibliographystyle nocite csname endcsname",
    "expandafter string scantokens pdfprimitive primitive outer global jobname everypar",
    "everymath output shipout dump caption batchmode errorstopmode nonstopmode scrollmode",
    "endinput pdfobj pdfliteral pdfximage maketitle title author date tableofcontents newpage",
    "clearpage pagebreak",
)
# Ways to reach a forbidden command without spelling its name: catcode switches that make
# @/_ letters, commands that build or copy a command from a name, file reads by primitive.
# Any control word with an @ in its name (``\@@input``, ``\@namedef``) is forbidden too.
NAME_TRICK_COMMANDS = words(
    "makeatletter makeatother ExplSyntaxOn ExplSyntaxOff UseName ExpandArgs NewCommandCopy",
    "RenewCommandCopy DeclareCommandCopy csuse ifcsname begincsname lastnamedcs csdef csgdef",
    "csedef csxdef cslet letcs csletcs ProvideDocumentCommand DeclareDocumentCommand",
    "NewExpandableDocumentCommand RenewExpandableDocumentCommand NewDocumentEnvironment",
    "RenewDocumentEnvironment DeclareDocumentEnvironment pdffiledump pdfmdfivesum pdffilesize",
    "pdffilemoddate filedump filemdfivesum filesize filemoddate inputminted import subimport",
    "subfile includepdf includestandalone LoadClass",
)
# Removed with their content (files, floats: figures and tables are placed by code) ...
REMOVED_ENVIRONMENTS = (
    "filecontents",
    "filecontents*",
    "verbatimwrite",
    "thebibliography",
    "figure",
    "figure*",
    "table",
    "table*",
    "wrapfigure",
    "tikzpicture",
)
# ... or unwrapped, keeping the content.
UNWRAPPED_ENVIRONMENTS = ("document", "abstract")
MATH_ENVIRONMENTS = frozenset(
    {
        "equation",
        "equation*",
        "align",
        "align*",
        "gather",
        "gather*",
        "multline",
        "multline*",
        "eqnarray",
        "eqnarray*",
        "math",
        "displaymath",
        "flalign",
        "flalign*",
    }
)
ALIGNMENT_ENVIRONMENTS = frozenset(
    {
        "tabular",
        "tabular*",
        "tabularx",
        "array",
        "align",
        "align*",
        "eqnarray",
        "eqnarray*",
        "flalign",
        "flalign*",
        "matrix",
        "pmatrix",
        "bmatrix",
        "cases",
        "aligned",
    }
)
UNICODE_ASCII = {
    "\u2013": "--",
    "\u2014": "---",
    "\u2018": "`",
    "\u2019": "'",
    "\u201c": "``",
    "\u201d": "''",
    "\u2026": "...",
    "\u00b1": r"$\pm$",
    "\u00d7": r"$\times$",
    "\u2264": r"$\leq$",
    "\u2265": r"$\geq$",
    "\u2192": r"$\rightarrow$",
    "\u00a0": "~",
    "\u2212": "-",
    "\u2248": r"$\approx$",
    "\u00b0": r"$^\circ$",
}
_TOKEN = re.compile(
    r"\\begin\{(?P<begin>[^}]*)\}|\\end\{(?P<end>[^}]*)\}|\\(?P<cmd>[A-Za-z@]+\*?)"
    r"|\\(?P<sym>.)|(?P<dollars>\$\$?)|(?P<special>[%#_&^])|(?P<nl>\n)",
    re.DOTALL,
)
_CITE = re.compile(r"\\(?:cite[a-zA-Z]*|nocite)\*?((?:\[[^\]]*\]){0,2})\{([^}]*)\}")
_REF = re.compile(r"\\(?:ref|eqref|autoref|cref|Cref)\{([^}]*)\}")
_FENCE = re.compile(r"^\s*```.*$", re.MULTILINE)
_BOLD_MD = re.compile(r"\*\*([^*\n]+)\*\*")
_HEADING = re.compile(r"^\s*\\(?:sub)*section\*?\{([^}]*)\}\s*(?:\\label\{[^}]*\})?\s*$", re.M)
_MD_HEADING = re.compile(r"^\s*#{1,6}\s+", re.MULTILINE)


def to_latex_safe_unicode(text: str) -> str:
    """Replace characters pdflatex's utf8 input cannot typeset by ASCII or math equivalents."""
    text = "".join(UNICODE_ASCII.get(ch, ch) for ch in text)
    kept = []
    for ch in text:
        if ord(ch) < 128 or ("\u00c0" <= ch <= "\u00ff" and ch not in "\u00d7\u00f7"):
            kept.append(ch)
            continue
        ascii_form = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        kept.append(ascii_form)
    return "".join(kept)


def _skip_group(text: str, start: int, open_ch: str, close_ch: str) -> int:
    """Index just past the balanced group opening at ``start`` (or ``start`` if none)."""
    if start >= len(text) or text[start] != open_ch:
        return start
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "\\":
            continue
        if text[i] == open_ch and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif text[i] == close_ch and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _skip_arguments(text: str, pos: int) -> int:
    """Index past a command's optional ``*``, ``[...]`` and ``{...}`` arguments."""
    while True:
        probe = pos
        while probe < len(text) and text[probe] in " \t":
            probe += 1
        if probe < len(text) and text[probe] == "*":
            probe += 1
        if probe < len(text) and text[probe] in "[{":
            close = "]" if text[probe] == "[" else "}"
            pos = _skip_group(text, probe, text[probe], close)
            continue
        return pos


def is_forbidden(name: str) -> bool:
    """Whether model LaTeX may not use the control word ``\\<name>``; ``\\@`` (the space
    factor after a capital) is the one @-name allowed."""
    if name in FORBIDDEN_COMMANDS or name in NAME_TRICK_COMMANDS:
        return True
    return "@" in name and name != "@"


def strip_forbidden(text: str) -> tuple[str, list[str]]:
    """Remove forbidden commands (with their arguments) and environments; list what went."""
    removed: list[str] = []
    text = text.replace("^^", "^{}^{}")  # TeX's ^^5c notation would spell a backslash
    for env in REMOVED_ENVIRONMENTS:
        pattern = re.compile(
            r"\\begin\{" + re.escape(env) + r"\}.*?(\\end\{" + re.escape(env) + r"\}|\Z)",
            re.DOTALL,
        )
        if pattern.search(text):
            removed.append(f"environment {env}")
            text = pattern.sub("", text)
    out, pos = [], 0
    for match in re.finditer(r"\\([A-Za-z@]+)", text):
        if match.start() < pos:
            continue
        name = match.group(1)
        if not is_forbidden(name):
            continue
        removed.append(f"\\{name}")
        out.append(text[pos : match.start()])
        pos = _skip_arguments(text, match.end())
    out.append(text[pos:])
    text = "".join(out)
    for env in UNWRAPPED_ENVIRONMENTS:
        text = text.replace(f"\\begin{{{env}}}", "").replace(f"\\end{{{env}}}", "")
    return text, removed


def _balance_dollars(text: str) -> str:
    """With an odd number of unescaped ``$``, escape the ones that read as money, else all."""
    positions = [m.start() for m in re.finditer(r"(?<!\\)\$", text)]
    if len(positions) % 2 == 0:
        return text
    money = [p for p in positions if p + 1 < len(text) and text[p + 1].isdigit()]
    chosen = set(money) if len(money) % 2 == 1 else set(positions)
    return "".join("\\$" if i in chosen else ch for i, ch in enumerate(text))


def escape_specials(text: str) -> str:
    """Escape ``% # _ & ^`` where LaTeX would misread them as text; math stays as it is."""
    text = _balance_dollars(text)
    out: list[str] = []
    pos, math, envs = 0, False, []
    for match in _TOKEN.finditer(text):
        out.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if match.group("begin") is not None:
            envs.append(match.group("begin"))
        elif match.group("end") is not None:
            if envs and envs[-1] == match.group("end"):
                envs.pop()
        elif match.group("sym") in ("(", "["):
            math = True
        elif match.group("sym") in (")", "]"):
            math = False
        elif match.group("dollars"):
            math = not math
        elif match.group("special"):
            token = _escape_special(token, math or bool(set(envs) & MATH_ENVIRONMENTS), envs)
        out.append(token)
    out.append(text[pos:])
    return "".join(out)


def _escape_special(char: str, in_math: bool, envs: list[str]) -> str:
    if char in "%#":
        return "\\" + char
    if char == "&":
        return char if set(envs) & ALIGNMENT_ENVIRONMENTS else "\\&"
    if in_math:
        return char
    return "\\_" if char == "_" else "\\^{}"


def clean_model_latex(text: str, title: str) -> tuple[str, list[str]]:
    """A section body from a model's reply: fences, headings, preamble, danger removed.

    Returns the cleaned LaTeX and notes of what code removed (for warnings).
    """
    text = _FENCE.sub("", text.replace("\r\n", "\n"))
    text = _BOLD_MD.sub(r"\\textbf{\1}", text)
    text = _MD_HEADING.sub("", text)
    text = _HEADING.sub(lambda m: "" if _same_title(m.group(1), title) else m.group(0), text)
    text = re.sub(r"\\section(\*?)\{", r"\\subsection\1{", text)
    text = to_latex_safe_unicode(text)
    text, removed = strip_forbidden(text)
    text = escape_specials(text)
    text = re.sub(r"^\s*(?:Abstract|ABSTRACT)\s*[:.]?\s*$", "", text, flags=re.MULTILINE)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text, [f"removed {item}" for item in removed]


def _same_title(heading: str, title: str) -> bool:
    norm = re.compile(r"[^a-z]")
    a, b = norm.sub("", heading.lower()), norm.sub("", title.lower())
    return a == b or a in b or b in a


def cite_keys(text: str) -> list[str]:
    """Every key cited in ``text``, in order, without duplicates."""
    keys: list[str] = []
    for match in _CITE.finditer(text):
        for key in match.group(2).split(","):
            key = key.strip()
            if key and key not in keys:
                keys.append(key)
    return keys


def keep_known_cites(text: str, known: set[str]) -> tuple[str, list[str]]:
    """Drop cited keys not in ``known`` (a cite left empty goes); return text and dropped keys."""
    dropped: list[str] = []

    def fix(match: re.Match[str]) -> str:
        keys = [k.strip() for k in match.group(2).split(",") if k.strip()]
        good = [k for k in keys if k in known]
        dropped.extend(k for k in keys if k not in known)
        if not good:
            return ""
        return match.group(0).replace(match.group(2), ",".join(good))

    cleaned = _CITE.sub(fix, text)
    cleaned = re.sub(r"[ ~]+([.,;:])", r"\1", cleaned) if dropped else cleaned
    return cleaned, dropped


def ref_labels(text: str) -> list[str]:
    """Labels referenced with \\ref and friends."""
    return [label.strip() for m in _REF.finditer(text) for label in m.group(1).split(",")]


def latex_to_plain(text: str) -> str:
    """Readable plain text from LaTeX: commands dropped, their text arguments kept."""
    text = _CITE.sub("", text)
    text = re.sub(r"\\(?:ref|eqref|label|autoref|cref|Cref)\{[^}]*\}", "", text)
    text = re.sub(r"\\begin\{[^}]*\}|\\end\{[^}]*\}", "", text)
    text = re.sub(r"\\([%#_&${}~^])", r"\1", text)
    text = re.sub(r"\\[A-Za-z@]+\*?(\[[^\]]*\])?", "", text)
    text = re.sub(r"[{}$\\]", "", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def conservative(text: str) -> str:
    """A section rendered as escaped plain text: compiles whatever the model wrote."""
    paragraphs = [p for p in re.split(r"\n\s*\n", latex_to_plain(text)) if p.strip()]
    return "\n\n".join(escape_latex(to_latex_safe_unicode(p.strip())) for p in paragraphs)


def plain_to_latex(text: str) -> str:
    """Text meant as plain text (titles, notes, names), escaped for LaTeX."""
    return str(escape_latex(to_latex_safe_unicode(text)))
