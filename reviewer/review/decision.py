"""Accept/reject from a threshold on mean Overall, and an accept probability from a calibrator.

The calibration file is written by ``reviewer calibrate``; without one, the decision uses
``review.accept_threshold`` (Overall >= 6) and no probability is claimed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from gateway.errors import SettingsError
from reviewer.review.form import Decision


class LogisticCalibrator(BaseModel):
    """P(accept) = 1 / (1 + exp(-(a * score + b)))."""

    kind: Literal["logistic"] = "logistic"
    a: float
    b: float

    def probability(self, score: float) -> float:
        """Accept probability for an aggregated Overall score."""
        z = self.a * score + self.b
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class IsotonicCalibrator(BaseModel):
    """A monotone curve through fitted (score, probability) points, interpolated linearly."""

    kind: Literal["isotonic"] = "isotonic"
    x: list[float] = Field(min_length=1)
    y: list[float] = Field(min_length=1)

    def probability(self, score: float) -> float:
        """Accept probability for an aggregated Overall score."""
        return float(np.interp(score, self.x, self.y))


class Calibration(BaseModel):
    """A fitted threshold and calibrator, with where they came from."""

    threshold: float = Field(ge=1, le=10)
    calibrator: LogisticCalibrator | IsotonicCalibrator = Field(discriminator="kind")
    provenance: str = Field(description="Data, model and settings the fit came from.")


def load_calibration(path: Path) -> Calibration:
    """Read a calibration.json, with an error that says what to do."""
    try:
        return Calibration.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise SettingsError(
            f"{path}: calibration file not found; run `reviewer calibrate`."
        ) from exc
    except (json.JSONDecodeError, ValidationError) as exc:
        raise SettingsError(f"{path}: not a valid calibration file ({exc}).") from exc


def decide(overall_mean: float, calibration: Calibration | None, threshold: float) -> Decision:
    """The decision on mean Overall; never the model's own Accept/Reject word."""
    if calibration is None:
        return Decision(
            decision="accept" if overall_mean >= threshold else "reject",
            overall_mean=overall_mean,
            threshold=threshold,
            probability=None,
            calibrated=False,
            provenance=f"uncalibrated: mean Overall >= {threshold:g}; run `reviewer calibrate` "
            "and set review.calibration_path for a fitted threshold and probability",
        )
    return Decision(
        decision="accept" if overall_mean >= calibration.threshold else "reject",
        overall_mean=overall_mean,
        threshold=calibration.threshold,
        probability=calibration.calibrator.probability(overall_mean),
        calibrated=True,
        provenance=calibration.provenance,
    )
