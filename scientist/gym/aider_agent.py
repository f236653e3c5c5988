"""The experiment stage's coding rounds as a gym agent: Aider edits ``experiment.py`` in the
episode's workspace, the env validates each change, and the last code is submitted.

One episode is the stage's rounds (``experiments.max_rounds``, stopping early after
``experiments.stop_after_no_change`` rounds without an edit), each prompted with the task, the
baseline, the best metric so far and what the last change gave, as the stage's rounds are.
Aider talks to its model itself, not through the gateway: the tokens and dollars it prints
are reported to the env (``report_usage``), so the episode's budgets hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.prompts import render
from scientist.experiments import workspace as ws
from scientist.experiments.editor import CodeEditor, EditResult
from scientist.gym.env import ResearchEnv
from scientist.gym.task import best_of

PROMPTS = Path(__file__).with_name("prompts")
EDITED = ("experiment.py",)


@dataclass
class AiderAgent:
    """Coding rounds by ``editor`` (``AiderCLI`` for the coder model), then submit."""

    editor: CodeEditor
    rounds: int
    stop_after_no_change: int
    run_timeout_s: float

    def run(self, env: ResearchEnv, observation: str, info: Mapping[str, Any]) -> None:
        """Edit and validate round by round; submit unless a budget ended the episode."""
        workspace = Path(info["workspace"])
        last, unchanged = "", 0
        for index in range(1, self.rounds + 1):
            before = ws.snapshot(workspace, list(EDITED))
            prompt = self._prompt(env, index, last)
            edit = self.editor.edit(workspace, list(EDITED), prompt, log_stem=f"gym_round_{index}")
            _report(env, edit)
            if ws.snapshot(workspace, list(EDITED)) == before:
                unchanged += 1
                last = "no change (the editor left experiment.py as it was)"
                if unchanged >= self.stop_after_no_change:
                    break
                continue
            unchanged = 0
            _, _, _, truncated, step = env.step({"command": "validate"})
            if truncated:
                return
            last = _run_summary(step)
        env.step({"command": "submit"})

    def _prompt(self, env: ResearchEnv, index: int, last: str) -> str:
        episode, spec = env.episode, env.task.spec
        best = best_of(episode.attempts, spec.direction) if episode is not None else None
        return render(
            PROMPTS,
            "aider_round.j2",
            task=env.task.prompt,
            metric=env.task.metric_label,
            direction=spec.direction,
            baseline=f"{episode.baseline:.6g}" if episode is not None else "unknown",
            best=f"{best:.6g}" if best is not None else "none yet",
            last=last,
            round=index,
            rounds=self.rounds,
            run_timeout_s=f"{self.run_timeout_s:g}",
        )


def _report(env: ResearchEnv, edit: EditResult) -> None:
    env.report_usage(edit.tokens_sent or 0, edit.tokens_received or 0, edit.cost_usd or 0.0)


def _run_summary(step: Mapping[str, Any]) -> str:
    if step.get("metric") is not None:
        return f"metric {step['metric']:.6g} ({step.get('run')})"
    return f"no valid metric (run {step.get('run_status') or step.get('error') or 'failed'})"
