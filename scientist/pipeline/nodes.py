"""Nodes of the paper graph: each calls one stage and returns a partial update.

Run level: ``generate_ideas`` → ``review_ideas`` (co-pilot gate) → one idea pipeline per
selected idea (``Send``) → ``summarize``. Idea level: ``literature_review`` → gate →
``plan`` → gate → ``experiment`` → gate → ``write`` → gate → ``review`` → (``improve``) →
``finish``. A stage that fails marks only its idea failed (with the reason); a budget stop
marks it ``stopped: budget``. Feedback given at a gate is recorded in the idea's outcome
(run.json) and redoes that stage with the text in its prompts.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from langgraph.runtime import Runtime
from langgraph.types import Command, Send, interrupt
from pydantic import TypeAdapter, ValidationError

from gateway.errors import AutoscholarError, BudgetExceededError
from gateway.ledger import Ledger, sum_entries
from scientist.ideas.models import Idea
from scientist.pipeline import stages
from scientist.pipeline.deps import PipelineDeps
from scientist.pipeline.models import (
    CopilotReply,
    CopilotRequest,
    IdeaOutcome,
    PipelineEvent,
    Stage,
    StageUsage,
)
from scientist.pipeline.state import IdeaState, PaperState
from scientist.plan.planning import PlanEditError, plan_json
from scientist.survey.edit import ReviewEditError, review_json

log = logging.getLogger(__name__)
T = TypeVar("T")


class IdeaBudgetExceeded(AutoscholarError):
    """An idea ran past its wall-clock budget."""


def _usage(ledger: Ledger, first: int, seconds: float) -> StageUsage:
    totals = sum_entries(ledger.entries[first:])
    return StageUsage(
        seconds=round(seconds, 3),
        calls=totals.calls,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        cost_usd=totals.cost_usd,
    )


def ask_copilot(deps: PipelineDeps, request: CopilotRequest) -> CopilotReply:
    """Pause the graph at a stage end (``interrupt``) and return the human's reply."""
    raw = interrupt(request.model_dump())
    return CopilotReply.model_validate(raw)


# ---------------------------------------------------------------- run level


def generate_ideas(state: PaperState, runtime: Runtime[PipelineDeps]) -> dict[str, Any]:
    """Ideas stage: generate, refine, check novelty; write ideas.json; pick the ideas to run."""
    deps = runtime.context
    deps.notify(PipelineEvent(stage="ideas", status="started"))
    first, start = len(deps.run_ledger.entries), deps.clock()
    ideas_file = stages.ideas_stage(deps, feedback=state.get("feedback", {}).get("ideas"))
    chosen = stages.select_ideas(ideas_file, deps.settings)
    usage = _usage(deps.run_ledger, first, deps.clock() - start)
    notes = stages.given_notes(ideas_file, deps.settings)
    detail = f"{len(chosen)} chosen"
    if not chosen:
        detail += f": {stages.no_ideas_reason(ideas_file, deps.settings)}"
    elif notes:
        detail += f"; {'; '.join(notes)}"
    deps.notify(PipelineEvent(stage="ideas", status="done", detail=detail))
    return {"ideas": chosen, "ideas_usage": usage, "notes": notes}


def review_ideas(
    state: PaperState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["generate_ideas", "start_ideas"]]:
    """Co-pilot gate after the ideas stage: approve, edit the chosen ideas, or redo."""
    deps = runtime.context
    if deps.copilot is None:
        return Command(goto="start_ideas")
    ideas = state.get("ideas", [])
    summary = "\n".join(f"- {i.Name}: {i.Title}" for i in ideas) or "(no idea chosen)"
    editable = json.dumps([i.model_dump() for i in ideas], indent=2)
    reply = ask_copilot(deps, CopilotRequest(stage="ideas", summary=summary, editable=editable))
    if reply.action == "feedback":
        update = {"feedback": {"ideas": reply.text}, "ideas_feedback": [reply.text]}
        return Command(goto="generate_ideas", update=update)
    if reply.action == "edit":
        return Command(goto="start_ideas", update={"ideas": parse_edited_ideas(reply.text)})
    return Command(goto="start_ideas")


def parse_edited_ideas(text: str) -> list[Idea]:
    """The ideas a human edited (a JSON list of ideas); a clear error if it does not parse."""
    try:
        return TypeAdapter(list[Idea]).validate_json(text)
    except ValidationError as exc:
        raise AutoscholarError(
            f"The edited ideas are not a valid JSON list of ideas: {exc}"
        ) from exc


def start_ideas(state: PaperState) -> dict[str, Any]:
    """Mark every chosen idea pending before the fan-out (the live view shows them)."""
    outcomes = {
        i.Name: IdeaOutcome(name=i.Name, title=i.Title, status="pending") for i in state["ideas"]
    }
    return {"outcomes": outcomes}


def fan_out(state: PaperState) -> list[Send] | Literal["summarize"]:
    """One idea pipeline per chosen idea, in parallel; straight to the summary if none."""
    ideas = state.get("ideas", [])
    if not ideas:
        return "summarize"
    return [Send("idea_pipeline", {"idea": idea, "feedback": {}}) for idea in ideas]


def idea_apart(state: IdeaState, runtime: Runtime[PipelineDeps]) -> dict[str, Any]:
    """One idea's pipeline as a task of its own (``deps.idea_runner``, e.g. a Ray task on
    some node); its calls join the run's ledger once it ends, as if it had run here."""
    deps = runtime.context
    if deps.idea_runner is None:
        raise AutoscholarError(
            "This run runs each idea as a task of its own but no idea runner was given; "
            "resume it with `scientist resume` (which runs them here) or through the batch."
        )
    idea = state["idea"]
    outcome = deps.idea_runner(idea, deps)
    stages.merge_idea_ledger(deps, idea.Name)
    return {"outcomes": {idea.Name: outcome}}


def summarize(state: PaperState, runtime: Runtime[PipelineDeps]) -> dict[str, Any]:
    """Write run.json with every idea's outcome, or why no idea was run (the runner adds
    timings and totals)."""
    status, reason = stages.finished_status(runtime.context, state)
    stages.write_manifest(runtime.context, state, status=status, reason=reason)
    return {}


# ---------------------------------------------------------------- idea level


def _outcome(state: IdeaState, deps: PipelineDeps) -> IdeaOutcome:
    idea = state["idea"]
    current = state.get("outcome")
    if current is not None:
        return current.model_copy(deep=True)
    folder = deps.run.idea(idea.Name).root
    return IdeaOutcome(name=idea.Name, title=idea.Title, status="running", folder=str(folder))


def _stage_call(
    state: IdeaState,
    deps: PipelineDeps,
    stage: Stage,
    call: Callable[[], T],
) -> tuple[T | None, IdeaOutcome]:
    """Run one stage of one idea with its budget checks; failures land in the outcome.

    Resuming needs nothing here: the stage's graph checkpoints under the paper graph's
    checkpointer, so a node re-run after a kill continues that graph from its last step
    (and a graph that had finished returns its final state without a call).
    """
    name = state["idea"].Name
    outcome = _outcome(state, deps)
    outcome.stage, outcome.status = stage, "running"
    ledger = stages.idea_ledger(deps, name)
    first, start = len(ledger.entries), deps.clock()
    deps.notify(PipelineEvent(idea=name, stage=stage, status="started"))
    result: T | None = None
    try:
        _check_wall_budget(state, deps)
        result = call()
    except (BudgetExceededError, IdeaBudgetExceeded) as exc:
        outcome.status, outcome.reason = "stopped: budget", str(exc)
    except AutoscholarError as exc:
        outcome.status, outcome.reason = "failed", f"{stage}: {exc}"
    except Exception as exc:
        _log_crash(deps, name, stage)
        outcome.status, outcome.reason = "failed", f"{stage}: {type(exc).__name__}: {exc}"
    previous = outcome.usage.get(stage, StageUsage())
    outcome.usage[stage] = _add_usage(previous, _usage(ledger, first, deps.clock() - start))
    status = "done" if outcome.status == "running" else "failed"
    deps.notify(PipelineEvent(idea=name, stage=stage, status=status, detail=outcome.reason or ""))
    return result, outcome


def _add_usage(a: StageUsage, b: StageUsage) -> StageUsage:
    return StageUsage(
        seconds=a.seconds + b.seconds,
        calls=a.calls + b.calls,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cost_usd=a.cost_usd + b.cost_usd,
    )


def _check_wall_budget(state: IdeaState, deps: PipelineDeps) -> None:
    limit = deps.settings.pipeline.idea_max_wall_s
    started = state.get("started_at")
    if limit is not None and started is not None and deps.clock() - started > limit:
        raise IdeaBudgetExceeded(
            f"Wall-time budget reached: {deps.clock() - started:.0f} s spent of {limit:.0f} s. "
            "Raise pipeline.idea_max_wall_s to go on (scientist resume keeps what is done)."
        )


def _log_crash(deps: PipelineDeps, name: str, stage: str) -> None:
    folder = deps.run.idea(name).root
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "error.log").open("a", encoding="utf-8") as handle:
        handle.write(f"--- {stage}\n{traceback.format_exc()}\n")
    log.error("idea %s crashed in %s; traceback in %s", name, stage, folder / "error.log")


def _failed(outcome: IdeaOutcome) -> bool:
    return outcome.status != "running"


def _with_feedback(state: IdeaState, deps: PipelineDeps, stage: Stage, text: str) -> IdeaOutcome:
    """The idea's outcome with the researcher's feedback on ``stage`` recorded (run.json)."""
    outcome = _outcome(state, deps)
    outcome.feedback.setdefault(stage, []).append(text)
    return outcome


def begin(state: IdeaState, runtime: Runtime[PipelineDeps]) -> dict[str, Any]:
    """Start an idea's clock (kept in the checkpoint, so a resume keeps counting)."""
    return {"started_at": state.get("started_at") or runtime.context.clock()}


def literature_review(
    state: IdeaState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["gate_review", "plan", "finish"]]:
    """Literature-review stage: queries, the cascade, a summary per paper, themes and gaps;
    writes literature_review.json and .md (skipped under ``survey.enabled=false``)."""
    deps = runtime.context
    if not deps.settings.survey.enabled:
        return Command(goto="plan")
    feedback = state.get("feedback", {}).get("literature_review")
    review, outcome = _stage_call(
        state,
        deps,
        "literature_review",
        lambda: stages.survey_stage(deps, state["idea"], feedback),
    )
    if _failed(outcome) or review is None:
        return Command(goto="finish", update={"outcome": outcome})
    return Command(goto="gate_review", update={"outcome": outcome, "literature": review})


def gate_review(
    state: IdeaState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["literature_review", "gate_review", "plan"]]:
    """Co-pilot gate after the review: approve; edit its JSON (papers removed, added if the
    cascade returns them, texts rewritten; a refused edit is asked again with the reason);
    or redo it with feedback."""
    deps = runtime.context
    review = state.get("literature")
    if deps.copilot is None or review is None:
        return Command(goto="plan")
    idea, stage = state["idea"], cast(Stage, "literature_review")
    notice = state.get("notice", {}).get(stage, "")
    return _edit_gate(
        state,
        deps,
        CopilotRequest(
            stage=stage,
            idea=idea.Name,
            summary=stages.review_summary(deps, review, notice),
            editable=review_json(review),
        ),
        Gate(redo="literature_review", again="gate_review", then="plan", key="literature"),
        lambda text: stages.edit_review(deps, idea, review, text),
        ReviewEditError,
    )


def plan(
    state: IdeaState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["gate_plan", "experiment", "finish"]]:
    """Experiment-plan stage: hypotheses, the runs the coding rounds make, baselines, metrics
    and what counts as support; writes plan.json and .md (skipped under
    ``plan.enabled=false``)."""
    deps = runtime.context
    if not deps.settings.plan.enabled:
        return Command(goto="experiment")
    feedback = state.get("feedback", {}).get("plan")
    review = state.get("literature")
    made, outcome = _stage_call(
        state,
        deps,
        "plan",
        lambda: stages.plan_stage(deps, state["idea"], review, feedback),
    )
    if _failed(outcome) or made is None:
        return Command(goto="finish", update={"outcome": outcome})
    return Command(goto="gate_plan", update={"outcome": outcome, "experiment_plan": made})


def gate_plan(
    state: IdeaState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["plan", "gate_plan", "experiment"]]:
    """Co-pilot gate after the plan: approve; edit its JSON (it replaces plan.json and the
    coding rounds follow it; a refused edit is asked again with the reason); or redo it
    with feedback."""
    deps = runtime.context
    current = state.get("experiment_plan")
    if deps.copilot is None or current is None:
        return Command(goto="experiment")
    idea, stage = state["idea"], cast(Stage, "plan")
    notice = state.get("notice", {}).get(stage, "")
    rounds = deps.settings.experiments.max_rounds
    return _edit_gate(
        state,
        deps,
        CopilotRequest(
            stage=stage,
            idea=idea.Name,
            summary=stages.plan_summary(current, rounds, notice),
            editable=plan_json(current),
        ),
        Gate(redo="plan", again="gate_plan", then="experiment", key="experiment_plan"),
        lambda text: stages.edit_plan(deps, idea, current, text),
        PlanEditError,
    )


@dataclass(frozen=True)
class Gate:
    """Where a co-pilot gate goes: ``redo`` its stage on feedback, ``again`` (itself) when an
    edit is refused, ``then`` the next stage; ``key``: the state field an edit replaces."""

    redo: str
    again: str
    then: str
    key: str


def _edit_gate(
    state: IdeaState,
    deps: PipelineDeps,
    request: CopilotRequest,
    gate: Gate,
    edit: Callable[[str], Any],
    refused: type[Exception],
) -> Command[Any]:
    """Ask the co-pilot about a JSON artifact: approve goes on; feedback redoes the stage
    (recorded in the outcome); an edit replaces the artifact, or, refused, asks again with
    the reason."""
    stage = request.stage
    reply = ask_copilot(deps, request)
    answered = {"notice": {stage: ""}}
    if reply.action == "feedback":
        outcome = _with_feedback(state, deps, stage, reply.text)
        update = {**answered, "feedback": {stage: reply.text}, "outcome": outcome}
        return Command(goto=gate.redo, update=update)
    if reply.action == "edit":
        try:
            edited = edit(reply.text)
        except refused as exc:
            return Command(goto=gate.again, update={"notice": {stage: str(exc)}})
        return Command(goto=gate.then, update={**answered, gate.key: edited})
    return Command(goto=gate.then, update=answered)


def experiment(
    state: IdeaState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["gate_experiments", "finish"]]:
    """Experiment stage: Aider rounds in the idea's folder, following the plan if there is
    one; writes experiments.json."""
    deps = runtime.context
    feedback = state.get("feedback", {}).get("experiments")
    planned = state.get("experiment_plan")
    record, outcome = _stage_call(
        state,
        deps,
        "experiments",
        lambda: stages.experiments_stage(deps, state["idea"], feedback, planned),
    )
    if record is not None and record.status != "ok":
        outcome.status, outcome.reason = "failed", f"experiments: {record.reason}"
    if _failed(outcome) or record is None:
        return Command(goto="finish", update={"outcome": outcome})
    return Command(goto="gate_experiments", update={"outcome": outcome, "experiment": record})


def gate_experiments(
    state: IdeaState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["experiment", "write"]]:
    """Co-pilot gate after experiments: approve, edit the notes, or redo with feedback."""
    deps = runtime.context
    record = state["experiment"]
    if deps.copilot is None:
        return Command(goto="write")
    request = CopilotRequest(
        stage="experiments",
        idea=state["idea"].Name,
        summary=stages.experiment_summary(record),
        editable=record.notes,
    )
    reply = ask_copilot(deps, request)
    if reply.action == "feedback":
        outcome = _with_feedback(state, deps, "experiments", reply.text)
        update = {"feedback": {"experiments": reply.text}, "outcome": outcome}
        return Command(goto="experiment", update=update)
    if reply.action == "edit":
        edited = record.model_copy(update={"notes": reply.text})
        stages.save_experiment(deps, state["idea"], edited)
        return Command(goto="write", update={"experiment": edited})
    return Command(goto="write")


def write(
    state: IdeaState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["gate_writeup", "finish"]]:
    """Write-up stage: sections, citations, compile-and-fix; paper/paper.pdf."""
    deps = runtime.context
    feedback = state.get("feedback", {}).get("writeup")
    idea, record = state["idea"], state["experiment"]
    writeup, outcome = _stage_call(
        state,
        deps,
        "writeup",
        lambda: stages.writeup_stage(deps, idea, record, feedback, state.get("experiment_plan")),
    )
    if _failed(outcome) or writeup is None:
        return Command(goto="finish", update={"outcome": outcome})
    outcome.paper_pdf = str(deps.run.idea(idea.Name).paper_pdf)
    return Command(goto="gate_writeup", update={"outcome": outcome})


def gate_writeup(
    state: IdeaState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["write", "review"]]:
    """Co-pilot gate after the write-up: approve, edit paper.tex (recompiled), or redo."""
    deps = runtime.context
    if deps.copilot is None:
        return Command(goto="review")
    paths = deps.run.idea(state["idea"].Name)
    tex = paths.paper_dir / "paper.tex"
    request = CopilotRequest(
        stage="writeup",
        idea=state["idea"].Name,
        summary=f"PDF: {paths.paper_pdf}",
        editable=tex.read_text(encoding="utf-8") if tex.is_file() else "",
    )
    reply = ask_copilot(deps, request)
    if reply.action == "feedback":
        outcome = _with_feedback(state, deps, "writeup", reply.text)
        update = {"feedback": {"writeup": reply.text}, "outcome": outcome}
        return Command(goto="write", update=update)
    if reply.action == "edit":
        stages.recompile(deps, state["idea"], reply.text)
    return Command(goto="review")


def review(
    state: IdeaState, runtime: Runtime[PipelineDeps]
) -> Command[Literal["improve", "finish"]]:
    """Review stage: the reviewer ensemble on paper.pdf; review/review.json and reports."""
    deps = runtime.context
    idea = state["idea"]
    report, outcome = _stage_call(
        state,
        deps,
        "review",
        lambda: stages.review_stage(deps, idea, revision=False),
    )
    if report is None or _failed(outcome):
        return Command(goto="finish", update={"outcome": outcome})
    stages.apply_review(outcome, report, deps.run.idea(idea.Name).review_dir)
    goto: Literal["improve", "finish"] = "improve" if deps.settings.pipeline.improve else "finish"
    return Command(goto=goto, update={"outcome": outcome})


def improve(state: IdeaState, runtime: Runtime[PipelineDeps]) -> dict[str, Any]:
    """One revision from the review, then a second review; both versions are kept."""
    deps = runtime.context
    idea = state["idea"]
    report, outcome = _stage_call(
        state,
        deps,
        "improve",
        lambda: stages.improve_stage(deps, idea, state["experiment"], state.get("experiment_plan")),
    )
    if report is not None and not _failed(outcome):
        outcome.revised_overall = stages.overall_of(report)
    return {"outcome": outcome}


def finish(state: IdeaState, runtime: Runtime[PipelineDeps]) -> dict[str, Any]:
    """Close the idea: done unless a stage failed or stopped; publish its outcome."""
    outcome = _outcome(state, runtime.context)
    if outcome.status == "running":
        outcome.status = "done"
    runtime.context.notify(
        PipelineEvent(
            idea=outcome.name, stage=outcome.stage, status="done", detail=finish_detail(outcome)
        )
    )
    return {"outcome": outcome, "outcomes": {outcome.name: outcome}}


def finish_detail(outcome: IdeaOutcome) -> str:
    """How the idea ended, for the progress line: 'idea done: Overall 4.0, reject'."""
    text = f"idea {outcome.status}"
    if outcome.overall is not None:
        text += f": Overall {outcome.overall:.1f}, {outcome.decision or 'no decision'}"
    elif outcome.reason:
        text += f": {outcome.reason}"
    return text


def idea_folder(deps: PipelineDeps, name: str) -> Path:
    """The idea's folder in the run."""
    return deps.run.idea(name).root
