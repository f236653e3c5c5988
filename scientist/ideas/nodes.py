"""The idea graph's nodes and state (graphs/ideas.py wires them): N ideas, each refined by
reflection, deduplicated, then novelty-checked. With the researcher's own ideas
(``ideas.given``), ``generate`` takes each of them instead of asking the model: verbatim, or
through the reflection rounds when ``ideas.refine_given``; they are never dropped as
duplicates, and are novelty-checked like any other.

    START → seed → generate ⇄ reflect → settle ─┬→ generate            (more ideas to go)
                                                 └─Send×kept→ check_novelty → collect → END

Generation is sequential on purpose: each new idea is shown every earlier one. Novelty
checks fan out with ``Send`` (one branch per kept idea) and are gathered by a reducer;
with the embedded model the caller runs them one at a time (``max_concurrency=1``).
Dependencies (gateway, settings, literature, progress) arrive as the runtime context.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from pydantic import BaseModel, Field

from core.literature.models import SourceName
from gateway.errors import StructuredOutputError
from gateway.ledger import sum_entries
from scientist.ideas.deps import IdeasDeps, IdeasProgress
from scientist.ideas.generate import (
    find_duplicate,
    given_messages,
    idea_messages,
    propose_idea,
    reflect_idea,
)
from scientist.ideas.given import given_ideas
from scientist.ideas.models import Idea
from scientist.ideas.novelty import check_novelty, skipped_verdict
from scientist.ideas.records import IdeaFailure, IdeaRecord, IdeasFile, NoveltyVerdict
from scientist.ideas.template import Template


class Draft(BaseModel):
    """The idea being refined: its conversation, every version and the model's thoughts."""

    index: int
    origin: Literal["generated", "given"] = "generated"
    messages: list[dict[str, str]]
    versions: list[Idea]
    thoughts: list[str] = Field(default_factory=list)
    stopped_early: bool = False
    error: str | None = None


class IndexedVerdict(BaseModel):
    """A novelty verdict and the index of its idea (branches finish in any order)."""

    index: int
    verdict: NoveltyVerdict


class IdeasInput(TypedDict):
    """The template and the human's optional co-pilot feedback."""

    template: Template
    feedback: str | None


class IdeasState(IdeasInput, total=False):
    """What the graph accumulates."""

    records: Annotated[list[IdeaRecord], operator.add]
    failures: Annotated[list[IdeaFailure], operator.add]
    draft: Draft | None
    verdicts: Annotated[list[IndexedVerdict], operator.add]
    ideas: list[IdeaRecord]


class NoveltyTask(TypedDict):
    """What one novelty branch receives through ``Send``."""

    record: IdeaRecord


def seed(state: IdeasState, runtime: Runtime[IdeasDeps]) -> dict[str, Any]:
    """Record the template's seed ideas first when they are to be checked too."""
    if not runtime.context.settings.ideas.include_seed_ideas:
        return {"records": []}
    seeds = state["template"].seed_ideas
    return {
        "records": [
            IdeaRecord(index=i, origin="seed", idea=idea, drafts=[idea])
            for i, idea in enumerate(seeds)
        ]
    }


def _earlier(state: IdeasState) -> list[Idea]:
    """Seed ideas and every kept idea so far: what a new idea must not repeat."""
    kept = [r.idea for r in state.get("records", []) if r.status == "kept" and r.origin != "seed"]
    return [*state["template"].seed_ideas, *kept]


def _generated(state: IdeasState) -> int:
    """Ideas generated (failures included) or taken from the researcher so far."""
    records = [r for r in state.get("records", []) if r.origin != "seed"]
    return len(records) + len(state.get("failures", []))


def _wanted(deps: IdeasDeps) -> int:
    """How many ideas the stage produces: the researcher's, else ``ideas.num_ideas``."""
    return len(deps.settings.ideas.given) or deps.settings.ideas.num_ideas


def generate(state: IdeasState, runtime: Runtime[IdeasDeps]) -> Command[Any]:
    """Propose the next idea (or take the researcher's next one); a reply that never
    validates is recorded as a failure."""
    deps = runtime.context
    given = given_ideas(deps.settings)
    if given:
        return _take_given(state, deps, given[_generated(state)])
    index = len(state.get("records", [])) + len(state.get("failures", []))
    number = _generated(state) + 1
    messages = idea_messages(
        state["template"], _earlier(state), state.get("feedback"), number, deps
    )
    try:
        reply = propose_idea(messages, deps)
    except StructuredOutputError as exc:
        failure = IdeaFailure(index=index, stage="generate", error=str(exc))
        deps.notify(IdeasProgress("idea_done", index))
        goto = _after_idea(state.get("records", []), _generated(state) + 1, deps)
        return Command(update={"failures": [failure]}, goto=goto)
    deps.notify(
        IdeasProgress("generate", index, 0, deps.settings.ideas.num_reflections, reply.idea.Name)
    )
    draft = Draft(index=index, messages=messages, versions=[reply.idea], thoughts=[reply.thought])
    goto = "reflect" if deps.settings.ideas.num_reflections > 0 else "settle"
    return Command(update={"draft": draft}, goto=goto)


def _take_given(state: IdeasState, deps: IdeasDeps, idea: Idea) -> Command[Any]:
    """The researcher's idea as the draft: through the reflection rounds when
    ``ideas.refine_given`` (and there are rounds), else straight on, verbatim."""
    index = len(state.get("records", []))
    settings = deps.settings.ideas
    refine = settings.refine_given and settings.num_reflections > 0
    messages = (
        given_messages(state["template"], _earlier(state), idea, state.get("feedback"), deps)
        if refine
        else []
    )
    rounds = settings.num_reflections if refine else 0
    deps.notify(IdeasProgress("given", index, 0, rounds, idea.Name))
    draft = Draft(index=index, origin="given", messages=messages, versions=[idea])
    return Command(update={"draft": draft}, goto="reflect" if refine else "settle")


def reflect(state: IdeasState, runtime: Runtime[IdeasDeps]) -> Command[Any]:
    """One reflection round; loops until the model is done or the rounds run out."""
    deps = runtime.context
    draft = state["draft"]
    assert draft is not None
    total = deps.settings.ideas.num_reflections
    round_ = len(draft.versions)
    try:
        reply = reflect_idea(draft.messages, draft.versions[-1], round_, deps)
    except StructuredOutputError as exc:  # keep the last valid version and stop refining
        failed = draft.model_copy(update={"error": str(exc)})
        return Command(update={"draft": failed}, goto="settle")
    deps.notify(IdeasProgress("reflect", draft.index, round_, total, reply.idea.Name))
    updated = draft.model_copy(
        update={
            "versions": [*draft.versions, reply.idea],
            "thoughts": [*draft.thoughts, reply.thought],
            "stopped_early": reply.done and round_ < total,
        }
    )
    finished = reply.done or round_ >= total
    return Command(update={"draft": updated}, goto="settle" if finished else "reflect")


def settle(state: IdeasState, runtime: Runtime[IdeasDeps]) -> Command[Any]:
    """Keep the refined idea, or record it as a duplicate of an earlier one; go on. The
    researcher's own idea is always kept."""
    deps = runtime.context
    draft = state["draft"]
    assert draft is not None
    final = draft.versions[-1]
    ratio = deps.settings.ideas.duplicate_title_ratio
    duplicate = None if draft.origin == "given" else find_duplicate(final, _earlier(state), ratio)
    record = IdeaRecord(
        index=draft.index,
        origin=draft.origin,
        status="duplicate" if duplicate else "kept",
        duplicate_of=duplicate,
        idea=final,
        drafts=draft.versions,
        thoughts=draft.thoughts,
        reflections_used=len(draft.versions) - 1,
        stopped_early=draft.stopped_early,
        reflection_error=draft.error,
    )
    deps.notify(IdeasProgress("idea_done", draft.index, name=final.Name))
    records = [*state.get("records", []), record]
    goto = _after_idea(records, _generated(state) + 1, deps)
    return Command(update={"records": [record], "draft": None}, goto=goto)


def _after_idea(records: list[IdeaRecord], generated: int, deps: IdeasDeps) -> str | list[Send]:
    """The next idea, else one novelty branch per kept idea, else straight to collect."""
    if generated < _wanted(deps):
        return "generate"
    settings = deps.settings.ideas
    if not settings.novelty_check or settings.novelty_rounds == 0:
        return "collect"
    kept = [r for r in records if r.status == "kept"]
    return [Send("check_novelty", NoveltyTask(record=r)) for r in kept] or "collect"


def novelty(task: NoveltyTask, runtime: Runtime[IdeasDeps]) -> dict[str, Any]:
    """The novelty check of one idea."""
    deps, record = runtime.context, task["record"]
    verdict = check_novelty(record.idea, record.index, deps)
    deps.notify(
        IdeasProgress("novelty_done", record.index, verdict.rounds_used, name=record.idea.Name)
    )
    return {"verdicts": [IndexedVerdict(index=record.index, verdict=verdict)]}


def collect(state: IdeasState, runtime: Runtime[IdeasDeps]) -> dict[str, Any]:
    """Every record with its verdict, in index order; unchecked ideas say why."""
    settings = runtime.context.settings.ideas
    verdicts = {v.index: v.verdict for v in state.get("verdicts", [])}
    off = not settings.novelty_check or settings.novelty_rounds == 0
    ideas = []
    for record in sorted(state.get("records", []), key=lambda r: r.index):
        verdict = verdicts.get(record.index)
        if verdict is None and record.status == "kept":
            verdict = skipped_verdict("novelty check turned off" if off else "not checked")
        ideas.append(record.model_copy(update={"novelty": verdict}))
    return {"ideas": ideas}


def ideas_file(
    state: dict[str, Any], deps: IdeasDeps, feedback: str | None, wall_s: float, first_entry: int
) -> IdeasFile:
    """The graph's final state as ideas.json's record; usage from ledger entry ``first_entry``."""
    usage = sum_entries(deps.gateway.ledger.entries[first_entry:])
    records = [r for r in state.get("ideas", []) if r.status == "kept"]
    answered: list[SourceName] = [
        source for r in records if r.novelty is not None for source in r.novelty.sources_answered
    ]
    return IdeasFile(
        template=state["template"].name,
        model=deps.settings.llm.models.ideas,
        feedback=feedback,
        topic=deps.settings.ideas.topic,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        wall_time_s=round(wall_s, 2),
        ideas=records,
        duplicates=[r for r in state.get("ideas", []) if r.status == "duplicate"],
        failures=state.get("failures", []),
        sources=list(deps.settings.literature.sources),
        sources_answered=list(dict.fromkeys(answered)),
        settings={
            "ideas": deps.settings.ideas.model_dump(mode="json"),
            "literature": deps.settings.literature.model_dump(mode="json"),
            "profile": deps.profile().model_dump(mode="json"),
        },
        usage=usage.model_dump(exclude={"by_role"}),
    )
