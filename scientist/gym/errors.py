"""Typed errors of the research gym; each message says what to do."""

from __future__ import annotations

from gateway.errors import EXIT_USAGE, AutoscholarError
from scientist.errors import TemplateError


class GymError(AutoscholarError):
    """The research gym could not start or continue an episode."""


class TaskFileError(TemplateError):
    """A template has no ``task.json``, or a malformed one: it cannot be benchmarked."""

    exit_code = EXIT_USAGE


class EpisodeStateError(GymError):
    """``step`` was called before ``reset`` or after the episode ended."""

    exit_code = EXIT_USAGE


class CommandError(GymError):
    """An agent's command cannot be carried out (bad path, bad line range, bad pattern).

    The environment turns it into an observation; it never reaches the caller."""


class MetricError(GymError):
    """A run's ``final_info.json`` lacks the task's metric, or holds no number there."""
