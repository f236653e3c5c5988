"""Typed errors of the paper-writing side; each message says what to do."""

from __future__ import annotations

from gateway.errors import EXIT_USAGE, AutoscholarError


class TemplateError(AutoscholarError):
    """A research template is missing, incomplete or malformed."""

    exit_code = EXIT_USAGE
