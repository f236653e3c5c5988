"""A co-pilot run driven in a real browser (Playwright on Debian's chromium): log in, start
a co-pilot run, approve the ideas and the literature review, edit the plan, and find the
edit in the experiment stage's record.

The service is real (uvicorn on loopback, a worker thread, the SQLite job store) and so is
the paper graph with its co-pilot pauses; the models, Aider, the experiment runner, LaTeX
and the literature are the pipeline fakes (``tests/pipeline_support.py``). Needs chromium
on PATH (``apt-get install chromium``) and the playwright package; Playwright's own browser
download is not used. Every wait is an explicit wait on the page, bounded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from core.runstore import RunPaths
from gateway.scripted import ScriptedLLM
from tests.copilot_support import TOY, copilot_config, fake_launcher
from tests.pipeline_support import PipelineModel
from tests.service_support import TOKENS, live_service

pytestmark = pytest.mark.integration
EDITED_RUN = "browser_edited_run"
STEP_MS = 120_000  # a stage on the fakes takes seconds; the page looks again every 4 s


def _log_in(page: Any, url: str) -> None:
    page.goto(f"{url}/jobs")
    assert "/login" in page.url
    page.fill("#token", TOKENS["alice"])
    page.click("form.card button[type=submit]")
    page.wait_for_url("**/jobs")


def _next_pause(page: Any) -> tuple[str, int] | None:
    """Wait (through the page's own refreshes) for a pause or the run's end; the pause's
    stage and number, or None once the run is over."""
    shown = page.locator("#copilot").or_(page.locator("span.status.done"))
    shown = shown.or_(page.get_by_text("The run failed"))
    shown.first.wait_for(timeout=STEP_MS)
    pause = page.locator("#copilot")
    if pause.count() == 0:
        return None
    return str(pause.get_attribute("data-stage")), int(pause.get_attribute("data-pause") or 0)


def _answer(page: Any, form: str) -> None:
    """Submit one of the pause's forms and wait for the run page it leads back to."""
    with page.expect_navigation(timeout=STEP_MS):
        page.click(f"#{form} button[type=submit]")
    assert page.locator("#copilot-error").count() == 0, page.inner_text("#copilot-error")


def _edit_plan(page: Any) -> None:
    plan = json.loads(page.input_value("#copilot-edit-text"))
    plan["runs"][0]["name"] = EDITED_RUN
    page.fill("#copilot-edit-text", json.dumps(plan, indent=2))
    _answer(page, "copilot-edit")


def test_approve_the_review_edit_the_plan_and_see_the_edit_in_the_experiments(
    tmp_path: Path,
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not on PATH (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    config = copilot_config(tmp_path, "survey.enabled=true", "plan.enabled=true")
    launcher = fake_launcher(ScriptedLLM(PipelineModel()))
    stages: list[str] = []
    with (
        live_service(config, launcher=launcher, templates=[TOY]) as live,
        sync_api.sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            _log_in(page, live.url)
            page.select_option("#template", TOY)
            page.check("#copilot")
            page.click("#run-form button[type=submit]")
            page.wait_for_url("**/runs/*")
            job_id = page.url.rsplit("/", 1)[-1]
            while (pause := _next_pause(page)) is not None:
                stage, seq = pause
                stages.append(stage)
                assert seq == len(stages)  # each pause answered once, in turn
                if stage == "plan":
                    _edit_plan(page)
                else:
                    _answer(page, "copilot-approve")
                if stage == "experiments":  # the edited plan is on the page by now
                    plan = page.locator(".idea-documents details.document.plan").first
                    assert EDITED_RUN in plan.inner_text()
            assert page.locator("span.status.done").count() == 1
        finally:
            browser.close()
            for job in live.store.jobs_of("alice"):  # a failed check leaves no run waiting
                live.store.cancel(job.id, "alice")
        run = RunPaths(Path(live.state.paths.run_dir(job_id)))
        pauses = live.state.copilot.pauses(job_id)

    assert stages[:4] == ["ideas", "literature_review", "plan", "experiments"], stages
    assert [(p.stage, p.action) for p in pauses][:3] == [
        ("ideas", "approve"),
        ("literature_review", "approve"),
        ("plan", "edit"),
    ]
    [idea] = [folder for folder in run.root.iterdir() if (folder / "plan.json").is_file()]
    plan = json.loads((idea / "plan.json").read_text())
    assert plan["runs"][0]["name"] == EDITED_RUN
    record = json.loads((idea / "experiments.json").read_text())
    planned = [r.get("planned_run") for r in record["rounds"] if r.get("planned_run")]
    assert planned and planned[0] == EDITED_RUN, record["rounds"]
