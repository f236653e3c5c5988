"""What the run page shows of each idea beside its status: the literature review and the
plan its stages wrote (``literature_review.md``, ``plan.md`` in the idea's folder, rendered
by :mod:`service.markdown`), and the co-pilot answers given at its stages: those the service
took (its ``copilot_pauses``) and those ``run.json`` records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from core.runstore import RunPaths
from service.markdown import render_markdown
from service.models import CopilotPause

DOCUMENTS = {"literature_review": "literature_review.md", "plan": "plan.md"}
# Rendered on the page up to this size; the whole file is one link away.
MAX_RENDERED_BYTES = 256 * 1024


@dataclass(frozen=True)
class Document:
    """One Markdown file of an idea, rendered; ``truncated`` when only its start is shown."""

    file: str
    html: Markup
    truncated: bool = False


@dataclass(frozen=True)
class Answer:
    """One co-pilot answer at a stage of an idea."""

    stage: str
    action: str
    text: str
    at: float | None = None


@dataclass
class IdeaDocuments:
    """An idea's review, plan and co-pilot answers, each absent until there is one."""

    name: str
    literature_review: Document | None = None
    plan: Document | None = None
    answers: list[Answer] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to show yet."""
        return not (self.literature_review or self.plan or self.answers)


def read_document(run: RunPaths, idea: str, file: str) -> Document | None:
    """The idea's Markdown ``file`` as safe HTML, or None while it is not written."""
    path = run.idea(idea).root / file
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_RENDERED_BYTES + 1)
    except OSError:
        return None
    truncated = len(data) > MAX_RENDERED_BYTES
    text = data[:MAX_RENDERED_BYTES].decode("utf-8", errors="replace")
    return Document(file=file, html=render_markdown(text), truncated=truncated)


def manifest_answers(run: RunPaths) -> dict[str | None, list[Answer]]:
    """The co-pilot feedback ``run.json`` records: per idea (its outcome's ``feedback``)
    and, under None, the run's own (the ideas stage)."""
    try:
        manifest = json.loads(run.run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict):
        return {}
    found: dict[str | None, list[Answer]] = {None: _feedback(manifest.get("feedback"))}
    for idea in manifest.get("ideas", []):
        if isinstance(idea, dict) and idea.get("name"):
            found[str(idea["name"])] = _feedback(idea.get("feedback"))
    return found


def _feedback(value: Any) -> list[Answer]:
    """``{stage: [text, ...]}``, the texts in the order they were given."""
    if not isinstance(value, dict):
        return []
    return [
        Answer(stage=str(stage), action="feedback", text=str(text))
        for stage, texts in value.items()
        for text in (texts if isinstance(texts, list) else [texts])
        if text
    ]


def idea_documents(
    run: RunPaths, names: list[str], pauses: list[CopilotPause]
) -> list[IdeaDocuments]:
    """Per idea (in ``names``' order), what there is to show; ideas with nothing left out.
    The service's own record of an answer is shown; ``run.json``'s when the service has
    none for that idea (a run resumed from elsewhere)."""
    recorded = manifest_answers(run)
    shown = []
    for name in names:
        docs = IdeaDocuments(name=name)
        for attribute, file in DOCUMENTS.items():
            setattr(docs, attribute, read_document(run, name, file))
        taken = [_taken(p) for p in pauses if p.idea == name and p.action is not None]
        docs.answers = taken or recorded.get(name, [])
        if not docs.empty:
            shown.append(docs)
    return shown


def run_answers(run: RunPaths, pauses: list[CopilotPause]) -> list[Answer]:
    """The answers at the run's own stage (the ideas stage), oldest first: the service's
    record, or ``run.json``'s when the service has none."""
    taken = [_taken(p) for p in pauses if p.idea is None and p.action is not None]
    return taken or manifest_answers(run).get(None, [])


def _taken(pause: CopilotPause) -> Answer:
    return Answer(
        stage=pause.stage, action=str(pause.action), text=pause.text, at=pause.answered_at
    )
