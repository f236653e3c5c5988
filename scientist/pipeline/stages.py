"""What the paper graph's nodes call for each stage: ``ideas_stage``, ``survey_stage``,
``experiments_stage``, ``writeup_stage``, ``review_stage`` and ``improve_stage`` run the
stage graphs in ``deps.graphs``; ``plan_stage`` makes the experiment plan (one call).

Each stage owns its logic (``scientist.ideas``, ``scientist.survey``, ``scientist.plan``,
``scientist.experiments``, ``scientist.writeup``, ``reviewer.review``); this module only
builds the stage's deps from the pipeline's and files the results in the run folder.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from core.settings import Settings
from gateway.errors import AutoscholarError
from gateway.ledger import Ledger, read_entries
from gateway.types import LedgerEntry
from reviewer.review.form import ReviewReport
from reviewer.review.report import write_outputs
from scientist.experiments.models import ExperimentRecord
from scientist.experiments.rounds import ExperimentDeps
from scientist.ideas.deps import IdeasDeps
from scientist.ideas.models import Idea
from scientist.ideas.records import IdeaRecord, IdeasFile
from scientist.pipeline.deps import PipelineDeps
from scientist.pipeline.models import IdeaOutcome, RunManifest, RunStatus
from scientist.plan.models import ExperimentPlan, run_line
from scientist.plan.planning import PlanDeps, make_plan, parse_edited_plan, save_plan
from scientist.survey.deps import SurveyDeps
from scientist.survey.edit import apply_edit
from scientist.survey.models import REVIEW_MD, LiteratureReview, read_review, review_refs
from scientist.survey.report import counts, save_review
from scientist.writeup.deps import WriteupDeps
from scientist.writeup.inputs import read_related
from scientist.writeup.models import WriteupRecord

T = TypeVar("T")

if TYPE_CHECKING:
    from scientist.ideas.records import PaperRef
    from scientist.pipeline.state import PaperState


def idea_ledger(deps: PipelineDeps, name: str) -> Ledger:
    """The idea's own ledger (``<idea>/ledger.jsonl``), chained to the run's."""
    return deps.idea_gateway(name).ledger


def merge_idea_ledger(deps: PipelineDeps, name: str) -> int:
    """Add the calls an idea made as a task of its own (``<idea>/ledger.jsonl``) to the run's
    ledger, each once (a merge repeated after a crash adds nothing); how many were added."""
    path = deps.run.idea(name).root / "ledger.jsonl"
    if not path.is_file():
        return 0
    known = {entry.model_dump_json() for entry in deps.run_ledger.entries}
    added = 0
    for entry in read_entries(path):
        if entry.model_dump_json() not in known:
            deps.run_ledger.record(entry)
            added += 1
    return added


def ideas_stage(deps: PipelineDeps, feedback: str | None) -> IdeasFile:
    """The ideas stage; writes ideas.json."""
    stage_deps = IdeasDeps(gateway=deps.gateway, settings=deps.settings, literature=deps.literature)
    ideas = deps.graphs.ideas(deps.template, stage_deps, feedback=feedback)
    deps.run.ideas_json.write_text(ideas.model_dump_json(indent=2), encoding="utf-8")
    return ideas


def select_ideas(ideas_file: IdeasFile, settings: Settings) -> list[Idea]:
    """The best ``pipeline.ideas_to_run`` ideas, leaving out those found not novel; the
    researcher's own ideas instead, when given, in their order (one found not novel is left
    out only under ``pipeline.skip_given_not_novel``)."""
    pipeline = settings.pipeline
    given = [r for r in ideas_file.ideas if r.origin == "given"]
    if given:
        if pipeline.skip_given_not_novel:
            given = [r for r in given if r.novel is not False]
        return [r.idea for r in given[: pipeline.ideas_to_run]]
    records = list(ideas_file.ideas)
    if pipeline.skip_not_novel:
        records = [r for r in records if r.novel is not False]
    ranked = sorted(records, key=lambda r: _score(r.idea, pipeline.rank_by), reverse=True)
    return [r.idea for r in ranked[: pipeline.ideas_to_run]]


def no_ideas_reason(ideas_file: IdeasFile, settings: Settings) -> str:
    """Why the ideas stage left no idea to run, in one line (run.json, progress, tables)."""
    records = ideas_file.ideas
    if not records:
        return _nothing_kept(ideas_file)
    if select_ideas(ideas_file, settings):
        return "the co-pilot's edit left no idea to run"
    given = [r for r in records if r.origin == "given"]
    if given:
        notes = "; ".join(_verdict_note(r, named=True) for r in given[:3])
        return (
            f"your own idea was found not novel and --stop-if-not-novel "
            f"(pipeline.skip_given_not_novel) left it out ({notes})"
        )
    notes = "; ".join(_verdict_note(r, named=len(records) > 1) for r in records[:3])
    more = f"; {len(records) - 3} more" if len(records) > 3 else ""
    return f"no idea passed the novelty check ({notes}{more})"


def given_notes(ideas_file: IdeasFile, settings: Settings) -> list[str]:
    """One line per researcher's idea the novelty check found not novel, with the closest
    paper, and whether it runs anyway (progress, run.json's notes)."""
    stopped = settings.pipeline.skip_given_not_novel
    then = "left out (--stop-if-not-novel)" if stopped else "it runs anyway, as given"
    return [
        f"your idea {_verdict_note(r, named=True)}; {then}"
        for r in ideas_file.ideas
        if r.origin == "given" and r.novel is False
    ]


def _nothing_kept(ideas_file: IdeasFile) -> str:
    if ideas_file.failures:
        count, first = len(ideas_file.failures), _cut(ideas_file.failures[0].error, 160)
        return f"the model gave no valid idea ({count} failed; the first: {first})"
    if ideas_file.duplicates:
        return "every idea repeated an earlier or seed idea"
    return "the ideas stage produced no idea"


def _verdict_note(record: IdeaRecord, *, named: bool) -> str:
    verdict = record.novelty
    status = verdict.status if verdict is not None else "unchecked"
    note = f"{record.idea.Name} {status}" if named else status
    if verdict is not None and verdict.closest:
        paper = verdict.closest[0]
        year = f" ({paper.year})" if paper.year else ""
        return f'{note}: closest paper "{_cut(paper.title, 80)}"{year}'
    if verdict is not None and verdict.justification.strip():
        return f"{note}: {_cut(verdict.justification, 100)}"
    return note


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def finished_status(deps: PipelineDeps, state: PaperState) -> tuple[RunStatus, str | None]:
    """How a run that ended normally ended: ``done``, or ``no_ideas`` and why, when no idea
    went past the ideas stage (so no paper was written)."""
    if state.get("ideas") or state.get("outcomes"):
        return "done", None
    try:
        ideas_file = IdeasFile.model_validate_json(deps.run.ideas_json.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        return "no_ideas", f"no idea to run, and {deps.run.ideas_json} is unreadable ({exc})"
    return "no_ideas", no_ideas_reason(ideas_file, deps.settings)


def _score(idea: Idea, rank_by: str) -> int:
    fields = ("Interestingness", "Feasibility", "Novelty") if rank_by == "sum" else (rank_by,)
    return sum(getattr(idea, f) or 0 for f in fields)  # an unscored idea ranks last


def survey_stage(deps: PipelineDeps, idea: Idea, feedback: str | None) -> LiteratureReview:
    """The literature review in the idea's folder; writes literature_review.json and .md."""
    folder = deps.run.idea(idea.Name).root
    gateway = deps.idea_gateway(idea.Name)
    stage_deps = SurveyDeps(gateway=gateway, settings=deps.settings, literature=deps.literature)
    return deps.graphs.survey(idea, folder, deps.template, stage_deps, feedback=feedback)


def edit_review(
    deps: PipelineDeps, idea: Idea, review: LiteratureReview, text: str
) -> LiteratureReview:
    """Apply a researcher's edit of the review (a ReviewEditError refuses it) and write it."""
    limit = deps.settings.literature.max_results
    edited = apply_edit(review, text, deps.literature, deps.template.path, limit)
    save_review(edited, deps.run.idea(idea.Name).root)
    return edited


def review_summary(deps: PipelineDeps, review: LiteratureReview, notice: str = "") -> str:
    """A few lines for the co-pilot: papers per theme (by key), the gaps, where it is."""
    lines = [f"YOUR EDIT WAS NOT APPLIED: {notice}", ""] if notice else []
    lines.append(counts(review))
    for theme, papers in review.themes():
        lines.append(f"{theme}: {', '.join(p.key for p in papers)}")
    lines += [f"gap: {_cut(gap, 160)}" for gap in review.gaps]
    lines.append(f"read: {deps.run.idea(review.idea).root / REVIEW_MD}")
    return "\n".join(lines)


def plan_stage(
    deps: PipelineDeps, idea: Idea, review: LiteratureReview | None, feedback: str | None
) -> ExperimentPlan:
    """The experiment plan from the idea, the template and the review; writes plan.json/.md."""
    stage_deps = PlanDeps(gateway=deps.idea_gateway(idea.Name), settings=deps.settings)
    chars = stage_deps.profile().plan_text_chars
    brief = review.brief(chars) if review is not None else ""
    plan = make_plan(idea, deps.template, brief, stage_deps, feedback)
    save_plan(plan, deps.run.idea(idea.Name).root)
    return plan


def edit_plan(deps: PipelineDeps, idea: Idea, plan: ExperimentPlan, text: str) -> ExperimentPlan:
    """A researcher's edited plan (a PlanEditError refuses it), written as plan.json/.md."""
    edited = parse_edited_plan(text, plan)
    save_plan(edited, deps.run.idea(idea.Name).root)
    return edited


def plan_summary(plan: ExperimentPlan, rounds: int, notice: str = "") -> str:
    """A few lines for the co-pilot: hypotheses and the run each coding round makes."""
    lines = [f"YOUR EDIT WAS NOT APPLIED: {notice}", ""] if notice else []
    lines += [f"hypothesis: {_cut(h, 160)}" for h in plan.hypotheses]
    for number, run in enumerate(plan.runs, start=1):
        made = "" if number <= rounds else " (beyond experiments.max_rounds: not made)"
        lines.append(f"run_{number} {_cut(run_line(run), 160)}{made}")
    return "\n".join(lines)


def experiments_stage(
    deps: PipelineDeps, idea: Idea, feedback: str | None, plan: ExperimentPlan | None = None
) -> ExperimentRecord:
    """The experiment stage in the idea's folder, following ``plan`` when there is one;
    writes experiments.json."""
    folder = deps.run.idea(idea.Name).root
    stage_deps = ExperimentDeps(settings=deps.settings, editor=deps.editor, runner=deps.runner)
    record = deps.graphs.experiments(
        idea, folder, deps.template, stage_deps, feedback=feedback, plan=plan
    )
    record_coder_usage(idea_ledger(deps, idea.Name), record, deps.settings.llm.models.coder)
    return record


def record_coder_usage(ledger: Ledger, record: ExperimentRecord, model: str) -> None:
    """Aider calls the coder model itself; its reported tokens and cost join the ledger."""
    for round_ in record.rounds:
        if round_.tokens_sent is None and round_.tokens_received is None:
            continue
        ledger.record(
            LedgerEntry(
                role="coder",
                model=model,
                prompt_tokens=round_.tokens_sent or 0,
                completion_tokens=round_.tokens_received or 0,
                cost_usd=round_.cost_usd or 0.0,
                latency_s=round_.seconds,
                cache_hit=False,
                schema_name=f"aider:{round_.kind}",
            )
        )


def save_experiment(deps: PipelineDeps, idea: Idea, record: ExperimentRecord) -> None:
    """Write an (edited) experiment record back to experiments.json."""
    path = deps.run.idea(idea.Name).experiments_json
    path.write_text(record.model_dump_json(indent=2), encoding="utf-8")


def experiment_summary(record: ExperimentRecord) -> str:
    """A few lines for the co-pilot: rounds, statuses, the last results."""
    lines = [f"baseline: {record.baseline.status}"]
    lines += [f"round {r.index} ({r.kind}): {r.status}" for r in record.rounds]
    runs = record.successful_runs()
    if runs:
        last = runs[-1]
        for group, result in last.results.items():
            means = ", ".join(f"{k}={v:.4g}" for k, v in result.means.items())
            lines.append(f"{last.run_name} {group}: {means}")
    return "\n".join(lines)


class WriteupFailed(AutoscholarError):
    """The write-up ended without a PDF (its errors are in writeup.json)."""


def _writeup_deps(deps: PipelineDeps, idea: Idea) -> WriteupDeps:
    gateway = deps.idea_gateway(idea.Name)
    return WriteupDeps(
        gateway=gateway, settings=deps.settings, literature=deps.literature, compiler=deps.compiler
    )


def related_papers(deps: PipelineDeps, idea: Idea) -> list[PaperRef]:
    """The papers the idea's novelty check found relevant (ideas.json); Related Work cites them."""
    fallback = deps.settings.writing.novelty_citations
    return read_related(deps.run.ideas_json, idea.Name, fallback)


def review_papers(deps: PipelineDeps, idea: Idea) -> list[PaperRef]:
    """The papers of the idea's literature review (literature_review.json, as the co-pilot
    left it), under the review's keys; the Introduction and Related Work cite from them."""
    return review_refs(read_review(deps.run.idea(idea.Name).root))


def writeup_stage(
    deps: PipelineDeps,
    idea: Idea,
    record: ExperimentRecord,
    feedback: str | None,
    plan: ExperimentPlan | None = None,
) -> WriteupRecord:
    """The write-up stage; paper/ with paper.tex, references.bib, paper.pdf, writeup.json."""
    folder = deps.run.idea(idea.Name).root
    result = deps.graphs.writeup(
        idea,
        folder,
        record,
        _writeup_deps(deps, idea),
        feedback=feedback,
        related=related_papers(deps, idea),
        review_papers=review_papers(deps, idea),
        plan=plan,
    )
    if result.status != "ok":
        raise WriteupFailed("the paper did not build: " + "; ".join(result.errors[:3]))
    return result


def recompile(deps: PipelineDeps, idea: Idea, tex: str) -> None:
    """Replace paper.tex with a human's edit and compile it again."""
    paper_dir = deps.run.idea(idea.Name).paper_dir
    (paper_dir / "paper.tex").write_text(tex, encoding="utf-8")
    result = deps.compiler.compile(paper_dir, "paper.tex", deps.settings.writing.compile_timeout_s)
    if not result.ok:
        raise WriteupFailed("the edited paper.tex does not compile; see paper/paper.log")


def review_stage(deps: PipelineDeps, idea: Idea, *, revision: bool) -> ReviewReport:
    """The reviewer ensemble on the idea's paper.pdf; writes review/ (or review_revised/)."""
    paths = deps.run.idea(idea.Name)
    out_dir = paths.review_dir if not revision else paths.root / "review_revised"
    review_deps = replace(deps.review, gateway=deps.idea_gateway(idea.Name))
    report = deps.graphs.review({"pdf_path": str(paths.paper_pdf)}, review_deps)
    write_outputs(report, out_dir)
    return report


def overall_of(report: ReviewReport) -> float | None:
    """Mean Overall score of a review, if any reviewer succeeded."""
    stats = report.scores.get("Overall")
    return stats.mean if stats is not None else None


def apply_review(outcome: IdeaOutcome, report: ReviewReport, review_dir: Path) -> None:
    """Copy the headline figures of a review into the idea's outcome."""
    outcome.review_json = str(review_dir / "review.json")
    outcome.overall = overall_of(report)
    outcome.decision = report.decision.decision
    outcome.accept_probability = report.decision.probability


def improve_stage(
    deps: PipelineDeps, idea: Idea, record: ExperimentRecord, plan: ExperimentPlan | None = None
) -> ReviewReport:
    """Revise the paper once from its review, then review it again; both versions are kept.

    The first version is copied to paper_original/ (review/ stays); the revision is written
    to paper/ and its review to review_revised/.
    """
    paths = deps.run.idea(idea.Name)
    shutil.copytree(paths.paper_dir, paths.root / "paper_original", dirs_exist_ok=True)
    review_md = (paths.review_dir / "review.md").read_text(encoding="utf-8")
    deps.graphs.writeup(
        idea,
        paths.root,
        record,
        _writeup_deps(deps, idea),
        review=review_md,
        related=related_papers(deps, idea),
        review_papers=review_papers(deps, idea),
        plan=plan,
    )
    return review_stage(deps, idea, revision=True)


def write_manifest(
    deps: PipelineDeps, state: PaperState, *, status: RunStatus, reason: str | None = None
) -> RunManifest:
    """Update run.json (written at the start) from the graph state and the run's ledger."""
    path = deps.run.run_json
    now = datetime.now(UTC)
    if path.is_file():
        manifest = RunManifest.model_validate_json(path.read_text(encoding="utf-8"))
    else:
        manifest = RunManifest(template=deps.template.name, started_at=now.isoformat())
    outcomes = state.get("outcomes") or {}
    update: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "finished_at": now.isoformat() if status != "running" else None,
        "wall_s": round((now - datetime.fromisoformat(manifest.started_at)).total_seconds(), 1),
        "ideas": list(outcomes.values()) or manifest.ideas,
        "totals": deps.run_ledger.totals().model_dump(),
    }
    if state.get("ideas_usage") is not None:
        update["ideas_stage"] = state["ideas_usage"]
    if state.get("notes") is not None:
        update["notes"] = state["notes"]
    if state.get("ideas_feedback"):
        update["feedback"] = {"ideas": list(state["ideas_feedback"])}
    manifest = manifest.model_copy(update=update)
    path.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    return manifest
