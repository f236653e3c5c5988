"""Typed errors of the write-up stage; each says what was wrong and what to do."""

from __future__ import annotations

from gateway.errors import EXIT_CONFIG, EXIT_USAGE, AutoscholarError


class WriteupError(AutoscholarError):
    """Base of the write-up stage's errors."""


class ToolchainMissingError(WriteupError):
    """latexmk, pdflatex, bibtex or chktex is not installed."""

    exit_code = EXIT_CONFIG


class TemplateCompileError(WriteupError):
    """The paper template does not compile as shipped, before anything was written into it."""


class WriteupInputError(WriteupError):
    """The idea folder lacks what the write-up needs (template, experiments.json, ideas)."""

    exit_code = EXIT_USAGE


class PaperCompileError(WriteupError):
    """The paper did not compile after every fix round and the conservative fallback."""
