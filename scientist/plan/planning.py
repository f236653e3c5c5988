"""The experiment-plan stage: one structured call from the idea, the template and the review.

``make_plan`` asks the planner (the ideas role's model) for hypotheses, at most
``experiments.max_rounds`` runs, baselines, metrics and what counts as support, and
``save_plan`` writes plan.json and plan.md in the idea's folder. The coding rounds follow
the plan (round ``i`` makes planned run ``i`` in ``run_i``) and the write-up's method
section is written from it. A co-pilot's edited plan replaces it (``parse_edited_plan``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from core.settings import Settings
from gateway import Gateway
from gateway.errors import AutoscholarError
from gateway.profiles import OutputProfile
from gateway.prompts import render
from scientist.ideas.models import Idea
from scientist.ideas.template import Template
from scientist.plan.models import (
    PLAN_JSON,
    PLAN_MD,
    ExperimentPlan,
    PlannedRun,
    PlanReply,
    plan_reply,
    run_line,
)

PROMPTS = Path(__file__).parent / "prompts"
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class PlanEditError(AutoscholarError):
    """The researcher's edited plan cannot be used; the message says what to change."""


@dataclass
class PlanDeps:
    """Gateway and settings of the plan stage; tests swap the gateway's backend."""

    gateway: Gateway
    settings: Settings

    def profile(self) -> OutputProfile:
        """The output profile of the planner (the ideas role's model)."""
        return self.settings.profile(self.settings.llm.models.ideas)


def baseline_text(template_dir: Path) -> str:
    """The template's run_0/final_info.json (from ``scientist baseline``), if it has one."""
    path = template_dir / "run_0" / "final_info.json"
    if not path.is_file():
        return "(not run yet: the experiment stage runs it first)"
    try:
        return json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=1)[:3000]
    except (OSError, json.JSONDecodeError):
        return "(unreadable)"


def plan_messages(
    idea: Idea, template: Template, review: str, deps: PlanDeps, feedback: str | None
) -> list[dict[str, str]]:
    """System and user messages of the planner."""
    chars = deps.profile().plan_code_chars
    user = render(
        PROMPTS,
        "plan_user.j2",
        title=idea.Title,
        experiment=idea.Experiment,
        task=template.prompt.task_description,
        code=template.experiment_code[:chars],
        baseline=baseline_text(template.path),
        review=review or "(no literature review)",
        runs=deps.settings.experiments.max_rounds,
        feedback=feedback or "",
    )
    system = render(PROMPTS, "plan_system.j2")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def make_plan(
    idea: Idea, template: Template, review: str, deps: PlanDeps, feedback: str | None = None
) -> ExperimentPlan:
    """The plan of ``idea`` (``review`` is the literature review as text, '' for none)."""
    profile = deps.profile()
    reply = deps.gateway.complete(
        plan_messages(idea, template, review, deps, feedback),
        role="ideas",
        schema=plan_reply(profile, deps.settings.experiments.max_rounds),
        max_tokens=profile.plan_max_tokens,
    )
    kept = PlanReply.model_validate(reply.model_dump())
    return ExperimentPlan(
        idea=idea.Name,
        title=idea.Title,
        hypotheses=kept.hypotheses,
        runs=distinct_names([run.planned() for run in kept.runs]),
        baselines=kept.baselines,
        metrics=kept.metrics,
        support=kept.support,
        feedback=feedback,
    )


def distinct_names(runs: list[PlannedRun]) -> list[PlannedRun]:
    """The runs with safe names, made unique by a numeric suffix where repeated."""
    seen: set[str] = set()
    named = []
    for number, run in enumerate(runs, start=1):
        base = _NAME_SAFE.sub("_", run.name.strip()).strip("_") or f"run_{number}"
        name, suffix = base, 2
        while name in seen:
            name, suffix = f"{base}_{suffix}", suffix + 1
        seen.add(name)
        named.append(run.model_copy(update={"name": name}))
    return named


def parse_edited_plan(text: str, original: ExperimentPlan) -> ExperimentPlan:
    """The researcher's edited plan (its JSON), for the same idea; a PlanEditError says what
    is wrong when it does not parse or has no run."""
    try:
        edited = ExperimentPlan.model_validate_json(text)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "the document"
        raise PlanEditError(
            f"The edited plan is not a valid plan ({where}: {error['msg']}); keep the JSON's "
            'fields ("hypotheses", "runs" with "name", "change" and "parameters", '
            '"baselines", "metrics", "support").'
        ) from exc
    if not edited.runs:
        raise PlanEditError("The edited plan has no run: the coding rounds need at least one.")
    update = {
        "idea": original.idea,
        "title": original.title,
        "runs": distinct_names(edited.runs),
        "edited": True,
    }
    return edited.model_copy(update=update)


def save_plan(plan: ExperimentPlan, idea_dir: Path) -> None:
    """Write plan.json and plan.md in the idea's folder."""
    idea_dir.mkdir(parents=True, exist_ok=True)
    (idea_dir / PLAN_JSON).write_text(plan.model_dump_json(indent=2), encoding="utf-8")
    (idea_dir / PLAN_MD).write_text(plan_markdown(plan), encoding="utf-8")


def plan_markdown(plan: ExperimentPlan) -> str:
    """The plan for a reader."""
    lines = [f"# Experiment plan: {plan.title}", "", f"Idea `{plan.idea}`"]
    if plan.edited:
        lines[-1] += " (edited by the researcher)"
    lines += ["", "## Hypotheses", "", *(f"- {h}" for h in plan.hypotheses)]
    lines += ["", "## Runs", "", "run_0 is the template's baseline; run i is coding round i.", ""]
    lines += [f"{n}. `run_{n}` {run_line(run)}" for n, run in enumerate(plan.runs, start=1)]
    lines += ["", "## Baselines", "", *(f"- {b}" for b in plan.baselines)]
    lines += ["", "## Metrics", "", *(f"- {m}" for m in plan.metrics)]
    lines += ["", "## What would count as support", "", plan.support or "(not stated)"]
    if plan.feedback:
        lines += ["", "## Researcher's feedback", "", plan.feedback]
    return "\n".join(lines) + "\n"


def plan_json(plan: ExperimentPlan) -> str:
    """The plan as the co-pilot edits it."""
    return plan.model_dump_json(indent=2)
