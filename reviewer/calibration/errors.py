"""Typed errors of the calibration code; none of them is helped by retrying."""

from __future__ import annotations

from gateway.errors import EXIT_USAGE, AutoscholarError


class CalibrationError(AutoscholarError):
    """Calibration cannot go on with these inputs; the message says what to change."""

    exit_code = EXIT_USAGE


class CalibrationDataError(CalibrationError):
    """A data or reviews file has bad records; ``problems`` lists them by line number."""

    def __init__(self, path: object, problems: list[str], *, limit: int = 10) -> None:
        self.path = path
        self.problems = problems
        shown = "; ".join(problems[:limit])
        more = f"; and {len(problems) - limit} more" if len(problems) > limit else ""
        super().__init__(
            f"{path}: {len(problems)} bad record(s): {shown}{more}. Fix or remove them."
        )


class UndefinedMetricError(CalibrationError, ValueError):
    """A metric has no value for this input (one class only, constant scores, no data)."""
