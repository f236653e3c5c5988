"""The experiment stage's nodes: prepare → baseline → coding rounds → plot → notes → finish.

Each node is a small function of the state and the runtime context (``ExperimentDeps``);
``graphs/experiments.py`` wires them. Control decisions rest on recorded facts (did the
file change, did the run validate, how many rounds are left), never on phrases in a reply.
"""

from __future__ import annotations

import operator
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import Command

from core.runstore import IdeaPaths
from core.settings import Settings
from scientist.experiments import workspace as ws
from scientist.experiments.editor import CodeEditor, EditResult
from scientist.experiments.feedback import (
    code_prompt,
    last_round_summary,
    notes_prompt,
    plot_prompt,
    results_table,
)
from scientist.experiments.models import (
    ExperimentRecord,
    FigureNote,
    ProcessOutcome,
    RoundKind,
    RoundRecord,
    RoundStatus,
    RunOutcome,
)
from scientist.experiments.runner import Runner, environment_key, environment_of
from scientist.ideas.models import Idea
from scientist.plan.models import ExperimentPlan

Stage = Literal["baseline", "experiment", "plot", "notes"]


@dataclass(frozen=True)
class ExperimentProgress:
    """A step of the stage started or finished; ``status`` is "editing", "running" or final."""

    stage: Stage
    round: int
    total_rounds: int
    status: str
    elapsed_s: float
    detail: str = ""


@dataclass
class ExperimentDeps:
    """What the experiment nodes need; passed as LangGraph's runtime context."""

    settings: Settings
    editor: CodeEditor
    runner: Runner
    on_progress: Callable[[ExperimentProgress], None] | None = None

    def notify(self, event: ExperimentProgress) -> None:
        """Report progress if anyone listens."""
        if self.on_progress is not None:
            self.on_progress(event)


class ExperimentInput(TypedDict):
    """One idea, its folder, the template folder, a human's feedback (co-pilot mode), and the
    idea's experiment plan (run_i makes planned run i)."""

    idea: Idea
    idea_dir: str
    template_dir: str
    feedback: NotRequired[str | None]
    plan: NotRequired[ExperimentPlan | None]


class ExperimentState(ExperimentInput, total=False):
    """Everything the stage accumulates."""

    started_at: float
    baseline: RunOutcome
    rounds: Annotated[list[RoundRecord], operator.add]
    next_run: int
    no_change_streak: int
    plot_error: str
    figures: list[FigureNote]
    notes: str
    failure: str
    record: ExperimentRecord


def _deps(runtime: Runtime[ExperimentDeps]) -> ExperimentDeps:
    return runtime.context


def _elapsed(state: ExperimentState) -> float:
    return round(time.time() - state.get("started_at", time.time()), 1)


def prepare(state: ExperimentState, runtime: Runtime[ExperimentDeps]) -> dict[str, Any]:
    """Copy the template into the idea folder afresh; reuse the template's run_0 if valid."""
    idea_dir, template_dir = Path(state["idea_dir"]), Path(state["template_dir"])
    ws.copy_template(template_dir, idea_dir)
    update: dict[str, Any] = {"started_at": time.time(), "next_run": 1, "no_change_streak": 0}
    deps = _deps(runtime)
    if deps.settings.experiments.reuse_template_baseline:
        reused = ws.reuse_baseline(template_dir, idea_dir, environment_key(deps.runner))
        if reused is not None:
            update["baseline"] = reused
    return update


def baseline(
    state: ExperimentState, runtime: Runtime[ExperimentDeps]
) -> Command[Literal["code_round", "finish"]]:
    """Run run_0 unless it was reused; without a baseline there is nothing to compare."""
    deps, idea_dir = _deps(runtime), Path(state["idea_dir"])
    total = deps.settings.experiments.max_rounds
    outcome = state.get("baseline")
    if outcome is None:
        deps.notify(ExperimentProgress("baseline", 0, total, "running", _elapsed(state), "run_0"))
        outcome = deps.runner.run_experiment(idea_dir, ws.BASELINE)
    deps.notify(ExperimentProgress("baseline", 0, total, outcome.status, _elapsed(state)))
    update: dict[str, Any] = {"baseline": outcome}
    if outcome.status != "ok":
        update["failure"] = f"the baseline run_0 failed ({outcome.status}: {outcome.reason})"
        return Command(update=update, goto="finish")
    ws.start_notes(idea_dir, state["idea"], outcome)
    return Command(update=update, goto="code_round")


def _experiment_rounds(state: ExperimentState) -> list[RoundRecord]:
    return [r for r in state.get("rounds", []) if r.kind == "experiment"]


def _successful_runs(state: ExperimentState) -> list[RunOutcome]:
    return [r.run for r in _experiment_rounds(state) if r.run is not None and r.status == "ok"]


def code_round(
    state: ExperimentState, runtime: Runtime[ExperimentDeps]
) -> Command[Literal["code_round", "plot_round"]]:
    """One coding round: the coder edits, the sandbox runs the new run_i, results recorded."""
    deps, idea_dir = _deps(runtime), Path(state["idea_dir"])
    limits = deps.settings.experiments
    previous = _experiment_rounds(state)
    index, run_name = len(previous) + 1, f"run_{state.get('next_run', 1)}"
    plan = state.get("plan")
    planned = plan.run_for(state.get("next_run", 1)) if plan is not None else None
    prompt = code_prompt(
        state["idea"],
        round_index=index,
        max_rounds=limits.max_rounds,
        run_name=run_name,
        table=results_table(
            state["baseline"],
            _successful_runs(state),
            deps.settings.profile(deps.settings.llm.models.coder).coder_table_runs,
        ),
        last_round=last_round_summary(previous[-1] if previous else None),
        feedback=state.get("feedback"),
        plan=plan,
        planned=planned,
    )
    notify = _notifier(deps, state, "experiment", index, limits.max_rounds)
    record = _code_round(deps, idea_dir, index, run_name, prompt, notify)
    if planned is not None:
        record = record.model_copy(update={"planned_run": planned.name})
    notify(record.status, run_name)
    streak = state.get("no_change_streak", 0) + 1 if record.status == "no_change" else 0
    update = {
        "rounds": [record],
        "next_run": state.get("next_run", 1) + (1 if record.status == "ok" else 0),
        "no_change_streak": streak,
    }
    more = index < limits.max_rounds and streak < limits.stop_after_no_change
    return Command(update=update, goto="code_round" if more else "plot_round")


def _notifier(
    deps: ExperimentDeps, state: ExperimentState, stage: Stage, index: int, total: int
) -> Callable[[str, str], None]:
    def notify(status: str, detail: str = "") -> None:
        deps.notify(ExperimentProgress(stage, index, total, status, _elapsed(state), detail))

    return notify


def _code_round(
    deps: ExperimentDeps,
    idea_dir: Path,
    index: int,
    run_name: str,
    prompt: str,
    notify: Callable[[str, str], None],
) -> RoundRecord:
    notify("editing", run_name)
    edit, before, after = _edit(deps, idea_dir, list(ws.CODER_FILES), prompt, f"round_{index}")
    record = _round_record(index, "experiment", prompt, edit, before, after, run_name=run_name)
    if before["experiment.py"] == after["experiment.py"]:
        return record.model_copy(update={"status": _unchanged_status(edit)})
    notify("running", run_name)
    run = deps.runner.run_experiment(idea_dir, run_name)
    if run.status == "ok":
        ws.append_run_notes(idea_dir, run)
    else:
        shutil.rmtree(idea_dir / run_name, ignore_errors=True)  # plot.py must not see it
    status: RoundStatus = "ok" if run.status == "ok" else "run_failed"
    seconds = round(record.seconds + run.seconds, 3)
    return record.model_copy(update={"status": status, "run": run, "seconds": seconds})


def _edit(
    deps: ExperimentDeps, idea_dir: Path, files: list[str], prompt: str, stem: str
) -> tuple[EditResult, dict[str, str], dict[str, str]]:
    before = ws.snapshot(idea_dir, files)
    edit = deps.editor.edit(idea_dir, files, prompt, log_stem=stem)
    return edit, before, ws.snapshot(idea_dir, files)


def _unchanged_status(edit: EditResult) -> RoundStatus:
    if edit.timed_out:
        return "timeout"
    return "no_change" if edit.exit_code == 0 else "editor_failed"


def _round_record(
    index: int,
    kind: RoundKind,
    prompt: str,
    edit: EditResult,
    before: dict[str, str],
    after: dict[str, str],
    **extra: Any,
) -> RoundRecord:
    return RoundRecord(
        index=index,
        kind=kind,
        status="ok",
        prompt=prompt,
        command=edit.command,
        diff=ws.unified_diff(before, after),
        changed_files=ws.changed_files(before, after),
        seconds=edit.seconds,
        editor_exit_code=edit.exit_code,
        tokens_sent=edit.tokens_sent,
        tokens_received=edit.tokens_received,
        cost_usd=edit.cost_usd,
        editor_log=edit.log_path,
        **extra,
    )


def plot_round(
    state: ExperimentState, runtime: Runtime[ExperimentDeps]
) -> Command[Literal["plot_round", "notes_round"]]:
    """The coder edits plot.py's labels; plot.py runs in the sandbox; a failure goes back once."""
    deps, idea_dir = _deps(runtime), Path(state["idea_dir"])
    attempts = [r for r in state.get("rounds", []) if r.kind == "plot"]
    index, total = len(attempts) + 1, deps.settings.experiments.plot_attempts
    runs = [state["baseline"], *_successful_runs(state)]
    prompt = plot_prompt(state["idea"], runs, state.get("plot_error", ""), state.get("feedback"))
    notify = _notifier(deps, state, "plot", index, total)
    notify("editing", "plot.py")
    edit, before, after = _edit(deps, idea_dir, ["plot.py"], prompt, f"plot_{index}")
    notify("running", "plot.py")
    plot = deps.runner.run_plot(idea_dir)
    status = _plot_status(edit, plot, changed=before != after)
    record = _round_record(index, "plot", prompt, edit, before, after, plot_run=plot)
    record = record.model_copy(update={"status": status, "seconds": edit.seconds + plot.seconds})
    notify(status, plot.reason or "")
    figures = [FigureNote(path=name) for name in ws.figure_files(idea_dir)]
    update: dict[str, Any] = {"rounds": [record], "figures": figures}
    if plot.status != "ok" and index < total:
        update["plot_error"] = f"{plot.reason}\n{plot.error_tail}"
        return Command(update=update, goto="plot_round")
    return Command(update=update, goto="notes_round")


def _plot_status(edit: EditResult, plot: ProcessOutcome, *, changed: bool) -> RoundStatus:
    if plot.status != "ok":
        return "run_failed"
    if changed:
        return "ok"
    return _unchanged_status(edit)


def notes_round(state: ExperimentState, runtime: Runtime[ExperimentDeps]) -> dict[str, Any]:
    """The coder describes each figure in notes.txt; the descriptions become FigureNotes."""
    deps, idea_dir = _deps(runtime), Path(state["idea_dir"])
    names = [f.path for f in state.get("figures", [])]
    if not names:
        return {"notes": _read_notes(idea_dir)}
    ws.add_figures_section(idea_dir, names)
    prompt = notes_prompt(state["idea"], names, state.get("feedback"))
    notify = _notifier(deps, state, "notes", 1, 1)
    notify("editing", ws.NOTES)
    edit, before, after = _edit(deps, idea_dir, [ws.NOTES], prompt, "notes")
    record = _round_record(1, "notes", prompt, edit, before, after)
    status: RoundStatus = "ok" if before != after else _unchanged_status(edit)
    record = record.model_copy(update={"status": status})
    notify(status, "")
    notes = _read_notes(idea_dir)
    return {"rounds": [record], "notes": notes, "figures": ws.figure_notes(notes, names)}


def _read_notes(idea_dir: Path) -> str:
    path = idea_dir / ws.NOTES
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def finish(state: ExperimentState, runtime: Runtime[ExperimentDeps]) -> dict[str, Any]:
    """Assemble the ExperimentRecord and write it to ``experiments.json``."""
    idea_dir = Path(state["idea_dir"])
    failure = state.get("failure")
    record = ExperimentRecord(
        idea_name=state["idea"].Name,
        template=Path(state["template_dir"]).name,
        baseline=state["baseline"],
        rounds=state.get("rounds", []),
        figures=state.get("figures", []),
        notes=state.get("notes", ""),
        status="failed" if failure else "ok",
        reason=failure,
        feedback=state.get("feedback"),
        seconds=_elapsed(state),
        environment=environment_of(_deps(runtime).runner),
    )
    IdeaPaths(idea_dir).experiments_json.write_text(
        record.model_dump_json(indent=1), encoding="utf-8"
    )
    return {"record": record}
