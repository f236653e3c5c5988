"""A template's ``requirements.txt`` and ``.python-version``, read as pip and pyenv read them,
and pip's failure output, read back to the requirement it stopped at."""

from __future__ import annotations

import re
from pathlib import Path

from scientist.experiments.errors import TemplateEnvError

REQUIREMENTS = "requirements.txt"
PYTHON_VERSION = ".python-version"
INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")
_NAME = re.compile(r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?=$|[\[(<>=!~;@,\s])")
_VERSION = re.compile(r"(?:python-?)?(\d+\.\d+(?:\.\d+)?)")
# pip's words for the requirement it stopped at, most specific first.
_PIP_FAILURES = (
    re.compile(r"No matching distribution found for ([^\s;]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([^\s;]+)"),
    re.compile(r"Invalid requirement: '([^']+)'"),
    re.compile(r"Could not build wheels for ([^\s,;]+)"),
    re.compile(r"Failed (?:building wheel for|to build) ([^\s,;]+)"),
    re.compile(r"Cannot install ([^\s,;]+)"),
)


def requirement_lines(text: str) -> list[str]:
    """The lines pip reads: continuations joined, comments and blanks dropped."""
    lines = []
    for raw in re.sub(r"\\\r?\n", "", text).splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def requirement_name(line: str) -> str | None:
    """The project name of a requirement line (None for options, paths and URLs)."""
    if line.startswith("-"):
        return None
    match = _NAME.match(line)
    return match.group(1) if match else None


def normalize(name: str) -> str:
    """A project name as the package index compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def check_requirements(text: str, path: Path) -> None:
    """Refuse include lines: the environment's key covers this file's text, not theirs."""
    for line in requirement_lines(text):
        option = line.split()[0].split("=")[0]
        if option in INCLUDE_OPTIONS or (option[:2] in ("-r", "-c") and len(option) > 2):
            raise TemplateEnvError(
                f"{path}: `{line}` includes another file; list those requirements in "
                f"{path.name} itself (the cached environment is keyed by this file's text)."
            )


def declared_version(template_dir: Path) -> str | None:
    """The Python version a template asks for in ``.python-version``, if any."""
    path = template_dir / PYTHON_VERSION
    if not path.is_file():
        return None
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    wanted = next((ln for ln in lines if ln and not ln.startswith("#")), "")
    match = _VERSION.fullmatch(wanted)
    if match is None:
        raise TemplateEnvError(
            f"{path} holds {wanted!r}; write a version such as 3.11 or 3.11.7, or remove the file."
        )
    return match.group(1)


def version_matches(version: str, wanted: str) -> bool:
    """Whether "3.11.7" is what "3.11" (or "3.11.7") asks for."""
    return version.split(".")[: len(wanted.split("."))] == wanted.split(".")


def failing_requirement(output: str, lines: list[str]) -> str | None:
    """The requirement pip stopped at: its line in requirements.txt when it is one, else the
    dependency pip named; None when pip named none."""
    for pattern in _PIP_FAILURES:
        match = pattern.search(output)
        if match is None:
            continue
        named = match.group(1).strip("'\",")
        wanted = normalize(requirement_name(named) or named)
        return next((ln for ln in lines if normalize(requirement_name(ln) or "") == wanted), named)
    return None
