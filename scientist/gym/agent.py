"""Agents that work a :class:`~scientist.gym.env.ResearchEnv` episode to its end.

:class:`ToolAgent` is MLGym's tool-using agent over the env's commands: each turn it asks
its model, through the gateway, for one structured reply (a thought and one command as a
JSON object that the reply schema validates, :data:`~scientist.gym.actions.Action`) and
sends the command to the env. The gateway offers structured output, not function calling:
the schema is enforced by a llama.cpp grammar for the embedded model and by JSON-schema
output (litellm turns it into a tool call where a provider needs one) for capable models,
so one path serves every model. The conversation is bounded: the task, then only the
latest ``agent_history_steps`` actions and observations (the model's output profile). With
a :class:`~scientist.gym.memory.NoteMemory`, a reply may keep a note, and the notes most
similar to the latest observation are shown each turn (MLGym's memory module).

Budgets hold because the agent's gateway records into the env's ledger: the env counts its
growth since reset against the episode's token and cost budgets, and the gateway checks
the run's ``budget`` settings before every call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, create_model

from gateway.errors import StructuredOutputError
from gateway.gateway import Gateway
from gateway.profiles import OutputProfile
from gateway.prompts import render
from gateway.settings import Role
from gateway.types import ChatMessage
from scientist.gym.actions import Action
from scientist.gym.env import ResearchEnv
from scientist.gym.memory import NoteMemory
from scientist.gym.task import best_of

PROMPTS = Path(__file__).with_name("prompts")
REMEMBER = (
    ', and optionally "remember": a short note worth keeping for later turns (what worked, '
    "what failed, a line number)"
)
ROLE: Role = "coder"  # the gateway role of a gym agent's calls (the model is named per call)


class GymAgent(Protocol):
    """Works one episode of ``env`` (already reset) until it is terminated or truncated."""

    def run(self, env: ResearchEnv, observation: str, info: Mapping[str, Any]) -> None:
        """Step ``env`` from the reset ``observation`` until the episode is over."""
        ...


class AgentReply(BaseModel):
    """One turn of the tool agent: why, and the one command to run."""

    model_config = ConfigDict(extra="forbid")

    thought: str = Field(description="Brief reasoning: what was learned, what to do next.")
    action: Action = Field(description='One command object, e.g. {"command": "validate"}.')


class MemoryReply(AgentReply):
    """A turn of an agent with memory: it may keep a note for later turns."""

    remember: str | None = Field(None, description="A short note worth keeping, or null.")


def reply_form(profile: OutputProfile, *, memory: bool) -> type[AgentReply]:
    """The reply schema with the profile's bound on the thought (and the note)."""
    bound = profile.agent_thought_chars
    thought: Any = (
        str,
        Field(max_length=bound, description=AgentReply.model_fields["thought"].description),
    )
    if not memory:
        return create_model(
            "AgentReply", __base__=AgentReply, __doc__=AgentReply.__doc__, thought=thought
        )
    note: Any = (str | None, Field(None, max_length=bound, description="A short note, or null."))
    return create_model(
        "MemoryReply",
        __base__=MemoryReply,
        __doc__=MemoryReply.__doc__,
        thought=thought,
        remember=note,
    )


@dataclass
class _Turn:
    """One step as the agent remembers it: what it sent and what it saw."""

    action: str
    observation: str


@dataclass
class ToolAgent:
    """The tool-using agent (see the module's docstring). ``gateway`` must record into the
    env's ledger (``Gateway.with_ledger(env.ledger)``) for the episode's budgets to hold."""

    gateway: Gateway
    model: str
    memory: NoteMemory | None = None
    temperature: float | None = None
    history: list[_Turn] = field(default_factory=list)

    def run(self, env: ResearchEnv, observation: str, info: Mapping[str, Any]) -> None:
        """One model call and one env step per turn, until submit or a budget ends it."""
        profile = self.gateway.settings.profile(self.model)
        schema = reply_form(profile, memory=self.memory is not None)
        remember = REMEMBER if self.memory is not None else ""
        system = render(PROMPTS, "agent_system.j2", task=observation, remember=remember)
        self.history = []
        last, over = "The workspace is ready: start by looking at the code.", False
        while not over:
            messages = self._messages(env, profile, system, last)
            action, note = self._choose(messages, schema, profile)
            if note and self.memory is not None:
                self.memory.add(note, step=_step(env))
            last, _, terminated, truncated, _ = env.step(action)
            self.history.append(_Turn(action, last))
            over = terminated or truncated

    def _choose(
        self, messages: list[ChatMessage], schema: type[AgentReply], profile: OutputProfile
    ) -> tuple[str, str | None]:
        """The next action as JSON text; a model that gave no valid reply after the gateway's
        re-asks sends its raw text, which the env refuses as one (counted) step."""
        try:
            reply = self.gateway.complete(
                messages,
                role=ROLE,
                schema=schema,
                model=self.model,
                max_tokens=profile.agent_max_tokens,
                temperature=self.temperature,
            )
        except StructuredOutputError as exc:
            return (exc.raw or "")[:2000] or "{}", None
        action = reply.action.model_dump(mode="json", exclude_none=True, exclude={"usage"})
        note = getattr(reply, "remember", None)
        return json.dumps(action), note

    def _messages(
        self, env: ResearchEnv, profile: OutputProfile, system: str, last: str
    ) -> list[ChatMessage]:
        keep = profile.agent_history_steps
        shown = self.history[-keep:][:-1] if self.history else []
        messages = [ChatMessage(role="system", content=system)]
        for turn in shown:
            messages.append(ChatMessage(role="assistant", content=turn.action))
            messages.append(ChatMessage(role="user", content=_cut(turn.observation, profile)))
        if self.history:
            messages.append(ChatMessage(role="assistant", content=self.history[-1].action))
        messages.append(ChatMessage(role="user", content=self._turn_text(env, profile, last)))
        return messages

    def _turn_text(self, env: ResearchEnv, profile: OutputProfile, last: str) -> str:
        episode = env.episode
        steps = _step(env)
        best = None if episode is None else best_of(episode.attempts, env.task.spec.direction)
        notes = ""
        if self.memory is not None and len(self.memory):
            query = "\n".join([last, *(t.action for t in self.history[-1:])])
            notes = "\n".join(
                f"- {n}" for n in self.memory.search(query, profile.agent_memory_notes)
            )
        hidden = max(0, len(self.history) - profile.agent_history_steps)
        return render(
            PROMPTS,
            "agent_turn.j2",
            hidden=hidden,
            step=steps + 1,
            max_steps=env.limits.max_steps,
            steps_left=max(0, env.limits.max_steps - steps),
            baseline=_number(episode.baseline if episode else None),
            best=_number(best),
            notes=notes,
            observation=_cut(last, profile),
        )


def _step(env: ResearchEnv) -> int:
    return env.episode.steps if env.episode is not None else 0


def _number(value: float | None) -> str:
    return "none yet" if value is None else f"{value:.6g}"


def _cut(text: str, profile: OutputProfile) -> str:
    bound = profile.agent_observation_chars
    if len(text) <= bound:
        return text
    return text[:bound] + f"\n[... {len(text) - bound} more characters not shown]"


AgentFactory = Callable[["AgentSpec"], GymAgent]


@dataclass(frozen=True)
class AgentSpec:
    """What a bench asks an agent factory for: the method's name (a model string or an
    agent's name), the gateway recording into the episode's ledger, the episode's folder."""

    method: str
    gateway: Gateway
    folder: Path
