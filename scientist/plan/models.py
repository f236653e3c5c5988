"""The experiment plan: the model's reply and ``plan.json``.

Planned run ``i`` is what the coding rounds put in ``run_i`` (the baseline is ``run_0``), so
the plan has at most ``experiments.max_rounds`` runs. ``plan_reply(profile, runs)`` is the
schema sent, with the bounds of the planner's output profile.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)

from gateway.profiles import OutputProfile

PLAN_JSON = "plan.json"
PLAN_MD = "plan.md"

DESCRIBED = {
    "name": "A short identifier of the run, e.g. 'lr_sweep_high'.",
    "change": "What this run changes relative to the baseline, precisely enough to code.",
    "parameters": "The settings this run uses, name to value.",
    "parameter_items": "The settings this run uses, each 'name=value'.",
    "hypotheses": "What the experiments test, each a falsifiable statement.",
    "runs": "The runs to make, in order: run i is made in coding round i.",
    "baselines": "What the runs are compared against (run_0, the template's baseline, first).",
    "metrics": "The measured quantities that decide the hypotheses.",
    "support": "Which results would count as support for the hypotheses, and which against.",
}


class PlannedRun(BaseModel):
    """One run of the plan: what it changes and with which parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description=DESCRIBED["name"])
    change: str = Field(description=DESCRIBED["change"])
    parameters: dict[str, str] = Field(default_factory=dict, description=DESCRIBED["parameters"])


class RunReply(BaseModel):
    """One run as the planner writes it: parameters as 'name=value' items (a small model
    under a grammar keeps to short strings better than to free-form objects)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description=DESCRIBED["name"])
    change: str = Field(description=DESCRIBED["change"])
    parameters: list[str] = Field(description=DESCRIBED["parameter_items"])

    def planned(self) -> PlannedRun:
        """The run as the plan records it (parameters name → value)."""
        pairs = (item.partition("=") for item in self.parameters if item.strip())
        params = {name.strip(): value.strip() for name, _, value in pairs if name.strip()}
        return PlannedRun(name=self.name, change=self.change, parameters=params)


class PlanReply(BaseModel):
    """The planner's reply: hypotheses, runs, baselines, metrics, and what counts as support."""

    model_config = ConfigDict(extra="forbid")

    hypotheses: list[str] = Field(description=DESCRIBED["hypotheses"])
    runs: list[RunReply] = Field(description=DESCRIBED["runs"])
    baselines: list[str] = Field(description=DESCRIBED["baselines"])
    metrics: list[str] = Field(description=DESCRIBED["metrics"])
    support: str = Field(description=DESCRIBED["support"])


def _texts(profile: OutputProfile, name: str) -> Any:
    text = Annotated[str, StringConstraints(max_length=profile.plan_text_chars)]
    return (
        list[text],
        Field(min_length=1, max_length=profile.plan_items, description=DESCRIBED[name]),
    )


@functools.cache
def plan_reply(profile: OutputProfile, runs: int) -> type[PlanReply]:
    """The plan reply with ``profile``'s bounds and between 1 and ``runs`` runs."""
    chars = profile.plan_text_chars
    parameter = Annotated[str, StringConstraints(max_length=80)]
    run = create_model(
        "RunReply",
        __base__=RunReply,
        __doc__=RunReply.__doc__,
        name=(str, Field(min_length=1, max_length=60, description=DESCRIBED["name"])),
        change=(str, Field(max_length=chars, description=DESCRIBED["change"])),
        parameters=(
            list[parameter],
            Field(max_length=profile.plan_items, description=DESCRIBED["parameter_items"]),
        ),
    )
    fields: dict[str, Any] = {
        "hypotheses": _texts(profile, "hypotheses"),
        "runs": (list[run], Field(min_length=1, max_length=runs, description=DESCRIBED["runs"])),
        "baselines": _texts(profile, "baselines"),
        "metrics": _texts(profile, "metrics"),
        "support": (str, Field(max_length=chars, description=DESCRIBED["support"])),
    }
    return create_model("PlanReply", __base__=PlanReply, __doc__=PlanReply.__doc__, **fields)


class ExperimentPlan(BaseModel):
    """``plan.json``: what the coding rounds carry out, and what the write-up's method cites."""

    model_config = ConfigDict(extra="forbid")

    idea: str = Field(description="The idea's Name.")
    title: str = Field(description="The idea's Title.")
    hypotheses: list[str] = Field(default_factory=list, description=DESCRIBED["hypotheses"])
    runs: list[PlannedRun] = Field(default_factory=list, description=DESCRIBED["runs"])
    baselines: list[str] = Field(default_factory=list, description=DESCRIBED["baselines"])
    metrics: list[str] = Field(default_factory=list, description=DESCRIBED["metrics"])
    support: str = Field("", description=DESCRIBED["support"])
    feedback: str | None = Field(None, description="The researcher's feedback it was redone with.")
    edited: bool = Field(False, description="Whether the researcher edited it (co-pilot).")

    def run_for(self, number: int) -> PlannedRun | None:
        """The planned run that ``run_<number>`` carries out (1 is the first); None past the
        plan's end."""
        return self.runs[number - 1] if 1 <= number <= len(self.runs) else None

    def brief(self, chars: int | None = None) -> str:
        """The plan as a prompt sees it, each text cut to ``chars`` (None: whole)."""
        lines = ["Hypotheses:", *(f"- {_cut(h, chars)}" for h in self.hypotheses)]
        lines.append("Planned runs (run_0 is the baseline):")
        for number, run in enumerate(self.runs, start=1):
            lines.append(f"- run_{number} {run_line(run, chars)}")
        lines.append("Baselines: " + "; ".join(_cut(b, chars) for b in self.baselines))
        lines.append("Metrics: " + "; ".join(_cut(m, chars) for m in self.metrics))
        lines.append(f"Support: {_cut(self.support, chars)}")
        return "\n".join(lines)


def run_line(run: PlannedRun, chars: int | None = None) -> str:
    """``name: change (a=1, b=2)``."""
    params = ", ".join(f"{k}={v}" for k, v in run.parameters.items())
    return f"{run.name}: {_cut(run.change, chars)}" + (f" ({params})" if params else "")


def _cut(text: str, chars: int | None) -> str:
    flat = " ".join(text.split())
    return flat if chars is None or len(flat) <= chars else flat[: chars - 1] + "…"


def read_plan(idea_dir: Path) -> ExperimentPlan | None:
    """The idea's plan.json, or None when it has none (the stage was off) or it is unreadable."""
    path = idea_dir / PLAN_JSON
    if not path.is_file():
        return None
    try:
        return ExperimentPlan.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError:
        return None
