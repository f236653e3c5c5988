"""What one episode may use, and how much of a command's output the agent sees."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from scientist.gym.observations import OBSERVATION_MAX_CHARS


class EpisodeLimits(BaseModel):
    """Budgets (any that runs out truncates the episode) and output sizes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int = Field(50, ge=1, description="Steps: every action counts, a bad one too.")
    max_wall_s: float = Field(3600.0, gt=0, description="Wall-clock seconds from reset.")
    max_total_tokens: int | None = Field(
        None, ge=1, description="Prompt + completion tokens reported (actions, ledger)."
    )
    max_cost_usd: float | None = Field(
        None, gt=0, description="Dollars reported (actions, report_usage, the ledger)."
    )
    command_timeout_s: float = Field(
        300.0, gt=0, description="Limit of python, bash and search; never past max_wall_s."
    )
    output_chars: int = Field(
        8000, ge=200, le=OBSERVATION_MAX_CHARS // 2, description="A command's output, at most."
    )
    view_lines: int = Field(100, ge=1, description="Lines `open` shows when no end is given.")
    search_results: int = Field(50, ge=1, description="Matches `search` shows.")
    excerpt_chars: int = Field(
        2000, ge=0, description="Characters of each observation kept in the trajectory."
    )
    auto_submit: bool = Field(
        True,
        description="When the step, token or cost budget runs out before a submit, submit the "
        "workspace as it is (as MLGym does); not after the wall-clock budget.",
    )
