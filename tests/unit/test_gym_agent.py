"""The gym's agents (issue #18): the tool agent's loop with the scripted model answering JSON
actions (what it sends, what it is shown, bounded history, bad replies, budgets, memory) and
the Aider-stage agent with a scripted editor, on a hand-made template whose score is a
number in a file (each run takes a fraction of a second)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from core.isolation import Isolation, IsolationUnavailableError, check_bwrap
from core.settings import Settings
from gateway.gateway import Gateway
from gateway.ledger import Ledger
from gateway.scripted import ScriptedLLM
from gateway.types import LLMRequest
from scientist.experiments.editor import EditResult
from scientist.experiments.runner import SandboxLimits, SandboxRunner
from scientist.gym.agent import AgentReply, MemoryReply, ToolAgent, reply_form
from scientist.gym.aider_agent import AiderAgent
from scientist.gym.env import ResearchEnv
from scientist.gym.memory import NoteMemory
from scientist.gym.models import EpisodeResult
from scientist.gym.trajectory import read_trajectory

EXPERIMENT = """import argparse, json, os
parser = argparse.ArgumentParser()
parser.add_argument("--out_dir", default="run_0")
out = parser.parse_args().out_dir
os.makedirs(out, exist_ok=True)
value = float(open("value.txt").read())
with open(os.path.join(out, "final_info.json"), "w") as f:
    json.dump({"toy": {"means": {"score": value}, "stderrs": {"score": 0.0}}}, f)
"""
READ_LINE = 'value = float(open("value.txt").read())'


def _isolation() -> Isolation:
    try:
        check_bwrap()
    except IsolationUnavailableError:
        return "none"
    return "bwrap"


ISOLATION = _isolation()


def make_template(root: Path) -> Path:
    folder = root / "toy"
    folder.mkdir(parents=True)
    (folder / "experiment.py").write_text(EXPERIMENT)
    (folder / "value.txt").write_text("0.5\n")
    (folder / "prompt.json").write_text(
        json.dumps({"system": "s", "task_description": "Raise the number in value.txt."})
    )
    task = {"name": "toy", "metric": ["toy", "means", "score"], "direction": "higher"}
    (folder / "task.json").write_text(json.dumps(task))
    return folder


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(llm={"cache_enabled": False})


@pytest.fixture
def make_env(settings: Settings, tmp_path: Path) -> Callable[..., ResearchEnv]:
    template = make_template(tmp_path / "templates")
    runner = SandboxRunner(SandboxLimits(timeout_s=60, memory_mb=4096, cpus=1), isolation=ISOLATION)

    def build(**limits: Any) -> ResearchEnv:
        limits.setdefault("auto_submit", False)  # these tests look at the agent's own moves
        ledger = Ledger()
        return ResearchEnv(
            template,
            settings=settings,
            limits=limits,
            root=tmp_path / "episodes",
            runner=runner,
            ledger=ledger,
        )

    return build


def reply(action: dict[str, Any], thought: str = "next", **extra: Any) -> str:
    return json.dumps({"thought": thought, "action": action, **extra})


def work(
    env: ResearchEnv, settings: Settings, turns: Any, *, memory: NoteMemory | None = None
) -> tuple[EpisodeResult, ScriptedLLM]:
    """Reset, run a ToolAgent on the 'local' model (compact profile) answered by ``turns``."""
    scripted = ScriptedLLM(turns)
    assert env.ledger is not None
    gateway = Gateway(settings, backend=scripted, ledger=env.ledger)
    observation, info = env.reset(options={"episode": "e1"})
    ToolAgent(gateway, "local", memory=memory).run(env, observation, info)
    return env.episode_result("local"), scripted


def last_user(request: LLMRequest) -> str:
    return [m.content for m in request.messages if m.role == "user"][-1]


def test_tool_agent_edits_validates_and_submits(
    make_env: Callable[..., ResearchEnv], settings: Settings
) -> None:
    env = make_env(max_steps=10)
    turns = [
        reply({"command": "open", "path": "value.txt"}),
        reply({"command": "edit", "path": "value.txt", "start": 1, "end": 1, "text": "0.9"}),
        reply({"command": "validate"}),
        reply({"command": "submit"}),
    ]
    result, scripted = work(env, settings, turns)

    assert result.status == "submitted" and result.steps == 4
    assert result.submission == pytest.approx(0.9) and result.baseline == pytest.approx(0.5)
    steps = read_trajectory(Path(result.trajectory))
    assert [s.command for s in steps] == ["open", "edit", "validate", "submit"]
    assert all(s.error is None for s in steps)
    # What the model was asked and shown: its model, the profile's cap, the last output.
    assert {r.model for r in scripted.requests} == {"local"}
    assert {r.max_tokens for r in scripted.requests} == {settings.profile("local").agent_max_tokens}
    system = scripted.requests[0].messages[0].content
    assert "Raise the number in value.txt." in system and '"remember"' not in system
    assert "lines 1-1 of 1]\n1| 0.5" in last_user(scripted.requests[1])
    assert "Baseline 0.5; best so far 0.9" in last_user(scripted.requests[3])
    # Every token the gateway recorded is the episode's, in the result and per step.
    assert env.ledger is not None
    totals = env.ledger.totals()
    assert result.prompt_tokens == totals.prompt_tokens > 0
    assert sum(s.prompt_tokens for s in steps) == totals.prompt_tokens


def test_history_is_bounded_by_the_profile(
    make_env: Callable[..., ResearchEnv], settings: Settings
) -> None:
    env = make_env(max_steps=7)
    keep = settings.profile("local").agent_history_steps
    result, scripted = work(env, settings, lambda _r: reply({"command": "open", "path": "x.txt"}))

    assert result.status == "truncated" and result.steps == 7
    assert len(scripted.requests) == 7
    sizes = [len(r.messages) for r in scripted.requests]
    assert sizes[0] == 2 and max(sizes) == 1 + 2 * keep  # system + kept pairs
    assert f"({7 - 1 - keep} earlier steps are not shown.)" in last_user(scripted.requests[-1])


def test_an_invalid_reply_is_one_refused_step(
    make_env: Callable[..., ResearchEnv], settings: Settings
) -> None:
    env = make_env(max_steps=1)
    result, scripted = work(env, settings, lambda _r: "I think we should edit the code")

    asks = settings.llm.structured_reasks + 1
    assert len(scripted.requests) == asks  # the gateway's re-asks, then one env step
    (step,) = read_trajectory(Path(result.trajectory))
    assert step.command is None and step.error is not None
    assert step.action == "I think we should edit the code"
    assert result.status == "truncated" and result.submission is None


def test_the_token_budget_counts_the_agents_calls(
    make_env: Callable[..., ResearchEnv], settings: Settings
) -> None:
    env = make_env(max_steps=10, max_total_tokens=50)
    result, scripted = work(env, settings, lambda _r: reply({"command": "open", "path": "x"}))

    assert len(scripted.requests) == 1 and result.steps == 1
    assert result.status == "truncated" and "token budget" in (result.reason or "")


def test_memory_notes_come_back_by_similarity(
    make_env: Callable[..., ResearchEnv], settings: Settings, tmp_path: Path
) -> None:
    env = make_env(max_steps=3)
    note = "value.txt holds the score the experiment reports"
    turns = [
        reply({"command": "open", "path": "value.txt"}, remember=note),
        reply({"command": "open", "path": "value.txt"}),
        reply({"command": "submit"}),
    ]
    memory = NoteMemory(tmp_path / "notes.jsonl")
    result, scripted = work(env, settings, turns, memory=memory)

    assert result.status == "submitted"
    assert '"remember"' in scripted.requests[0].messages[0].content
    assert note not in last_user(scripted.requests[0])
    assert f"- {note}" in last_user(scripted.requests[1])
    saved = [json.loads(line) for line in (tmp_path / "notes.jsonl").read_text().splitlines()]
    assert saved == [{"step": 0, "note": note}]


def test_note_search_ranks_by_similarity() -> None:
    memory = NoteMemory()
    for note in (
        "learning rate 0.1 diverged",
        "HIDDEN 128 improved test accuracy",
        "plot labels fixed",
        "",
        "plot labels fixed",
    ):
        memory.add(note)
    assert len(memory) == 3  # blank and repeated notes dropped
    assert memory.search("what improved accuracy? HIDDEN", 1) == [
        "HIDDEN 128 improved test accuracy"
    ]
    assert memory.search("zzz", 2) == ["plot labels fixed", "HIDDEN 128 improved test accuracy"]


def test_reply_form_bounds_the_thought_by_profile(settings: Settings) -> None:
    compact, full = settings.profile("local"), settings.profile("openai/gpt-4o")
    small = reply_form(compact, memory=False)
    assert issubclass(small, AgentReply) and not issubclass(small, MemoryReply)
    assert small.model_json_schema()["properties"]["thought"]["maxLength"] == (
        compact.agent_thought_chars
    )
    big = reply_form(full, memory=True)
    assert issubclass(big, MemoryReply)
    assert big.model_json_schema()["properties"]["thought"]["maxLength"] == full.agent_thought_chars
    assert compact.agent_history_steps < full.agent_history_steps


class ScriptedEditor:
    """Edits experiment.py as scripted, one change per call (None: no change)."""

    def __init__(self, changes: Sequence[tuple[str, str] | None]) -> None:
        self.changes = list(changes)
        self.prompts: list[str] = []

    def edit(
        self, workdir: Path, files: Sequence[str], message: str, *, log_stem: str
    ) -> EditResult:
        self.prompts.append(message)
        change = self.changes.pop(0)
        if change is not None:
            path = workdir / "experiment.py"
            path.write_text(path.read_text().replace(*change))
        return EditResult(
            command=["aider"], exit_code=0, seconds=0.1, tokens_sent=100, tokens_received=20
        )


def test_aider_agent_runs_rounds_then_submits(
    make_env: Callable[..., ResearchEnv],
) -> None:
    env = make_env(max_steps=10)
    editor = ScriptedEditor([(READ_LINE, "value = 0.8"), None, (READ_LINE, "value = 0.1")])
    agent = AiderAgent(editor, rounds=3, stop_after_no_change=1, run_timeout_s=60)
    observation, info = env.reset(options={"episode": "aider"})
    agent.run(env, observation, info)
    result = env.episode_result("aider:local")

    steps = read_trajectory(Path(result.trajectory))
    assert [s.command for s in steps] == ["validate", "submit"]  # round 2 changed nothing
    assert result.status == "submitted" and result.submission == pytest.approx(0.8)
    assert len(editor.prompts) == 2 and editor.changes == [(READ_LINE, "value = 0.1")]
    assert (
        "coding round 1 of 3" in editor.prompts[0] and "Best so far: none yet" in editor.prompts[0]
    )
    assert "Best so far: 0.8" in editor.prompts[1] and "metric 0.8 (run_1)" in editor.prompts[1]
    assert result.prompt_tokens == 200 and result.completion_tokens == 40  # both edits reported
