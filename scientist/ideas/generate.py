"""Proposing an idea, refining it over reflection rounds, and spotting duplicates."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from gateway.prompts import render
from scientist.ideas.deps import IdeasDeps
from scientist.ideas.models import Idea
from scientist.ideas.records import (
    IdeaReflection,
    IdeaReply,
    as_record,
    idea_reflection,
    idea_reply,
)
from scientist.ideas.template import Template

PROMPTS = Path(__file__).parent / "prompts"
Messages = list[dict[str, str]]


def shown_code(code: str, max_chars: int | None) -> str:
    """The experiment code, cut at a line boundary to ``max_chars`` (None: whole) with a note."""
    if max_chars is None or len(code) <= max_chars:
        return code.rstrip()
    cut = code[:max_chars].rsplit("\n", 1)[0]
    return f"{cut.rstrip()}\n# ... ({len(code) - len(cut)} more characters not shown)"


def previous_text(ideas: list[Idea]) -> str:
    """Earlier ideas, one compact JSON line each (Name and Title are enough to avoid repeats)."""
    if not ideas:
        return "(none yet)"
    return "\n".join(json.dumps({"Name": i.Name, "Title": i.Title}) for i in ideas)


def idea_messages(
    template: Template,
    previous: list[Idea],
    feedback: str | None,
    number: int,
    deps: IdeasDeps,
) -> Messages:
    """System and user messages that ask for idea ``number``."""
    settings = deps.settings.ideas
    profile = deps.profile()
    system = render(PROMPTS, "idea_system.j2", system=template.prompt.system)
    user = render(
        PROMPTS,
        "idea_user.j2",
        task=template.prompt.task_description,
        code=shown_code(template.experiment_code, profile.idea_code_chars),
        previous=previous_text(previous),
        topic=(settings.topic or "").strip(),
        feedback=(feedback or "").strip(),
        number=number,
        total=settings.num_ideas,
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def given_messages(
    template: Template, previous: list[Idea], idea: Idea, feedback: str | None, deps: IdeasDeps
) -> Messages:
    """System and user messages that put the researcher's own idea up for refinement (the
    reflection rounds then answer them, as they do a generated idea's)."""
    system = render(PROMPTS, "idea_system.j2", system=template.prompt.system)
    user = render(
        PROMPTS,
        "given_idea_user.j2",
        task=template.prompt.task_description,
        code=shown_code(template.experiment_code, deps.profile().idea_code_chars),
        previous=previous_text(previous),
        feedback=(feedback or "").strip(),
        idea=idea.model_dump_json(include={"Name", "Title", "Experiment"}),
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def propose_idea(messages: Messages, deps: IdeasDeps) -> IdeaReply:
    """Ask the ideas model for one idea (its reply held to the model's output profile)."""
    schema = idea_reply(deps.profile())
    reply = deps.gateway.complete(messages, role="ideas", schema=schema, **deps.sampling())
    return as_record(reply, IdeaReply)


def reflection_messages(base: Messages, current: Idea, round_: int, total: int) -> Messages:
    """The generation conversation, the current idea as the model's answer, and the ask."""
    return [
        *base,
        # exclude_none: a researcher's unscored idea shows no null scores to score again
        {"role": "assistant", "content": current.model_dump_json(exclude_none=True)},
        {
            "role": "user",
            "content": render(PROMPTS, "idea_reflection.j2", round=round_, total=total),
        },
    ]


def reflect_idea(base: Messages, current: Idea, round_: int, deps: IdeasDeps) -> IdeaReflection:
    """One reflection round on ``current``."""
    total = deps.settings.ideas.num_reflections
    messages = reflection_messages(base, current, round_, total)
    schema = idea_reflection(deps.profile())
    reply = deps.gateway.complete(messages, role="ideas", schema=schema, **deps.sampling())
    return as_record(reply, IdeaReflection)


def normal_name(name: str) -> str:
    """A Name compared without case or punctuation."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def normal_title(title: str) -> str:
    """A Title compared without case, quotes or punctuation."""
    return " ".join(re.findall(r"[a-z0-9]+", title.lower()))


def find_duplicate(idea: Idea, earlier: list[Idea], title_ratio: float) -> str | None:
    """The Name of an earlier idea this one repeats, else None.

    A repeat has the same Name, a Title at least ``title_ratio`` similar (difflib), or a
    Title that contains a whole earlier Title of three or more words (a copied seed title
    with words around it).
    """
    name, title = normal_name(idea.Name), normal_title(idea.Title)
    for other in earlier:
        theirs = normal_title(other.Title)
        if normal_name(other.Name) == name:
            return other.Name
        if difflib.SequenceMatcher(None, title, theirs).ratio() >= title_ratio:
            return other.Name
        shorter, longer = sorted((title, theirs), key=len)
        if len(shorter.split()) >= 3 and f" {shorter} " in f" {longer} ":
            return other.Name
    return None
