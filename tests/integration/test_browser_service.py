"""A real browser (Playwright driving Debian's chromium) logs in, uploads a PDF, reads scores.

Needs /usr/bin/chromium (``apt-get install chromium``; ``make setup`` installs it);
Playwright's own browser download is not used. The screenshot is kept under pytest's tmp
dir and, when AUTOSCHOLAR_ARTIFACTS_DIR is set, copied there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.service_support import TOKENS, live_service, service_config

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "papers" / "multi_style_adapter.pdf"


def _keep(screenshot: Path) -> None:
    target = os.environ.get("AUTOSCHOLAR_ARTIFACTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(target) / screenshot.name)


def test_log_in_upload_a_pdf_and_see_the_score_table(tmp_path: Path) -> None:
    if not CHROMIUM.is_file():
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with live_service(service_config(tmp_path), workers=1) as live, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{live.url}/jobs")
            assert "/login" in page.url  # sent to the login page first
            page.fill("#token", TOKENS["alice"])
            page.click("form.card button[type=submit]")
            page.wait_for_url("**/jobs")
            page.set_input_files("#file", str(SAMPLE))
            page.fill("#num_reviewers", "2")
            page.click("#upload-form button[type=submit]")
            page.wait_for_url("**/reviews/*")
            # The page refreshes itself until the review is done.
            page.wait_for_selector("table#scores", timeout=90_000)
            rows = page.locator("table#scores tbody tr")
            assert rows.count() == 9
            assert rows.first.locator("th").inner_text() == "Originality"
            assert page.locator("table#scores svg.spread").count() == 9
            assert page.locator("#meta-review").is_visible()
            assert page.get_by_role("link", name="report.pdf").is_visible()
            screenshot = tmp_path / "service_review_page.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    _keep(screenshot)
