"""Scripted gym agents, for tests only (never shipped): they act without a model.

- ``ScriptedGoodAgent`` ("scripted-good"): on digits, the known improving edit (the MLP's
  ``HIDDEN = 64`` → ``128``: test accuracy 0.92852 → 0.93148), validate, submit; elsewhere it
  just submits.
- ``SubmitAgent``: submits at once (the baseline's code).
- ``CrashingAgent``: raises after one step, as a buggy agent would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.settings import Settings
from scientist.experiments.models import ProcessOutcome, RunOutcome
from scientist.experiments.runner import SandboxRunner
from scientist.gym.agent import AgentFactory, AgentSpec, GymAgent
from scientist.gym.env import ResearchEnv
from scientist.gym.sandboxed import GymRunner
from scientist.ideas.template import resolve_template

IMPROVING_EDITS = {"digits": ("experiment.py", "HIDDEN = 64", "HIDDEN = 128")}


class ScriptedGoodAgent:
    """The known improving edit where there is one, then validate and submit."""

    def run(self, env: ResearchEnv, observation: str, info: Mapping[str, Any]) -> None:
        edit = IMPROVING_EDITS.get(env.task.spec.name)
        if edit is not None:
            path, old, new = edit
            lines = (Path(info["workspace"]) / path).read_text().splitlines()
            line = lines.index(old) + 1
            action = {"command": "edit", "path": path, "start": line, "end": line, "text": new}
            env.step(json.dumps(action))
            env.step('{"command": "validate"}')
        env.step('{"command": "submit"}')


class SubmitAgent:
    """Submits the template's code unchanged."""

    def run(self, env: ResearchEnv, observation: str, info: Mapping[str, Any]) -> None:
        env.step('{"command": "submit"}')


class CrashingAgent:
    """Looks at a file, then fails."""

    def run(self, env: ResearchEnv, observation: str, info: Mapping[str, Any]) -> None:
        env.step('{"command": "open", "path": "experiment.py", "start": 1, "end": 3}')
        raise RuntimeError("the agent's own bug")


AGENTS: dict[str, type[ScriptedGoodAgent | SubmitAgent | CrashingAgent]] = {
    "scripted-good": ScriptedGoodAgent,
    "submit": SubmitAgent,
    "crash": CrashingAgent,
}


def scripted_factory(aliases: Mapping[str, str] | None = None) -> AgentFactory:
    """Agents by method name (``aliases`` maps a method to an agent name, e.g. the "local"
    method to "submit", a stand-in for the embedded model in fast tests)."""
    names = dict(aliases or {})

    def build(spec: AgentSpec) -> GymAgent:
        return AGENTS[names.get(spec.method, spec.method)]()

    return build


class MemoRunner:
    """The real sandbox runner, run once per distinct ``experiment.py``: a run of code already
    run (the seeded templates reproduce their metric) gets that run's outcome and its
    final_info.json. Keeps a bench of real templates fast; the metrics are real runs'."""

    def __init__(self, runner: GymRunner) -> None:
        self.runner = runner
        self.seen: dict[str, tuple[RunOutcome, bytes]] = {}
        self.real_runs = 0

    def run_experiment(self, workdir: Path, run_name: str) -> RunOutcome:
        key = hashlib.sha256((workdir / "experiment.py").read_bytes()).hexdigest()
        if key not in self.seen:
            outcome = self.runner.run_experiment(workdir, run_name)
            self.real_runs += 1
            info = workdir / run_name / "final_info.json"
            self.seen[key] = (outcome, info.read_bytes() if info.is_file() else b"")
            return outcome
        outcome, info_bytes = self.seen[key]
        (workdir / run_name).mkdir(parents=True, exist_ok=True)
        (workdir / run_name / "final_info.json").write_bytes(info_bytes)
        return outcome.model_copy(update={"run_name": run_name})

    def run_plot(self, workdir: Path) -> ProcessOutcome:
        return self.runner.run_plot(workdir)

    def execute(
        self, command: list[str], workdir: Path, log_stem: str, timeout_s: float
    ) -> ProcessOutcome:
        return self.runner.execute(command, workdir, log_stem, timeout_s)

    def interpreter(self) -> str:
        return self.runner.interpreter()


def memo_runners(settings: Settings) -> Callable[[str], MemoRunner]:
    """One :class:`MemoRunner` per task, for ``run_bench(runners=...)``."""
    made: dict[str, MemoRunner] = {}

    def runner_for(task: str) -> MemoRunner:
        if task not in made:
            made[task] = MemoRunner(SandboxRunner.for_template(settings, resolve_template(task)))
        return made[task]

    return runner_for
