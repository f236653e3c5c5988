"""`reviewer review` end to end on the real embedded model, a real PDF and weasyprint."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.settings import Settings
from gateway import Gateway
from gateway.local import LocalServer
from graphs.review import review_alone as review
from reviewer.review.form import ReviewReport
from reviewer.review.report import write_outputs
from reviewer.review.reviewing import ReviewDeps
from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401

pytestmark = pytest.mark.integration


def test_review_of_a_real_pdf_with_the_embedded_model(
    embedded_settings: Settings,
    embedded_server: LocalServer,
    pdf_fixtures: PdfFixtures,
    tmp_path: Path,
) -> None:
    settings = embedded_settings.model_copy(
        update={
            "review": embedded_settings.review.model_copy(
                update={"num_reviewers": 2, "num_reflections": 1, "max_paper_tokens": 1500}
            )
        }
    )
    deps = ReviewDeps(gateway=Gateway(settings, local_server=embedded_server), settings=settings)
    report = review({"pdf_path": str(pdf_fixtures.injected)}, deps)
    paths = write_outputs(report, tmp_path / "out")
    stored = ReviewReport.model_validate_json(paths["json"].read_text())
    # The 135M model can still fail a reviewer's schema after its re-ask; that reviewer is
    # recorded as failed and the ensemble goes on (never silently dropped).
    failures = [f.error for f in stored.failures]
    assert len(stored.reviewers) + len(failures) == 2 and stored.reviewers, failures
    assert all(1 <= len(r.rounds) <= 2 for r in stored.reviewers)
    assert 1 <= stored.scores["Overall"].mean <= 10
    assert stored.decision.calibrated is False and stored.decision.probability is None
    assert {f.kind for f in stored.injection_flags} == {"instruction", "hidden_text"}
    assert stored.usage["calls"] >= 3 and stored.usage["completion_tokens"] > 0
    assert json.loads(paths["json"].read_text())["ledger"], "every call is in the ledger"
    assert paths["pdf"].read_bytes().startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", str(paths["pdf"]), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Overall" in text and "uncalibrated" in text
