"""The researcher's own idea: read from Markdown or ideas.json's form, checked, unscored.

A Markdown idea is a ``# Title`` line and free text: the text is the Experiment and the Name
is the title in snake_case. An ideas.json idea is one idea object or a list of them. Either
way the idea is used verbatim; its Interestingness, Feasibility and Novelty are the model's
self-assessment, not the researcher's to give, so they are dropped (None: not scored). The
ideas travel as the ``ideas.given`` setting, so run.json's overrides carry them to
``scientist resume``, batch tasks and service jobs alike.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from core.runstore import safe_name
from core.settings import Settings
from gateway.errors import EXIT_USAGE, AutoscholarError
from scientist.ideas.models import Idea

NAME_CHARS = 60
SCORES = ("Interestingness", "Feasibility", "Novelty")
IdeaFormat = Literal["markdown", "json"]
_IDEAS = TypeAdapter(list[Idea])
_TITLE = re.compile(r"^#\s+(?P<title>\S.*?)\s*#*\s*$")


class GivenIdeaError(AutoscholarError):
    """The researcher's idea cannot be used as given; the message names what to fix."""

    exit_code = EXIT_USAGE


def idea_name(title: str) -> str:
    """The title in snake_case, at most 60 characters, cut at a word."""
    name = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    if len(name) > NAME_CHARS:
        name = name[: NAME_CHARS + 1].rsplit("_", 1)[0] or name[:NAME_CHARS]
    if not name:
        raise GivenIdeaError(
            f"The idea's title {title!r} has no letters or digits to name it by; "
            "give a title such as '# Warmup and grokking'."
        )
    return name


def parse_markdown(text: str, source: str = "the idea") -> Idea:
    """An idea from Markdown: a ``# Title`` line first, then the Experiment as free text."""
    lines = text.strip().splitlines()
    match = _TITLE.match(lines[0].strip()) if lines else None
    if match is None:
        raise GivenIdeaError(
            f"{source}: the first line must be the title as '# Title' (a level-1 Markdown "
            "heading), followed by the idea's text."
        )
    title = match["title"]
    experiment = "\n".join(lines[1:]).strip()
    if not experiment:
        raise GivenIdeaError(
            f"{source}: the idea has a title but no text; write what to change in the code "
            "and what to measure below the '# Title' line."
        )
    idea = {"Name": idea_name(title), "Title": title, "Experiment": experiment}
    return _validated([idea], source)[0]


def parse_json(text: str, source: str = "the idea") -> list[Idea]:
    """Ideas from ideas.json's form: one idea object or a list of them."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GivenIdeaError(f"{source} is not valid JSON: {exc}") from exc
    return parse_data(data, source)


def parse_data(data: Any, source: str = "the idea") -> list[Idea]:
    """Ideas from parsed JSON: one idea object or a list of them."""
    return _validated(data if isinstance(data, list) else [data], source)


def read_ideas(path: Path, kind: IdeaFormat) -> list[Idea]:
    """The ideas in a Markdown (``--idea``) or JSON (``--idea-json``) file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GivenIdeaError(f"Cannot read the idea file {path}: {exc}") from exc
    if kind == "markdown":
        return [parse_markdown(text, str(path))]
    return parse_json(text, str(path))


def parse_idea_text(text: str, source: str = "the idea") -> list[Idea]:
    """An idea given as text of either form: JSON when it starts with ``{`` or ``[``, else
    Markdown (the service's run form and endpoint take both)."""
    if text.lstrip().startswith(("{", "[")):
        return parse_json(text, source)
    return [parse_markdown(text, source)]


def unscored(idea: Idea) -> Idea:
    """The idea without scores: a researcher's idea is not self-assessed."""
    return idea.model_copy(update=dict.fromkeys(SCORES))


def dropped_scores(ideas: list[Idea]) -> list[str]:
    """Names of the ideas that came with scores (they are dropped; the CLI says so)."""
    return [i.Name for i in ideas if any(getattr(i, s) is not None for s in SCORES)]


def as_setting(ideas: list[Idea]) -> list[dict[str, Any]]:
    """The ideas as the ``ideas.given`` setting holds them (unscored, no empty fields)."""
    return [unscored(i).model_dump(exclude_none=True) for i in ideas]


def given_ideas(settings: Settings) -> list[Idea]:
    """The researcher's ideas of ``ideas.given``, checked and unscored ([] when none)."""
    if not settings.ideas.given:
        return []
    return [unscored(i) for i in _validated(settings.ideas.given, "ideas.given")]


def _validated(data: list[Any], source: str) -> list[Idea]:
    if not data:
        raise GivenIdeaError(f"{source} holds no idea; give one idea object or a list of them.")
    try:
        ideas = _IDEAS.validate_python(data)
    except ValidationError as exc:
        problems = _problems(exc, several=len(data) > 1)
        raise GivenIdeaError(
            f"{source} is not a valid idea: {problems}. An idea is an object with Name "
            "(snake_case, at most 60 characters), Title and Experiment."
        ) from exc
    folders = [safe_name(i.Name) for i in ideas]
    repeated = sorted({i.Name for i in ideas if folders.count(safe_name(i.Name)) > 1})
    if repeated:
        raise GivenIdeaError(
            f"{source}: each idea needs its own Name (it names the idea's folder); "
            f"repeated: {', '.join(repeated)}."
        )
    return ideas


def _problems(exc: ValidationError, *, several: bool) -> str:
    """Each problem as ``field: message``, with the idea's position when there are several."""
    problems = []
    for error in exc.errors():
        index, *field = [str(p) for p in error["loc"]]
        label = ".".join(field) or "the idea"
        if several:
            label = f"idea {int(index) + 1}: {label}"
        problems.append(f"{label}: {error['msg']}")
    return "; ".join(problems)
