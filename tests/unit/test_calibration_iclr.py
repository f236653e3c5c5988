"""Against the real ICLR 2022 calibration split in ../shared (skipped when it is absent).

The stored AI Scientist GPT-4o reviews must reproduce their published figures on the 350
papers, and the human baseline must reproduce human_baseline.json's calibration column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reviewer.calibration import baselines as b
from reviewer.calibration import metrics as m
from reviewer.calibration.data import CalibrationPaper, labels, load_papers
from reviewer.calibration.run import DEFAULT_DATA, PEER_FILE, CalibrateOptions
from reviewer.calibration.run import calibrate_from_reviews as from_reviews

ICLR = DEFAULT_DATA.parent
pytestmark = pytest.mark.skipif(
    not (DEFAULT_DATA.is_file() and (ICLR / PEER_FILE).is_file()),
    reason=f"the ICLR 2022 calibration data is not at {ICLR} (../shared is absent)",
)


@pytest.fixture(scope="module")
def papers() -> list[CalibrationPaper]:
    return load_papers(DEFAULT_DATA)


def test_stored_gpt4o_reviews_reproduce_their_figures(tmp_path: Path) -> None:
    options = CalibrateOptions(out_dir=tmp_path, n_resamples=100, human_draws=2)
    rows = {(r.name, r.rule): r for r in from_reviews(options, ICLR / PEER_FILE).rows}
    rule = rows[(Path(PEER_FILE).stem, "Overall ≥ 6")]
    assert rule.n == 350
    assert rule.metrics["balanced_accuracy"].value == pytest.approx(0.65, abs=0.02)
    assert rule.metrics["roc_auc"].value == pytest.approx(0.70, abs=0.02)
    length = rows[("text length (full text)", "CV threshold (5-fold)")]
    assert length.metrics["roc_auc"].value == pytest.approx(0.70, abs=0.02)
    assert not any(name.startswith("AI Scientist") for name, _ in rows)  # it is the reviewer


def test_human_baseline_matches_human_baseline_json(papers: list[CalibrationPaper]) -> None:
    stored = json.loads((ICLR / "human_baseline.json").read_text())["calibration"]
    y, votes = labels(papers), b.vote_shares(papers)
    single = stored["single_reviewer"]
    assert m.balanced_accuracy(y, votes) == pytest.approx(single["expected_balanced_accuracy"])
    assert m.balanced_accuracy(y, votes) == pytest.approx(0.758, abs=0.0005)
    assert m.accuracy(y, votes) == pytest.approx(single["expected_accuracy"])
    assert 1 - m.false_negative_rate(y, votes) == pytest.approx(single["expected_tpr"])
    # Exact expectation of the single reviewer's AUC vs the JSON's Monte-Carlo mean.
    everything = np.arange(len(papers))
    auc = b.expected_auc(b.pairwise_win_matrix(papers), y, everything)
    assert auc == pytest.approx(single["mc_rating_auc_mean"], abs=0.005)
    mean_auc = m.roc_auc(y, b.mean_ratings(papers))
    assert mean_auc == pytest.approx(stored["mean_rating"]["auc"], abs=1e-9)
    assert mean_auc == pytest.approx(0.950, abs=0.0005)
