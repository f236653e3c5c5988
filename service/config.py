"""Where the service keeps its files, and how a job's settings are built.

The API process and every worker are started with the same preset and ``--set`` overrides
(a :class:`ServiceConfig`); a job may then choose another shipped preset and a few
overrides of its own, which are merged on top of the operator's. The operator's
``service.job_policy`` bounds them: only allow-listed fields, each within its bounds;
budgets and experiment limits only lowered (a preset cannot raise them either); models
only from the operator's list. Anything else is a :class:`JobSettingsError` (HTTP 422).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, SecretStr

from core.job_policy import DEFAULT_BOUNDS, MODEL_FIELDS, Bound, JobPolicySettings
from core.settings import (
    Settings,
    deep_merge,
    flatten,
    load_settings,
    nest,
    parse_assignments,
    preset_names,
)
from gateway.errors import SettingsError

# Never open to a job, whatever the policy says: the service itself, model endpoints, and
# (checked by type below) every path and secret.
NEVER_ALLOWED = ("service.", "llm.api_bases", "experiments.aider_bin")
POLICY = "service.job_policy"


class JobSettingsError(SettingsError):
    """A job's settings break the operator's ``service.job_policy``; names every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            f"Refused job settings ({POLICY}): {'; '.join(problems)}. Change or leave out "
            "these fields, or ask the operator to widen the policy."
        )
        self.problems = problems


@dataclass(frozen=True)
class ServicePaths:
    """The service's folder: ``jobs.sqlite``, ``checkpoints.sqlite``, ``jobs/<id>/``."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / "jobs.sqlite"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints.sqlite"

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def upload(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "paper.pdf"

    def review_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "review"

    def run_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "run"


def service_paths(settings: Settings) -> ServicePaths:
    """The service folder these settings point at."""
    return ServicePaths(settings.service.data_dir or settings.data_dir / "service")


def check_job_overrides(
    overrides: dict[str, Any], policy: JobPolicySettings | None = None
) -> dict[str, Any]:
    """The overrides, nested, when every key is on the policy's allow-list; else refused."""
    allowed = set((policy or JobPolicySettings()).allowed_fields)
    refused = sorted(k for k in flatten(overrides) if k not in allowed or _never_allowed(k))
    if refused:
        raise JobSettingsError(
            [
                f"a job may not set {', '.join(refused)}; it may set "
                f"{', '.join(sorted(allowed))} (ask the operator to add a field to "
                f"{POLICY}.allowed_fields)"
            ]
        )
    return nest(flatten(overrides))


def check_policy(policy: JobPolicySettings) -> None:
    """Refuse an operator policy that names unknown fields, opens paths or keys, or bad bounds."""
    named = {*policy.allowed_fields, *policy.bounds, *policy.lower_only}
    unknown = sorted(f for f in named if _annotation(f) is None)
    unsafe = sorted(f for f in policy.allowed_fields if _never_allowed(f))
    inverted = sorted(f for f, (lo, hi) in policy.bounds.items() if _inverted(lo, hi))
    problems = [
        f"{what}: {', '.join(fields)}"
        for what, fields in (
            ("no such settings field (see `scientist settings`)", unknown),
            ("never settable by a job (paths, keys, endpoints, the service)", unsafe),
            ("bounds with min above max", inverted),
        )
        if fields
    ]
    if problems:
        raise SettingsError(f"Invalid {POLICY}: {'; '.join(problems)}.")


def policy_problems(
    values: dict[str, Any], operator: Settings, policy: JobPolicySettings
) -> list[str]:
    """What is wrong with these job values (dotted key -> value) under the policy."""
    models = allowed_models(operator, policy)
    problems = [
        _model_problem(f, v, models)
        if f in MODEL_FIELDS
        else _range_problem(f, v, operator, policy)
        for f, v in sorted(values.items())
    ]
    return [p for p in problems if p is not None]


def allowed_models(operator: Settings, policy: JobPolicySettings) -> list[str]:
    """The policy's models, or the operator's own (every role and review.models)."""
    if policy.models:
        return list(policy.models)
    chosen = [value_at(operator, f) for f in MODEL_FIELDS]
    return sorted({m for v in chosen for m in (v if isinstance(v, list) else [v])})


def allowed_range(key: str, operator: Settings, policy: JobPolicySettings) -> Bound:
    """[min, max] of a job's value: the policy's bounds, capped at the operator's if lower-only."""
    low, high = {**DEFAULT_BOUNDS, **policy.bounds}.get(key, (None, None))
    cap = value_at(operator, key) if key in policy.lower_only else None
    if cap is not None:
        high = cap if high is None else min(high, cap)
        low = None if low is None else min(low, high)
    return low, high


def preset_caps(
    job: Settings, operator: Settings, policy: JobPolicySettings, explicit: set[str]
) -> dict[str, Any]:
    """Lower-only fields a job's preset (not the job itself) set above the operator's value."""
    caps: dict[str, Any] = {}
    for key in policy.lower_only:
        cap, value = value_at(operator, key), value_at(job, key)
        if key not in explicit and cap is not None and (value is None or value > cap):
            caps[key] = cap
    return caps


def value_at(settings: BaseModel, key: str) -> Any:
    """The value of a dotted settings field, e.g. ``budget.max_cost_usd``."""
    value: Any = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _range_problem(
    key: str, value: Any, operator: Settings, policy: JobPolicySettings
) -> str | None:
    low, high = allowed_range(key, operator, policy)
    only_lower = key in policy.lower_only
    cap = value_at(operator, key) if only_lower else None
    if value is None and cap is not None:
        return (
            f"{key}=null would remove the operator's limit of {cap:g}; a job may only "
            f"lower it: allowed {_describe(low, high)}"
        )
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None  # the settings model checks types; its message names the field
    if (
        math.isnan(value)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        hint = " (a job may only lower it below the operator's value)" if cap is not None else ""
        return f"{key}={value:g} is out of range: allowed {_describe(low, high)}{hint}"
    return None


def _model_problem(key: str, value: Any, models: list[str]) -> str | None:
    chosen = value if isinstance(value, list) else [value]
    refused = [m for m in chosen if isinstance(m, str) and m not in models]
    if not refused:
        return None
    return (
        f"{key}: {', '.join(map(repr, refused))} is not a model a job may use; choose from "
        f"{', '.join(map(repr, models))} ({POLICY}.models)"
    )


def _describe(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g} to {high:g}"
    if low is not None:
        return f"{low:g} or more"
    return "any value" if high is None else f"up to {high:g}"


def _inverted(low: float | None, high: float | None) -> bool:
    return low is not None and high is not None and low > high


def _annotation(key: str) -> Any:
    """The type of a dotted settings field, or None when there is no such field."""
    model: Any = Settings
    for part in key.split("."):
        fields = (
            model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        )
        if part not in fields:
            return None
        model = fields[part].annotation
    return model


def _never_allowed(key: str) -> bool:
    return key.startswith(NEVER_ALLOWED) or _mentions(_annotation(key), (Path, SecretStr))


def _mentions(annotation: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, kinds):
        return True
    return any(_mentions(arg, kinds) for arg in get_args(annotation))


def check_preset(name: str | None) -> str | None:
    """A shipped preset name (never a file path), or None."""
    if name is None or name == "":
        return None
    if name not in preset_names():
        raise SettingsError(f"Unknown preset {name!r}: choose one of {', '.join(preset_names())}.")
    return name


@dataclass(frozen=True)
class ServiceConfig:
    """The operator's preset and overrides, shared by the API and the workers."""

    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_flags(cls, preset: str | None, assignments: list[str] | None) -> ServiceConfig:
        """From ``--preset`` and repeated ``--set section.field=value``."""
        return cls(preset, parse_assignments(assignments or []))

    def settings(self) -> Settings:
        """The operator's settings (their job policy checked)."""
        settings = load_settings(self.preset, self.overrides)
        check_policy(settings.service.job_policy)
        return settings

    def for_job(self, preset: str | None, overrides: dict[str, Any]) -> Settings:
        """A job's settings: its preset (or the operator's), the operator's overrides, its own.

        Refused (JobSettingsError) unless they keep to the operator's job policy; a
        lower-only limit that the job's preset would raise stays at the operator's value.
        """
        operator = self.settings()
        policy = operator.service.job_policy
        flat = flatten(overrides)
        merged = deep_merge(self.overrides, check_job_overrides(overrides, policy))
        _refuse(policy_problems(flat, operator, policy))
        name = check_preset(preset) or self.preset
        job = load_settings(name, merged)
        coerced = {f: value_at(job, f) for f in {*flat, *MODEL_FIELDS}}
        _refuse(policy_problems(coerced, operator, policy))
        caps = preset_caps(job, operator, policy, set(flat))
        return load_settings(name, deep_merge(merged, nest(caps))) if caps else job


def _refuse(problems: list[str]) -> None:
    if problems:
        raise JobSettingsError(problems)
