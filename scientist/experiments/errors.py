"""Typed errors of the experiment stage; each message says what to do."""

from __future__ import annotations

from gateway.errors import EXIT_USAGE, AutoscholarError, MissingDependencyError


class ExperimentError(AutoscholarError):
    """The experiment stage could not start or continue."""


class AiderNotFoundError(MissingDependencyError):
    """The Aider executable is absent (it lives in its own virtualenv, ``.venv-aider``)."""


class IdeaNotFoundError(ExperimentError):
    """The run folder's ``ideas.json`` is missing, malformed or lacks the named idea."""

    exit_code = EXIT_USAGE


class BaselineError(ExperimentError):
    """The template's baseline run failed, so there is nothing to compare against."""


class TemplateEnvError(ExperimentError):
    """A template's own virtualenv cannot be made: a bad requirements.txt, a missing Python,
    or a pip install that failed (``requirement`` names the line, ``pip_tail`` pip's output)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, requirement: str | None = None, pip_tail: str = "") -> None:
        super().__init__(message)
        self.requirement = requirement
        self.pip_tail = pip_tail
