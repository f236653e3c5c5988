"""`reviewer calibrate` in model mode on four fixture papers with the real embedded model."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import Gateway
from gateway.local import LocalServer
from gateway.settings import Settings
from reviewer.calibration.run import CalibrateOptions, calibrate_with_model
from reviewer.decision import load_calibration
from reviewer.reviewing import ReviewDeps

pytestmark = pytest.mark.integration

PAPERS = Path(__file__).parents[1] / "fixtures" / "iclr_small.jsonl"


def test_calibrate_reviews_papers_with_the_embedded_model(
    embedded_settings: Settings, embedded_server: LocalServer, tmp_path: Path
) -> None:
    review = embedded_settings.review.model_copy(
        update={"num_reviewers": 1, "num_reflections": 0, "max_paper_tokens": 800}
    )
    settings = embedded_settings.model_copy(update={"review": review})
    deps = ReviewDeps(gateway=Gateway(settings, local_server=embedded_server), settings=settings)
    options = CalibrateOptions(
        data=PAPERS, out_dir=tmp_path, limit=4, n_resamples=200, human_draws=2
    )
    outcome, done = calibrate_with_model(options, deps)
    assert done.reviewed == 4 and not done.failures, done.failures
    assert len(list((tmp_path / "reviews").glob("*.json"))) == 4
    assert all(1 <= r.overall_mean <= 10 for r in done.records.values())
    calibration = load_calibration(outcome.paths["calibration"])
    assert 1 <= calibration.threshold <= 10
    assert 0 <= calibration.calibrator.probability(5.0) <= 1
    assert all(path.stat().st_size > 0 for path in outcome.paths.values())
    assert outcome.rows[0].n == 4 and "local" in outcome.rows[0].name
