"""A running episode's state, and the tokens and dollars it has spent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scientist.experiments.models import GroupResult
from scientist.gym.actions import Usage


@dataclass
class Spend:
    """Tokens and dollars, summed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: Spend | Usage) -> None:
        """Add ``other`` to these sums."""
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd

    def minus(self, other: Spend) -> Spend:
        """These sums less ``other`` (never below zero)."""
        return Spend(
            max(0, self.prompt_tokens - other.prompt_tokens),
            max(0, self.completion_tokens - other.completion_tokens),
            max(0.0, self.cost_usd - other.cost_usd),
        )

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Episode:
    """Where the episode lives, its baseline, its scores, its budget use."""

    name: str
    folder: Path
    workspace: Path
    trajectory: Path
    baseline: float
    baseline_results: dict[str, GroupResult]
    started: float
    steps: int = 0
    next_run: int = 1
    attempts: list[float] = field(default_factory=list)
    submission: float | None = None
    submitted: bool = False
    auto_submitted: bool = False
    truncation: str | None = None
    ended_at: float | None = None
    reported: Spend = field(default_factory=Spend)
    ledger_start: Spend = field(default_factory=Spend)
    recorded: Spend = field(default_factory=Spend)

    @property
    def over(self) -> bool:
        """Submitted, or a budget ran out."""
        return self.submitted or self.truncation is not None

    def next_run_name(self) -> str:
        """``run_1``, ``run_2``, …: the folder the next validate or submit writes."""
        name = f"run_{self.next_run}"
        self.next_run += 1
        return name
