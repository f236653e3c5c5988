"""Where the service keeps its files, and how a job's settings are built.

The API process and every worker are started with the same preset and ``--set`` overrides
(a :class:`ServiceConfig`); a job may then choose another shipped preset and a few safe
overrides of its own, which are merged on top of the operator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import SettingsError
from gateway.settings import Settings, load_settings, parse_assignments, preset_names

# What a job's own overrides may touch: per-stage knobs and model choices, never paths,
# executables, keys or the service itself.
ALLOWED_OVERRIDES = (
    "ideas.",
    "writing.",
    "budget.",
    "review.",
    "experiments.",
    "llm.models.",
    "llm.temperature",
)
FORBIDDEN_OVERRIDES = ("review.calibration_path", "experiments.aider_bin")


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


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def flatten(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` and ``{"a.b": 1}`` both as ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` as ``{"a": {"b": 1}}``."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def check_job_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides, nested, when every key is one a job may set; else SettingsError."""
    flat = flatten(overrides)
    refused = [
        k
        for k in flat
        if k.startswith(FORBIDDEN_OVERRIDES) or not f"{k}.".startswith(ALLOWED_OVERRIDES)
    ]
    if refused:
        allowed = ", ".join(p + ("*" if p.endswith(".") else "") for p in ALLOWED_OVERRIDES)
        raise SettingsError(
            f"A job may not set {', '.join(sorted(refused))}; allowed: {allowed} "
            f"(except {', '.join(FORBIDDEN_OVERRIDES)}). Ask the operator for the rest."
        )
    return nest(flat)


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
        """The operator's settings."""
        return load_settings(self.preset, self.overrides)

    def for_job(self, preset: str | None, overrides: dict[str, Any]) -> Settings:
        """A job's settings: its preset (or the operator's), the operator's overrides, its own."""
        job_overrides = check_job_overrides(overrides)
        return load_settings(
            check_preset(preset) or self.preset, deep_merge(self.overrides, job_overrides)
        )
