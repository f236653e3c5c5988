"""The longest path that runs end to end today: structured ideas from the configured model.

It starts the embedded server when the ideas role is ``local``, asks for a batch of ideas
as a validated pydantic object, writes them and the ledger into a run folder, and returns
what happened. The paper pipeline will replace it as ``make demo``'s job.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from core.runstore import new_run
from core.settings import Settings
from gateway import Gateway
from gateway.ledger import Totals
from gateway.prompts import render
from scientist.ideas.models import IdeaBatch, idea_batch

PROMPTS = Path(__file__).parents[1] / "prompts"
DEMO_TASK = (
    "Study grokking: small networks trained on modular arithmetic (a + b mod 97) first "
    "memorise the training set and only much later generalise."
)


class DemoResult(BaseModel):
    """What the demo produced and what it cost."""

    run_dir: Path
    ideas: IdeaBatch
    totals: Totals


def run_demo(settings: Settings, *, count: int = 2, gateway: Gateway | None = None) -> DemoResult:
    """Generate ``count`` ideas for the demo task and store them under a new run folder."""
    run_dir = new_run(settings.runs_dir, "demo").root
    gw = gateway or Gateway.from_settings(settings, run_dir)
    messages = [
        {"role": "system", "content": render(PROMPTS, "demo_ideas_system.j2")},
        {
            "role": "user",
            "content": render(PROMPTS, "demo_ideas_user.j2", task=DEMO_TASK, count=count),
        },
    ]
    schema = idea_batch(settings.profile(settings.llm.models.ideas))
    reply = gw.complete(messages, role="ideas", schema=schema)
    ideas = IdeaBatch.model_validate(reply.model_dump())
    (run_dir / "ideas.json").write_text(ideas.model_dump_json(indent=2), encoding="utf-8")
    totals = gw.ledger.totals()
    (run_dir / "usage.json").write_text(json.dumps(totals.model_dump(), indent=2), encoding="utf-8")
    return DemoResult(run_dir=run_dir, ideas=ideas, totals=totals)
