"""What a service job's own settings may change: the operator's ``service.job_policy``.

Untrusted callers of the HTTP service choose a few settings of their jobs. The policy
says which fields (an allow-list: anything else is refused), within which bounds, which
fields may only be lowered below the operator's value (budgets and the experiment
sandbox's limits: never raised, never removed with ``null``), and which models a job may
name. ``service/config.py`` enforces it; the defaults here are the safe ones.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Bound = tuple[float | None, float | None]

ROLE_MODEL_FIELDS: tuple[str, ...] = tuple(
    f"llm.models.{role}"
    for role in ("ideas", "coder", "writer", "citations", "reviewer", "meta_reviewer")
)
MODEL_FIELDS: tuple[str, ...] = (*ROLE_MODEL_FIELDS, "review.models")

# Spend and the sandbox: a job may tighten these, never loosen them.
DEFAULT_LOWER_ONLY: tuple[str, ...] = (
    "budget.max_cost_usd",
    "budget.max_total_tokens",
    "pipeline.idea_max_cost_usd",
    "pipeline.idea_max_total_tokens",
    "pipeline.idea_max_wall_s",
    "experiments.run_timeout_s",
    "experiments.memory_limit_mb",
    "experiments.cpu_limit",
    "experiments.aider_round_timeout_s",
    "experiments.plot_timeout_s",
    "experiments.max_processes",
    "experiments.max_file_mb",
    "experiments.max_open_files",
    "experiments.max_cpu_s",
    "writing.compile_timeout_s",
)

DEFAULT_BOUNDS: dict[str, Bound] = {
    "budget.max_cost_usd": (0, None),
    "budget.max_total_tokens": (1, None),
    "pipeline.idea_max_cost_usd": (0, None),
    "pipeline.idea_max_total_tokens": (1, None),
    "pipeline.idea_max_wall_s": (60, None),
    "pipeline.ideas_to_run": (1, 5),
    "experiments.run_timeout_s": (10, None),
    "experiments.memory_limit_mb": (256, None),
    "experiments.cpu_limit": (1, None),
    "experiments.aider_round_timeout_s": (10, None),
    "experiments.plot_timeout_s": (10, None),
    "experiments.max_processes": (8, None),
    "experiments.max_file_mb": (1, None),
    "experiments.max_open_files": (64, None),
    "experiments.max_cpu_s": (1, None),
    "experiments.max_rounds": (1, 10),
    "experiments.plot_attempts": (1, 5),
    "experiments.stop_after_no_change": (1, 5),
    "experiments.error_tail_lines": (5, 400),
    "ideas.num_ideas": (1, 10),
    "survey.queries": (1, 8),
    "survey.papers_kept": (1, 20),
    "ideas.num_reflections": (0, 5),
    "ideas.novelty_rounds": (0, 10),
    "ideas.duplicate_title_ratio": (0, 1),
    "ideas.temperature": (0, 2),
    "writing.compile_timeout_s": (10, None),
    "writing.page_limit": (1, 20),
    "writing.citation_rounds": (0, 20),
    "writing.fix_rounds": (0, 5),
    "writing.refine_rounds": (0, 3),
    "writing.max_citation_queries": (1, 8),
    "writing.shorten_rounds": (0, 3),
    "writing.max_log_lines": (1, 100),
    "writing.novelty_citations": (0, 20),
    "review.num_reviewers": (1, 10),
    "review.num_reflections": (0, 10),
    "review.num_fewshot": (0, 3),
    "review.temperature": (0, 2),
    "review.max_paper_tokens": (500, 100_000),
    "review.accept_threshold": (1, 10),
    "llm.temperature": (0, 2),
}

# Stage knobs and model choices; never paths, executables, keys, concurrency or the service.
DEFAULT_ALLOWED: tuple[str, ...] = (
    *DEFAULT_BOUNDS,
    *MODEL_FIELDS,
    "ideas.novelty_check",
    "ideas.include_seed_ideas",
    "experiments.aider_edit_format",
    "experiments.reuse_template_baseline",
    "writing.pdf_engine",
    "review.personas",
    "pipeline.skip_not_novel",
    "pipeline.rank_by",
    "pipeline.improve",
    "survey.enabled",
    "plan.enabled",
    # The researcher's own idea and topic (POST /v1/runs: idea, topic, or these fields).
    "ideas.given",
    "ideas.refine_given",
    "ideas.topic",
    "pipeline.skip_given_not_novel",
)


class JobPolicySettings(BaseModel):
    """What a service job's own settings may change (the operator's limits stay in force)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    allowed_fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED),
        description="Dotted settings fields a job may set (e.g. 'ideas.num_ideas'); every "
        "other field is refused with HTTP 422. Giving the list replaces the default one.",
    )
    bounds: dict[str, Bound] = Field(
        default_factory=lambda: dict(DEFAULT_BOUNDS),
        description="[min, max] per numeric field a job may set (null: no bound on that "
        "side), e.g. {'ideas.num_ideas': [1, 5]}. Fields given replace their default "
        "bounds; the others keep theirs.",
    )
    lower_only: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LOWER_ONLY),
        description="Fields a job may only lower below the operator's value (budgets, "
        "experiment limits): raising one, or removing it with null, is refused, and a job's "
        "preset cannot raise them either.",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Models a job may name in llm.models.* and review.models; empty means "
        "the operator's own configured models.",
    )
