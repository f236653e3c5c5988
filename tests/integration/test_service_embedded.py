"""One real review job through the worker with the embedded model (debug preset, 1 reviewer).

Greedy decoding (``review.temperature=0``) makes the model's review the same on every run,
so the job must succeed: a failed form is a failure of this test, never an expected one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from gateway import Gateway
from gateway.local import LocalServer
from service.config import ServiceConfig
from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401
from tests.service_support import TOKENS, finished, live_service, submit_pdf, wait_for

pytestmark = pytest.mark.integration


def test_a_review_job_with_the_embedded_model(
    embedded_settings: Settings,
    embedded_server: LocalServer,
    pdf_fixtures: PdfFixtures,
    tmp_path: Path,
) -> None:
    config = ServiceConfig(
        "debug",
        {
            "data_dir": str(embedded_settings.data_dir),
            "llm": {"cache_enabled": False},
            "review": {"max_paper_tokens": 1500, "temperature": 0.0},
            "service": {"tokens": TOKENS, "data_dir": str(tmp_path / "service")},
        },
    )

    def embedded(settings: Settings) -> Gateway:
        return Gateway(settings, local_server=embedded_server)

    with live_service(config, gateway_factory=embedded) as live, live.client(timeout=60) as client:
        response = submit_pdf(client, pdf_fixtures.clean, num_reviewers=1, num_reflections=0)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        body = wait_for(client, f"/v1/reviews/{job_id}", finished, timeout=600)
    assert body["status"] == "done", body["error"]
    review = body["review"]
    assert len(review["reviewers"]) == 1 and review["failures"] == []
    assert review["models"] == ["local"]
    assert 1 <= review["scores"]["Overall"]["mean"] <= 10
    assert review["usage"]["calls"] >= 2
