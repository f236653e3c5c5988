"""A job's own settings stay inside the operator's policy (``service.job_policy``).

A job may set only allow-listed fields, each within bounds; budgets and experiment limits
only go down; models come from the operator's list. Every refusal names the field and what
is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import SettingsError
from service.config import ServiceConfig


def _operator(tmp_path: Path, **extra: Any) -> ServiceConfig:
    """The debug preset (experiments.run_timeout_s=300) with a $5 spend cap."""
    overrides: dict[str, Any] = {"data_dir": str(tmp_path), "budget": {"max_cost_usd": 5.0}}
    overrides.update(extra)
    return ServiceConfig("debug", overrides)


def _refusal(config: ServiceConfig, overrides: dict[str, Any], preset: str | None = None) -> str:
    with pytest.raises(SettingsError) as caught:
        config.for_job(preset, overrides)
    return str(caught.value)


def test_a_job_cannot_remove_the_operators_spend_cap(tmp_path: Path) -> None:
    message = _refusal(_operator(tmp_path), {"budget": {"max_cost_usd": None}})
    assert "budget.max_cost_usd" in message and "null" in message
    assert "0 to 5" in message and "only lower" in message


def test_a_job_cannot_raise_budgets(tmp_path: Path) -> None:
    config = _operator(tmp_path, pipeline={"idea_max_cost_usd": 1.0, "idea_max_total_tokens": 1000})
    assert "budget.max_cost_usd" in _refusal(config, {"budget.max_cost_usd": 5.01})
    assert "pipeline.idea_max_cost_usd" in _refusal(config, {"pipeline.idea_max_cost_usd": 2})
    message = _refusal(config, {"pipeline": {"idea_max_total_tokens": None}})
    assert "pipeline.idea_max_total_tokens" in message and "1 to 1000" in message


def test_experiment_limits_can_only_be_tightened(tmp_path: Path) -> None:
    config = _operator(tmp_path)
    message = _refusal(config, {"experiments.run_timeout_s": 1e9})
    assert "experiments.run_timeout_s" in message and "10 to 300" in message
    message = _refusal(config, {"experiments": {"memory_limit_mb": 10**7}})
    assert "experiments.memory_limit_mb" in message and "256 to 4096" in message
    message = _refusal(config, {"experiments.cpu_limit": 64})
    assert "experiments.cpu_limit" in message and "1 to 2" in message
    every = _refusal(config, {"experiments.cpu_limit": 64, "experiments.plot_timeout_s": 1e6})
    assert "experiments.cpu_limit" in every and "experiments.plot_timeout_s" in every


def test_numeric_fields_are_bounded(tmp_path: Path) -> None:
    message = _refusal(_operator(tmp_path), {"ideas.num_ideas": 1000})
    assert "ideas.num_ideas" in message and "1 to 10" in message


def test_a_field_off_the_allow_list_is_refused(tmp_path: Path) -> None:
    config = _operator(tmp_path)
    for field, value in (
        ("review.max_pages", 100000),
        ("review.max_concurrent_papers", 64),
        ("pipeline.max_concurrent_ideas", 64),
        ("llm.request_timeout_s", 1e9),
    ):
        message = _refusal(config, {field: value})
        assert f"may not set {field}" in message and "service.job_policy" in message
        assert "ideas.num_ideas" in message  # the message says what may be set


def test_a_model_off_the_operators_list_is_refused(tmp_path: Path) -> None:
    config = _operator(tmp_path)
    message = _refusal(config, {"llm": {"models": {"writer": "openai/gpt-4o"}}})
    assert "llm.models.writer" in message and "'local'" in message
    message = _refusal(config, {"review.models": ["local", "anthropic/claude-3-opus"]})
    assert "review.models" in message and "anthropic/claude-3-opus" in message
    assert config.for_job(None, {"llm.models.writer": "local"}).llm.models.writer == "local"


def test_the_operator_lists_the_models_a_job_may_choose(tmp_path: Path) -> None:
    policy = {"job_policy": {"models": ["local", "openai/gpt-4o-mini"]}}
    config = _operator(tmp_path, service=policy)
    settings = config.for_job(None, {"llm.models.writer": "openai/gpt-4o-mini"})
    assert settings.llm.models.writer == "openai/gpt-4o-mini"
    assert "openai/gpt-4o-mini" in _refusal(config, {"llm.models.coder": "openai/gpt-4o"})


def test_lower_budgets_and_limits_are_accepted(tmp_path: Path) -> None:
    config = _operator(tmp_path)
    settings = config.for_job(
        None,
        {
            "budget": {"max_cost_usd": 1.5, "max_total_tokens": 20000},
            "experiments": {"run_timeout_s": 60, "memory_limit_mb": 1024, "cpu_limit": 1},
            "ideas.num_ideas": 2,
        },
    )
    assert settings.budget.max_cost_usd == 1.5 and settings.budget.max_total_tokens == 20000
    assert settings.experiments.run_timeout_s == 60 and settings.experiments.cpu_limit == 1
    assert settings.ideas.num_ideas == 2
    # Without an operator cap, a job may still set its own.
    uncapped = ServiceConfig("debug", {"data_dir": str(tmp_path)})
    assert uncapped.for_job(None, {"budget.max_cost_usd": 0.5}).budget.max_cost_usd == 0.5
    assert uncapped.for_job(None, {"budget.max_cost_usd": None}).budget.max_cost_usd is None


def test_a_jobs_preset_cannot_raise_the_operators_limits(tmp_path: Path) -> None:
    settings = _operator(tmp_path).for_job("quality", {})
    assert settings.preset == "quality" and settings.ideas.num_reflections == 5
    assert settings.experiments.run_timeout_s == 300  # quality says 7200
    assert settings.experiments.memory_limit_mb == 4096  # quality says 16384
    assert settings.budget.max_cost_usd == 5.0


def test_the_operator_sets_the_allow_list_and_bounds(tmp_path: Path) -> None:
    policy = {"allowed_fields": ["ideas.num_ideas"], "bounds": {"ideas.num_ideas": [1, 2]}}
    config = _operator(tmp_path, service={"job_policy": policy})
    assert config.for_job(None, {"ideas.num_ideas": 2}).ideas.num_ideas == 2
    assert "1 to 2" in _refusal(config, {"ideas.num_ideas": 3})
    assert "may not set review.num_reviewers" in _refusal(config, {"review.num_reviewers": 1})
    # Bounds the operator did not restate keep their defaults.
    wider = _operator(tmp_path, service={"job_policy": {"bounds": {"ideas.num_ideas": [1, 20]}}})
    assert wider.for_job(None, {"ideas.num_ideas": 20}).ideas.num_ideas == 20
    assert "0 to 10" in _refusal(wider, {"review.num_reflections": 11})


def test_a_policy_naming_an_unknown_field_is_an_operator_error(tmp_path: Path) -> None:
    config = _operator(tmp_path, service={"job_policy": {"allowed_fields": ["ideas.num_idea"]}})
    with pytest.raises(SettingsError, match=r"service\.job_policy.*ideas\.num_idea"):
        config.settings()
