"""The agents ``scientist bench`` runs, by method name.

- a model string (``local``, ``openai/gpt-4o``, ``anthropic/claude-sonnet-4-5``, ...): the
  tool-using :class:`~scientist.gym.agent.ToolAgent` on that model, through the gateway;
- ``aider:<model>``: the experiment stage's coding rounds with Aider driving that model
  (:class:`~scientist.gym.aider_agent.AiderAgent`).
"""

from __future__ import annotations

from core.settings import Settings
from scientist.experiments.editor import AiderCLI
from scientist.gym.agent import AgentFactory, AgentSpec, GymAgent, ToolAgent
from scientist.gym.aider_agent import AiderAgent
from scientist.gym.memory import NoteMemory

AIDER_PREFIX = "aider:"
NOTES_FILE = "notes.jsonl"


def agent_factory(settings: Settings, *, memory: bool = False) -> AgentFactory:
    """Build each episode's agent from its method name (see the module's docstring);
    ``memory`` gives tool agents a note memory (``notes.jsonl`` in the episode folder)."""

    def build(spec: AgentSpec) -> GymAgent:
        if spec.method.startswith(AIDER_PREFIX):
            return aider_agent(settings, spec.method.removeprefix(AIDER_PREFIX))
        notes = NoteMemory(spec.folder / NOTES_FILE) if memory else None
        return ToolAgent(spec.gateway, spec.method, memory=notes)

    return build


def aider_agent(settings: Settings, model: str) -> AiderAgent:
    """The experiment stage's rounds with Aider on ``model`` (the coder role set to it)."""
    models = settings.llm.models.model_copy(update={"coder": model})
    llm = settings.llm.model_copy(update={"models": models})
    coder_settings = settings.model_copy(update={"llm": llm})
    limits = settings.experiments
    return AiderAgent(
        AiderCLI(coder_settings),
        rounds=limits.max_rounds,
        stop_after_no_change=limits.stop_after_no_change,
        run_timeout_s=limits.run_timeout_s,
    )
