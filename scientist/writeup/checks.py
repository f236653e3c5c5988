"""The refinement checklist, computed by code: references, numbers, figures, LaTeX syntax.

The model is only asked to fix a section when one of these checks finds something;
what is still wrong afterwards is enforced by code (unknown citations stripped, sentences
with invented numbers removed) and recorded as a warning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from scientist.writeup.latex import cite_keys, ref_labels, words
from scientist.writeup.models import Issue

KNOWN_COMMANDS = words(
    "textbf textit emph texttt textsc textsf textrm underline textsuperscript textsubscript",
    "cite citep citet citealp citealt citeauthor citeyear ref eqref autoref label url href",
    "footnote subsection subsection* subsubsection subsubsection* paragraph paragraph* item",
    "begin end ldots dots cdots vdots ddots quad qquad hspace vspace smallskip medskip",
    "bigskip noindent par newline linebreak mbox text mathrm mathbf mathit mathcal mathbb",
    "boldsymbol operatorname frac dfrac tfrac sqrt sum prod int log exp min max arg argmin",
    "argmax sin cos tan lim sup inf alpha beta gamma delta epsilon varepsilon zeta eta theta",
    "vartheta iota kappa lambda mu nu xi pi rho sigma tau upsilon phi varphi chi psi omega",
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega pm mp times cdot div leq geq",
    "le ge neq approx sim simeq equiv propto infty partial nabla in notin subset subseteq cup",
    "cap forall exists rightarrow leftarrow Rightarrow Leftarrow leftrightarrow to mapsto mid",
    "left right big Big bigg langle rangle lVert rVert lvert rvert | hat bar tilde vec dot",
    "ddot overline underbrace overbrace circ prime ell top perp emptyset mathds textendash",
    "textemdash LaTeX TeX today small footnotesize large Large normalsize tiny centering",
    "toprule midrule bottomrule hline cline multicolumn textnormal ensuremath displaystyle",
    "scriptstyle limits nolimits cdotp colon percent S P dag ddag copyright textasciitilde",
    "textbackslash textbar hyphenation bmod pmod mod odot oplus otimes wedge vee ast star",
    "setminus ne lesssim gtrsim ll gg mathsf mathtt mathfrak widehat widetilde overrightarrow",
    "det tr Pr E var log ln lfloor rfloor lceil rceil binom tbinom dbinom cap cup bigcup",
    "bigcap forall neg land lor top bot models vdash iff implies impliedby coloneqq triangleq",
    "doteq cong checkmark textgreater textless enumerate itemize description nicefrac eg ie",
    "etal",
)
_NUMBER = re.compile(r"(?<![\w.\\])(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)(\s*\\?%)?(?![\w])")
_IGNORED_ARGS = re.compile(
    r"\\(?:ref|eqref|autoref|label|cite[a-zA-Z]*|url|href|[hv]space|includegraphics)\*?"
    r"(?:\[[^\]]*\])?\{[^}]*\}"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\\])")
SMALL_INTEGERS = 20


@dataclass
class CheckContext:
    """What a section is checked against."""

    known_keys: set[str]
    allowed_numbers: list[float]
    allowed_literals: set[str]
    figure_labels: list[str] = field(default_factory=list)
    table_labels: list[str] = field(default_factory=list)
    other_labels: set[str] = field(default_factory=set)
    extra_commands: set[str] = field(default_factory=set)


def numbers_in(texts: Iterable[str]) -> tuple[list[float], set[str]]:
    """Every number written in ``texts`` (idea, notes): as values and as literal strings."""
    values: list[float] = []
    literals: set[str] = set()
    for text in texts:
        for match in _NUMBER.finditer(text):
            literals.add(match.group(1))
            values.append(float(match.group(1)))
    return values, literals


def _decimals(literal: str) -> int:
    mantissa = literal.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def number_is_allowed(literal: str, percent: bool, ctx: CheckContext) -> bool:
    """Whether a number in the text matches a result (at its precision), a year or the idea."""
    value = float(literal)
    if literal in ctx.allowed_literals or literal.lstrip("-") in ctx.allowed_literals:
        return True
    if (
        not percent
        and value.is_integer()
        and (0 <= value <= SMALL_INTEGERS or 1900 <= value <= 2100)
    ):
        return True
    digits = _decimals(literal)
    for allowed in ctx.allowed_numbers:
        for candidate in (allowed, allowed * 100) if percent or digits else (allowed,):
            if _matches(value, candidate, digits):
                return True
    return False


def _matches(value: float, candidate: float, digits: int) -> bool:
    if not math.isfinite(candidate):
        return False
    if "e" in f"{value}" and candidate:
        return math.isclose(value, candidate, rel_tol=1e-3)
    return math.isclose(round(candidate, digits), value, abs_tol=10 ** (-digits) / 2 + 1e-12) or (
        round(abs(candidate), digits) == abs(value)
    )


def invented_numbers(text: str, ctx: CheckContext) -> list[str]:
    """Numbers in ``text`` that are neither in the results nor in the idea and notes."""
    visible = _IGNORED_ARGS.sub(" ", text)
    found = []
    for match in _NUMBER.finditer(visible):
        literal, percent = match.group(1), bool(match.group(2))
        if not number_is_allowed(literal, percent, ctx):
            found.append(literal + ("%" if percent else ""))
    return found


def brace_balance(text: str) -> int:
    """Unescaped ``{`` minus ``}``; zero when balanced."""
    stripped = re.sub(r"\\[{}\\]", "", text)
    return stripped.count("{") - stripped.count("}")


def environment_problems(text: str) -> list[str]:
    """``\\begin``/``\\end`` pairs that do not match."""
    stack: list[str] = []
    problems: list[str] = []
    for match in re.finditer(r"\\(begin|end)\{([^}]*)\}", text):
        kind, name = match.groups()
        if kind == "begin":
            stack.append(name)
        elif stack and stack[-1] == name:
            stack.pop()
        else:
            problems.append(f"\\end{{{name}}} without a matching \\begin{{{name}}}")
    problems += [f"\\begin{{{name}}} is never closed" for name in stack]
    return problems


def unknown_commands(text: str, extra: set[str] | None = None) -> list[str]:
    """Commands outside the vocabulary a section body may use (plus the template's own)."""
    known = KNOWN_COMMANDS | (extra or set())
    names = re.findall(r"\\([A-Za-z]+)", text)
    return sorted({f"\\{name}" for name in names if name not in known})


def syntax_issues(text: str, extra_commands: set[str] | None = None) -> list[Issue]:
    """LaTeX syntax the compiler would choke on: braces, environments, unknown commands."""
    issues: list[Issue] = []
    balance = brace_balance(text)
    if balance:
        what = "unclosed '{'" if balance > 0 else "unmatched '}'"
        issues.append(
            Issue(kind="latex_syntax", detail=f"unbalanced braces: {abs(balance)} {what}")
        )
    issues += [Issue(kind="latex_syntax", detail=p) for p in environment_problems(text)]
    unknown = unknown_commands(text, extra_commands)
    if unknown:
        detail = f"unknown commands (not defined here): {', '.join(unknown)}"
        issues.append(Issue(kind="latex_syntax", detail=detail))
    return issues


def run_checklist(section: str, text: str, ctx: CheckContext) -> list[Issue]:
    """Every deterministic check on one section body."""
    issues: list[Issue] = []
    if not text.strip():
        return [Issue(kind="empty", detail="the section is empty")]
    unknown = [key for key in cite_keys(text) if key not in ctx.known_keys]
    if unknown:
        known = ", ".join(sorted(ctx.known_keys)) or "none"
        detail = f"\\cite keys not in the bibliography: {', '.join(unknown)} (known: {known})"
        issues.append(Issue(kind="unknown_citation", detail=detail))
    labels = set(ctx.figure_labels) | set(ctx.table_labels) | ctx.other_labels
    missing_refs = [label for label in ref_labels(text) if label not in labels]
    if missing_refs:
        detail = f"\\ref to labels that do not exist: {', '.join(missing_refs)}"
        issues.append(Issue(kind="latex_syntax", detail=detail))
    invented = invented_numbers(text, ctx)
    if invented:
        detail = f"numbers not in the results: {', '.join(dict.fromkeys(invented))}"
        issues.append(Issue(kind="invented_number", detail=detail))
    if section == "results":
        referenced = set(ref_labels(text))
        absent = [label for label in ctx.figure_labels if label not in referenced]
        if absent:
            detail = f"figures never referenced: {', '.join(absent)} (use Figure~\\ref{{...}})"
            issues.append(Issue(kind="missing_figure_reference", detail=detail))
    return issues + syntax_issues(text, ctx.extra_commands)


def sentences(text: str) -> list[str]:
    """``text`` split into sentences (separators dropped)."""
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def _structural(sentence: str) -> bool:
    """Whether removing ``sentence`` could unbalance the LaTeX around it."""
    bare = re.sub(r"\\[$]", "", sentence)
    return (
        bool(re.search(r"\\(?:begin|end|item)\b|\\[\[\]()]", sentence))
        or brace_balance(sentence) != 0
        or bare.count("$") % 2 == 1
    )


def drop_invented_sentences(text: str, ctx: CheckContext) -> tuple[str, list[str]]:
    """Remove sentences that still hold numbers not in the results; return what was removed.

    A sentence that carries LaTeX structure (an environment boundary, an item, an open
    brace or math) stays, with just its invented numbers replaced by ``[n/a]``.
    """
    parts = re.split(r"((?<=[.!?])\s+(?=[A-Z\\]))", text)
    kept, removed = [], []
    for index in range(0, len(parts), 2):
        sentence = parts[index]
        separator = parts[index + 1] if index + 1 < len(parts) else ""
        invented = invented_numbers(sentence, ctx)
        if not invented:
            kept.append(sentence + separator)
        elif _structural(sentence):
            removed.append(sentence.strip())
            kept.append(_blank_numbers(sentence, invented) + separator)
        else:
            removed.append(sentence.strip())
            kept.append(separator if "\n\n" in separator else "")
    joined = re.sub(r"\n[ \t]+", "\n", "".join(kept))
    return re.sub(r"\n{3,}", "\n\n", joined).strip(), removed


def _blank_numbers(sentence: str, invented: list[str]) -> str:
    for literal in dict.fromkeys(invented):
        number = re.escape(literal.rstrip("%"))
        sentence = re.sub(rf"(?<![\w.]){number}(\s*\\?%)?(?![\w])", "[n/a]", sentence)
    return sentence


def strip_bad_refs(text: str, labels: set[str]) -> str:
    """Remove \\ref commands to labels that do not exist (with a preceding ``Figure~``)."""
    pattern = re.compile(
        r"(?:(?:Figure|Fig\.|Table|Section|Eq\.)~?\s*)?\\(?:ref|eqref|autoref)\{([^}]*)\}"
    )
    return pattern.sub(lambda m: m.group(0) if m.group(1) in labels else "", text)
