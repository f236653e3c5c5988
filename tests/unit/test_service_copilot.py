"""The browser co-pilot of service run jobs: pauses in the job store, answers over the API
and the run page, the worker waiting on them, and the run page's review and plan.

The end-to-end tests run the real pipeline graph (``run_in_folder``) on the pipeline fakes
(``tests/pipeline_support.py``) in an in-process worker, against the app through
Starlette's test client; the job store is a real SQLite file.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.runstore import RunPaths
from gateway.scripted import ScriptedLLM
from scientist.pipeline.models import CopilotReply, CopilotRequest
from service.app import create_app
from service.config import ServiceConfig
from service.copilot import BrowserCopilot, CopilotStore, answer_pause
from service.errors import ApiError, ClaimLostError, JobCancelledError
from service.jobs import default_handlers
from service.markdown import render_markdown
from service.models import CopilotAnswer
from service.store import JobRecord, JobStore
from service.worker import Worker
from tests.copilot_support import TOY, copilot_config, fake_launcher
from tests.pipeline_support import PipelineModel
from tests.service_support import auth, scripted_gateway, service_config

IDEAS_JSON = json.dumps([{"Name": "a", "Title": "A", "Experiment": "Run it."}])
NOTES = "Notes from the browser.\r\nSecond line: seeds 0-4."


# ------------------------------------------------------------------ the store, alone


def _running_job(tmp_path: Path) -> tuple[JobStore, CopilotStore, JobRecord]:
    store = JobStore(tmp_path / "jobs.sqlite")
    store.create("run", "alice", {"template": "toy", "copilot": True})
    job = store.claim("w", lease_s=60, max_attempts=3)
    assert job is not None and job.claim is not None
    return store, CopilotStore(tmp_path / "jobs.sqlite"), job


def _request(stage: str = "ideas", editable: str = IDEAS_JSON, idea: str | None = None) -> Any:
    return CopilotRequest(stage=stage, idea=idea, summary=f"{stage} done", editable=editable)


def test_a_pause_waits_until_answered_and_its_answer_is_taken_once(tmp_path: Path) -> None:
    _, pauses, job = _running_job(tmp_path)
    assert job.claim is not None
    seq = pauses.ask(job.id, job.claim, _request())
    assert seq == 1 and pauses.waiting(job.id) is not None
    assert pauses.waiting_jobs([job.id, "other"]) == {job.id}
    assert pauses.take_answer(job.id, 1) is None  # not answered yet

    stored = answer_pause(pauses, job, CopilotAnswer(action="approve", text="ignored", pause=1))
    assert (stored.state, stored.action, stored.text) == ("answered", "approve", "")
    assert stored.answered_at is not None
    assert pauses.waiting(job.id) is None and pauses.waiting_jobs([job.id]) == set()
    assert pauses.take_answer(job.id, 1) == CopilotReply(action="approve")
    assert pauses.take_answer(job.id, 1) is None  # delivered: never twice
    assert [p.state for p in pauses.pauses(job.id)] == ["delivered"]


def test_one_answer_per_pause_and_a_stale_answer_never_lands_on_the_next(tmp_path: Path) -> None:
    _, pauses, job = _running_job(tmp_path)
    assert job.claim is not None
    pauses.ask(job.id, job.claim, _request())
    answer_pause(pauses, job, CopilotAnswer(action="approve", pause=1))
    with pytest.raises(ApiError) as again:  # a double click on the same form
        answer_pause(pauses, job, CopilotAnswer(action="approve", pause=1))
    assert again.value.status == 409 and again.value.code == "not_waiting"
    assert pauses.take_answer(job.id, 1) is not None
    pauses.ask(job.id, job.claim, _request("experiments", "notes", idea="a"))
    with pytest.raises(ApiError) as stale:  # pause 1's form, posted late, hits pause 2
        answer_pause(pauses, job, CopilotAnswer(action="approve", pause=1))
    assert stale.value.status == 409 and "pause 2" in stale.value.detail
    assert pauses.waiting(job.id) is not None  # pause 2 still waits for its own answer


def test_a_restarted_run_asking_again_keeps_the_pause_and_its_answer(tmp_path: Path) -> None:
    store, pauses, job = _running_job(tmp_path)
    assert job.claim is not None
    assert pauses.ask(job.id, job.claim, _request()) == 1
    answer_pause(pauses, job, CopilotAnswer(action="feedback", text="more seeds"))
    # The worker died before it took the answer; the next one resumes and asks again.
    assert store.release(job.id, job.claim, "worker stopped")
    again = store.claim("w2", lease_s=60, max_attempts=3)
    assert again is not None and again.claim is not None
    assert pauses.ask(again.id, again.claim, _request()) == 1
    assert pauses.take_answer(again.id, 1) == CopilotReply(action="feedback", text="more seeds")
    # The same request after the answer was taken is a new pause (a redo), never answered
    # from the old one; a waiting pause the run left behind is dropped.
    assert pauses.ask(again.id, again.claim, _request()) == 2
    assert pauses.ask(again.id, again.claim, _request("experiments", "n", idea="a")) == 3
    assert [p.state for p in pauses.pauses(job.id)] == ["delivered", "dropped", "waiting"]
    assert pauses.ask(job.id, "a lost claim", _request()) is None


@pytest.mark.parametrize(
    ("editable", "answer", "says"),
    [
        (IDEAS_JSON, CopilotAnswer(action="feedback", text="  "), "feedback needs text"),
        (IDEAS_JSON, CopilotAnswer(action="edit", text=""), "edit needs text"),
        (IDEAS_JSON, CopilotAnswer(action="edit", text="[{"), "is JSON and the edit is not"),
        (IDEAS_JSON, CopilotAnswer(action="edit", text='{"Name": "a"}'), "JSON array"),
        (IDEAS_JSON, CopilotAnswer(action="edit", text='[{"Name": "a"}]'), "not a valid JSON"),
    ],
)
def test_answers_the_pipeline_could_not_use_are_refused_and_nothing_stored(
    tmp_path: Path, editable: str, answer: CopilotAnswer, says: str
) -> None:
    _, pauses, job = _running_job(tmp_path)
    assert job.claim is not None
    pauses.ask(job.id, job.claim, _request(editable=editable))
    with pytest.raises(ApiError) as refused:
        answer_pause(pauses, job, answer)
    assert refused.value.status == 422 and refused.value.code == "invalid_answer"
    assert says in refused.value.detail
    assert pauses.waiting(job.id) is not None


def test_a_text_artifact_takes_any_text_and_a_plain_run_takes_no_answer(tmp_path: Path) -> None:
    store, pauses, job = _running_job(tmp_path)
    assert job.claim is not None
    pauses.ask(job.id, job.claim, _request("experiments", "the notes", idea="a"))
    answer_pause(pauses, job, CopilotAnswer(action="edit", text="{not json, and fine"))
    plain = store.create("run", "alice", {"template": "toy"})
    with pytest.raises(ApiError, match="not started as a co-pilot run"):
        answer_pause(pauses, plain, CopilotAnswer(action="approve"))


def test_the_worker_copilot_polls_for_the_answer_and_stops_when_cancelled(
    tmp_path: Path,
) -> None:
    store, pauses, job = _running_job(tmp_path)
    assert job.claim is not None
    events: list[dict[str, Any]] = []
    polls: list[float] = []

    def answer_on_third_poll(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            answer_pause(pauses, job, CopilotAnswer(action="edit", text="edited notes"))

    copilot = BrowserCopilot(
        pauses, job.id, job.claim, on_event=events.append, poll_s=0.25, sleep=answer_on_third_poll
    )
    reply = copilot(_request("experiments", "notes", idea="a"))
    assert reply == CopilotReply(action="edit", text="edited notes")
    assert polls == [0.25, 0.25, 0.25]
    assert [e["status"] for e in events] == ["waiting for your answer", "answered: edit"]
    assert events[0]["idea"] == "a" and events[0]["pause"] == 1

    lost = threading.Event()

    def check() -> None:  # what the lease says: the claim went to another worker
        if lost.is_set():
            raise ClaimLostError("another worker holds it now")

    waiting = BrowserCopilot(
        pauses, job.id, job.claim, check=check, poll_s=0.0, sleep=lambda s: lost.set()
    )
    with pytest.raises(ClaimLostError):
        waiting(_request("writeup", "tex", idea="a"))

    # Cancelled by its owner: seen at the next poll, not at the lease's next renewal.
    waiting = BrowserCopilot(
        pauses, job.id, job.claim, poll_s=0.0, sleep=lambda s: store.cancel(job.id, "alice")
    )
    with pytest.raises(JobCancelledError):
        waiting(_request("writeup", "tex 2", idea="a"))


# ------------------------------------------------------------- the service, end to end


class Service:
    """The app under a test client and one in-process worker running one job."""

    def __init__(self, tmp_path: Path, llm: ScriptedLLM) -> None:
        self.config = copilot_config(tmp_path)
        self.app = create_app(self.config)
        self.app.state.service.templates = lambda: [TOY]
        self.client = TestClient(self.app, headers=auth("alice"))
        self.worker = Worker(self.config, default_handlers(scripted_gateway(), fake_launcher(llm)))
        self.thread = threading.Thread(target=self.worker.run_once, daemon=True)

    def get(self, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/runs/{job_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def next_pause(self, job_id: str, timeout: float = 120.0) -> dict[str, Any] | None:
        """The next pause that waits (None when the run ended first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.get(job_id)
            if body["status"] == "waiting":
                assert body["copilot_pause"]["state"] == "waiting"
                return body
            if body["status"] in ("done", "failed", "cancelled"):
                return None
            time.sleep(0.05)
        raise AssertionError(f"run {job_id} never paused or ended: {self.get(job_id)}")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Service, ScriptedLLM]]:
    llm = ScriptedLLM(PipelineModel())
    svc = Service(tmp_path, llm)
    try:
        yield svc, llm
    finally:
        store = svc.app.state.service.store
        for job in store.jobs_of("alice"):  # a failed check leaves no run waiting
            store.cancel(job.id, "alice")
        svc.client.close()
        svc.thread.join(timeout=60)


def test_a_copilot_run_pauses_and_is_answered_over_the_api_and_the_page(
    service: tuple[Service, ScriptedLLM],
) -> None:
    svc, llm = service
    started = svc.client.post("/v1/runs", json={"template": TOY, "copilot": True})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    svc.thread.start()

    first = svc.next_pause(job_id)
    assert first is not None and first["copilot"] is True
    pause = first["copilot_pause"]
    assert (pause["seq"], pause["stage"], pause["idea"]) == (1, "ideas", None)
    assert json.loads(pause["editable"])[0]["Name"]  # the chosen ideas, as JSON
    assert [j["status"] for j in svc.client.get("/v1/runs").json()["jobs"]] == ["waiting"]
    page = svc.client.get(f"/runs/{job_id}")
    assert page.status_code == 200 and 'http-equiv="refresh"' not in page.text
    assert 'id="copilot-approve"' in page.text and 'id="copilot-feedback"' in page.text
    assert 'id="copilot-edit-text"' in page.text and "&#34;Name&#34;" in page.text

    bad = svc.client.post(f"/v1/runs/{job_id}/copilot", json={"action": "edit", "text": "[{"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_answer", bad.text
    approved = svc.client.post(f"/v1/runs/{job_id}/copilot", json={"action": "approve", "pause": 1})
    assert approved.status_code == 200, approved.text
    assert [a["action"] for a in approved.json()["copilot_answers"]] == ["approve"]

    body = svc.next_pause(job_id)
    while body is not None and body["copilot_pause"]["stage"] != "experiments":
        seq = body["copilot_pause"]["seq"]  # a stage before the experiments: approve it
        svc.client.post(f"/v1/runs/{job_id}/copilot", json={"action": "approve", "pause": seq})
        body = svc.next_pause(job_id)
    assert body is not None, "the run never paused after its experiments"
    experiments = body["copilot_pause"]
    idea = experiments["idea"]
    # The idea's review and plan, as its stages wrote them, are on the page by now.
    page = svc.client.get(f"/runs/{job_id}").text
    assert 'class="document literature_review"' in page and 'class="document plan"' in page
    form = {"pause": str(experiments["seq"]), "action": "edit", "text": NOTES}
    posted = svc.client.post(f"/runs/{job_id}/copilot", data=form, follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"] == f"/runs/{job_id}"
    twice = svc.client.post(f"/runs/{job_id}/copilot", data=form, follow_redirects=False)
    assert twice.status_code == 409 and 'id="copilot-error"' in twice.text  # said on the page
    assert "waits for no co-pilot answer" in twice.text or "is not the one waiting" in twice.text

    while (body := svc.next_pause(job_id)) is not None:
        seq = body["copilot_pause"]["seq"]
        svc.client.post(f"/v1/runs/{job_id}/copilot", json={"action": "approve", "pause": seq})
    final = svc.get(job_id)
    assert final["status"] == "done", final["error"]
    assert final["copilot_pause"] is None

    run = RunPaths(Path(svc.app.state.service.paths.run_dir(job_id)))
    record = json.loads(run.idea(idea).experiments_json.read_text())
    assert record["notes"] == NOTES.replace("\r\n", "\n")  # the browser's CRLF undone
    # The write-up, the stage after the edit, had the edited notes in its prompts.
    assert any("Second line: seeds 0-4" in m.content for r in llm.requests for m in r.messages)
    answers = [(a["stage"], a["action"]) for a in final["copilot_answers"]]
    assert answers[0] == ("ideas", "approve") and ("experiments", "edit") in answers
    job = svc.app.state.service.store.get(job_id)
    statuses = [e.get("status") for e in job.progress["events"]]
    assert "waiting for your answer" in statuses and "answered: edit" in statuses


def test_a_waiting_run_can_be_cancelled(service: tuple[Service, ScriptedLLM]) -> None:
    svc, _ = service
    job_id = svc.client.post("/v1/runs", json={"template": TOY, "copilot": True}).json()["id"]
    svc.thread.start()
    assert svc.next_pause(job_id) is not None
    assert svc.client.post(f"/runs/{job_id}/cancel", follow_redirects=False).status_code == 303
    late = svc.client.post(f"/v1/runs/{job_id}/copilot", json={"action": "approve"})
    assert late.status_code == 409 and "cancelled" in late.json()["detail"]
    svc.thread.join(timeout=60)
    assert svc.get(job_id)["status"] == "cancelled"


def test_the_run_form_starts_a_copilot_run_and_a_plain_run_takes_no_answers(
    tmp_path: Path,
) -> None:
    app = create_app(service_config(tmp_path))
    app.state.service.templates = lambda: ["toy"]
    with TestClient(app, headers=auth("alice")) as client:
        assert 'name="copilot"' in client.get("/jobs").text
        form = {"template": "toy", "preset": "", "copilot": "on"}
        started = client.post("/jobs/run", data=form, follow_redirects=False)
        assert started.status_code == 303, started.text
        copilot_id = started.headers["location"].rsplit("/", 1)[-1]
        plain = client.post("/v1/runs", json={"template": "toy"}).json()["id"]
        store = app.state.service.store
        assert store.get(copilot_id).params["copilot"] is True
        assert "copilot" not in store.get(plain).params
        refused = client.post(f"/v1/runs/{plain}/copilot", json={"action": "approve"})
        assert refused.status_code == 409 and "not started as a co-pilot run" in refused.text
        view = client.get(f"/v1/runs/{copilot_id}").json()
        assert view["copilot"] is True and view["copilot_pause"] is None


def test_the_page_takes_an_edit_as_long_as_the_body_limit_allows(tmp_path: Path) -> None:
    """A paper.tex is longer than a form field may be (service.max_form_field_kb): the
    pause's form takes it up to the body limit (service.max_form_kb), and no further."""
    app = create_app(service_config(tmp_path))
    state = app.state.service
    state.store.create("run", "alice", {"template": "toy", "copilot": True})
    job = state.store.claim("w", lease_s=60, max_attempts=3)
    assert job is not None and job.claim is not None
    state.copilot.ask(job.id, job.claim, _request("writeup", "\\documentclass{article}", "a"))
    tex = "\\section{Intro}\n" + "x" * 40_000
    with TestClient(app, headers=auth("alice")) as client:
        form = {"pause": "1", "action": "edit", "text": tex}
        taken = client.post(f"/runs/{job.id}/copilot", data=form, follow_redirects=False)
        state.copilot.ask(job.id, job.claim, _request("writeup", "again", "a"))
        form = {"pause": "2", "action": "edit", "text": "x" * 70_000}
        too_long = client.post(f"/runs/{job.id}/copilot", data=form, follow_redirects=False)
    assert taken.status_code == 303, taken.text
    assert state.copilot.take_answer(job.id, 1) == CopilotReply(action="edit", text=tex)
    assert too_long.status_code == 413 and state.copilot.waiting(job.id) is not None


def test_copilot_runs_are_refused_where_runs_go_to_the_ray_cluster(tmp_path: Path) -> None:
    base = service_config(tmp_path)
    config = ServiceConfig(base.preset, {**base.overrides, "cluster": {"service_runs": True}})
    app = create_app(config)
    app.state.service.templates = lambda: ["toy"]
    with TestClient(app, headers=auth("alice")) as client:
        refused = client.post("/v1/runs", json={"template": "toy", "copilot": True})
    assert refused.status_code == 422 and refused.json()["error"] == "copilot_unavailable"


# ------------------------------------------------------- the review and plan on the page


REVIEW_MD = """# Literature review
Papers on **grokking** <script>alert(1)</script>.

## Theme: delayed generalisation
- Power et al. (`power2022grokking`): [click](javascript:alert(1))
"""


def test_the_run_page_shows_each_ideas_review_and_plan_rendered_safely(tmp_path: Path) -> None:
    app = create_app(service_config(tmp_path))
    state = app.state.service
    job = state.store.create("run", "alice", {"template": "toy", "copilot": True})
    run = RunPaths(state.paths.run_dir(job.id))
    idea = run.idea("sparse_gadgets").root
    idea.mkdir(parents=True)
    run.ideas_json.write_text(json.dumps([{"Name": "sparse_gadgets", "Title": "T"}]))
    (idea / "literature_review.md").write_text(REVIEW_MD)
    (idea / "plan.md").write_text("## Hypotheses\n1. Weight decay speeds it up\n")
    (idea / "plan.json").write_text('{"runs": []}')
    with TestClient(app, headers=auth("alice")) as client:
        page = client.get(f"/runs/{job.id}").text
        [status] = client.get(f"/v1/runs/{job.id}").json()["ideas"]
        served = client.get(f"/v1/runs/{job.id}/ideas/sparse_gadgets/documents/plan.json")
        missing = client.get(f"/v1/runs/{job.id}/ideas/other/documents/plan.md")
    assert "<h3>Literature review</h3>" in page and "<strong>grokking</strong>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "<code>power2022grokking</code>" in page and 'href="javascript' not in page
    assert "<ol><li>Weight decay speeds it up</li></ol>" in page
    assert status["has_literature_review"] and status["has_plan"]
    assert served.status_code == 200 and served.json() == {"runs": []}
    assert missing.status_code == 404 and missing.json()["error"] == "not_ready"


def test_the_run_page_shows_the_feedback_run_json_records(tmp_path: Path) -> None:
    app = create_app(service_config(tmp_path))
    state = app.state.service
    job = state.store.create("run", "alice", {"template": "toy"})
    run = RunPaths(state.paths.run_dir(job.id))
    run.idea("sparse_gadgets").root.mkdir(parents=True)
    run.ideas_json.write_text(json.dumps([{"Name": "sparse_gadgets", "Title": "T"}]))
    manifest = {
        "feedback": {"ideas": ["Fewer ideas on optimisers"]},
        "ideas": [{"name": "sparse_gadgets", "feedback": {"plan": ["Add a seed sweep", "x2"]}}],
    }
    run.run_json.write_text(json.dumps(manifest))
    with TestClient(app, headers=auth("alice")) as client:
        page = client.get(f"/runs/{job.id}").text
    assert "Your answers at the ideas stage" in page and "Fewer ideas on optimisers" in page
    idea = page.split('id="idea-sparse_gadgets"', 1)[1]
    assert idea.index("Add a seed sweep") < idea.index("x2")  # in the order given


def test_markdown_keeps_structure_and_turns_nothing_into_markup() -> None:
    html = str(render_markdown(REVIEW_MD + "\n```\n<b>code</b>\n```\n<img src=x onerror=y>"))
    assert html.startswith("<h3>Literature review</h3>\n<p>Papers on <strong>grokking</strong>")
    assert "<h4>Theme: delayed generalisation</h4>" in html
    assert "<ul><li>Power et al. (<code>power2022grokking</code>): [click](javascript:" in html
    assert "<pre><code>&lt;b&gt;code&lt;/b&gt;</code></pre>" in html
    assert "<img" not in html and "&lt;img src=x onerror=y&gt;" in html
