"""The paper pipeline end to end with every side effect faked: outputs, budgets, co-pilot,
batch, improve, and a SIGKILL in the middle of the experiment stage followed by a resume."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.errors import BudgetExceededError
from gateway.ledger import read_entries, sum_entries
from gateway.scripted import ScriptedLLM
from scientist.cli.pipeline import batch_table
from scientist.pipeline.models import CopilotReply, CopilotRequest, RunManifest
from scientist.runs.batch import BatchResult, BatchTask, InlineExecutor, run_batch
from scientist.runs.run import resume_pipeline, run_pipeline
from scientist.runs.wiring import RunRequest
from tests.pipeline_support import (
    ROOT,
    FakeEditor,
    FakeRunner,
    PipelineModel,
    fake_deps_factory,
    fast_overrides,
)
from tests.priced_llm import PRICED_MODEL, PricedLLM

TOY = str(ROOT / "tests" / "fixtures" / "template_toy")


def _run(tmp_path: Path, *extra: str, runner: FakeRunner | None = None, copilot=None, llm=None):
    request = RunRequest(
        template=TOY, preset="debug", overrides=[*fast_overrides(tmp_path), *extra]
    )
    factory = fake_deps_factory(llm or PipelineModel(), runner=runner, copilot=copilot)
    return run_pipeline(request, deps_factory=factory)


def test_run_writes_every_artifact_and_usage(tmp_path: Path) -> None:
    run, manifest = _run(tmp_path)
    assert manifest.status == "done"
    [idea] = manifest.ideas
    assert idea.status == "done" and idea.stage == "review"
    folder = run.idea(idea.name)
    for path in (
        run.ideas_json,
        run.ledger,
        run.run_json,
        run.checkpoints,
        folder.experiments_json,
        folder.paper_pdf,
        folder.review_dir / "review.json",
    ):
        assert path.is_file(), path
    on_disk = RunManifest.model_validate_json(run.run_json.read_text())
    assert on_disk.preset == "debug" and on_disk.versions["langgraph"]
    totals = sum_entries(read_entries(run.ledger))
    assert on_disk.totals["calls"] == totals.calls > 0
    per_idea = sum(u.calls for u in idea.usage.values())
    assert per_idea + on_disk.ideas_stage.calls == totals.calls
    assert {"experiments", "writeup", "review"} <= set(idea.usage)


def test_budget_per_idea_stops_it_cleanly(tmp_path: Path) -> None:
    run, manifest = _run(tmp_path, "pipeline.idea_max_total_tokens=50")
    [idea] = manifest.ideas
    assert idea.status == "stopped: budget"
    # The literature review is the first of the idea's stages to call the model.
    assert idea.stage == "literature_review" and "budget" in (idea.reason or "").lower()
    assert manifest.status == "done" and not run.idea(idea.name).paper_pdf.exists()


def test_wall_time_budget_per_idea(tmp_path: Path) -> None:
    _, manifest = _run(tmp_path, "pipeline.idea_max_wall_s=0.000001")
    [idea] = manifest.ideas
    assert idea.status == "stopped: budget" and "Wall-time" in (idea.reason or "")


def test_batch_reports_a_crashing_idea_and_finishes_the_others(tmp_path: Path) -> None:
    overrides = [
        *fast_overrides(tmp_path),
        "ideas.num_ideas=3",
        "pipeline.ideas_to_run=3",
        "pipeline.skip_not_novel=false",
    ]
    runner = FakeRunner(crashes=1)

    def task_fn(task: BatchTask) -> BatchResult:
        request = RunRequest(template=task.template, preset=task.preset, overrides=task.overrides)
        run, manifest = run_pipeline(
            request, deps_factory=fake_deps_factory(PipelineModel(), runner=runner)
        )
        return BatchResult(
            task=task,
            run_dir=str(run.root),
            status=manifest.status,
            seconds=manifest.wall_s,
            ideas=manifest.ideas,
        )

    [result] = run_batch(
        [BatchTask(template=TOY, preset="debug", overrides=overrides)], InlineExecutor(), fn=task_fn
    )
    statuses = collections.Counter(o.status for o in result.ideas)
    assert statuses == {"done": 2, "failed": 1}
    [failed] = [o for o in result.ideas if o.status == "failed"]
    assert failed.stage == "experiments" and "simulated crash" in (failed.reason or "")
    table = batch_table([result])
    cells = [cell for column in table.columns for cell in column._cells]
    assert any("simulated crash" in str(cell) for cell in cells)


def test_improve_keeps_both_versions(tmp_path: Path) -> None:
    run, manifest = _run(tmp_path, "pipeline.improve=true")
    [idea] = manifest.ideas
    assert idea.status == "done" and idea.revised_overall is not None
    folder = run.idea(idea.name).root
    assert (folder / "paper_original" / "paper.pdf").is_file()
    assert (folder / "review_revised" / "review.json").is_file()
    assert (folder / "review" / "review.json").is_file()


class ScriptedCopilot:
    """Answers each stage's pause from a script; records what it was shown."""

    def __init__(self, answers: dict[str, list[CopilotReply]]) -> None:
        self.answers = answers
        self.seen: list[CopilotRequest] = []

    def __call__(self, request: CopilotRequest) -> CopilotReply:
        self.seen.append(request)
        queue = self.answers.get(request.stage, [])
        return queue.pop(0) if queue else CopilotReply(action="approve")


def test_copilot_approve_everything(tmp_path: Path) -> None:
    copilot = ScriptedCopilot({})
    _, manifest = _run(tmp_path, copilot=copilot)
    assert [r.stage for r in copilot.seen] == [
        "ideas",
        "literature_review",
        "plan",
        "experiments",
        "writeup",
    ]
    assert manifest.ideas[0].status == "done"


def test_copilot_feedback_reaches_the_redone_stage(tmp_path: Path) -> None:
    llm = ScriptedLLM(PipelineModel())
    note = "Focus on the variance of the estimate"
    copilot = ScriptedCopilot(
        {
            "ideas": [CopilotReply(action="feedback", text=note)],
            "experiments": [CopilotReply(action="feedback", text="Try fifty seeds")],
        }
    )
    _, manifest = _run(tmp_path, copilot=copilot, llm=llm)
    assert [r.stage for r in copilot.seen] == [
        "ideas",
        "ideas",
        "literature_review",
        "plan",
        "experiments",
        "experiments",
        "writeup",
    ]
    prompts = [" ".join(m.content for m in r.messages) for r in llm.requests]
    first_with_note = next(i for i, text in enumerate(prompts) if note in text)
    assert first_with_note > 0  # the first ideas pass ran without it, the redo had it
    assert manifest.ideas[0].status == "done"


def test_copilot_edit_replaces_the_artifact(tmp_path: Path) -> None:
    edited = [
        {
            "Name": "human_idea",
            "Title": "A human's idea",
            "Experiment": "Run it.",
            "Interestingness": 5,
            "Feasibility": 5,
            "Novelty": 5,
        }
    ]
    copilot = ScriptedCopilot(
        {
            "ideas": [CopilotReply(action="edit", text=json.dumps(edited))],
            "experiments": [CopilotReply(action="edit", text="Notes from a human.")],
        }
    )
    run, manifest = _run(tmp_path, copilot=copilot)
    [idea] = manifest.ideas
    assert idea.name == "human_idea" and idea.status == "done"
    record = json.loads(run.idea("human_idea").experiments_json.read_text())
    assert record["notes"] == "Notes from a human."


def _start_and_kill(tmp_path: Path, *args: str) -> tuple[Path, list[dict[str, str]]]:
    """Start the fake pipeline in a child process, SIGKILL it at its pause; the run folder
    and the model calls made before the kill."""
    marker = tmp_path / "paused"
    start = [sys.executable, "-m", "tests.pipeline_support", "start", "--tmp", str(tmp_path)]
    start += ["--template", TOY, "--pause-marker", str(marker), "--pause-s", "120", *args]
    proc = subprocess.Popen(
        start, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 600  # a guard against a hang, not a performance bound
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()[0].decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    [run_dir] = (tmp_path / "runs").iterdir()
    return run_dir, _calls(tmp_path)


def _resume(tmp_path: Path, run_dir: Path) -> list[dict[str, str]]:
    """Resume the run in a child process to the end; every model call made, before and after."""
    resume = [sys.executable, "-m", "tests.pipeline_support", "resume", "--tmp", str(tmp_path)]
    resume += ["--run-dir", str(run_dir)]
    done = subprocess.run(resume, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["status"] == "done"
    manifest = RunManifest.model_validate_json((run_dir / "run.json").read_text())
    assert [o.status for o in manifest.ideas] == ["done"]
    return _calls(tmp_path)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _repeated(calls: list[dict[str, str]]) -> list[tuple[str, str]]:
    counts = collections.Counter((c["schema"], c["hash"]) for c in calls)
    return [key for key, n in counts.items() if n > 1]


def test_sigkill_during_experiments_then_resume(tmp_path: Path) -> None:
    """Cache off: the stages finished before the kill are not run again (checkpoints)."""
    run_dir, before = _start_and_kill(tmp_path)
    assert before and all(c["schema"] != "ReviewForm" for c in before)  # killed mid-way
    calls = _resume(tmp_path, run_dir)
    assert _repeated(calls) == []  # no completed call was made again
    assert calls[: len(before)] == before and len(calls) > len(before)
    # The checkpointer alone did it: no side file records which stages finished.
    assert [p for p in run_dir.rglob("*") if p.name == ".stages"] == []


@pytest.mark.parametrize(
    ("kill_at", "replayed"),
    [
        # In the write-up's citation round, after its queries call: the round runs again.
        ("CitationSelection", [("citations", "CitationQueries")]),
        # In the review, after the reviewer's form: the review graph resumes past it.
        ("MetaReviewReply", []),
    ],
)
def test_sigkill_then_resume_with_the_cache_pays_for_no_call_twice(
    tmp_path: Path, kill_at: str, replayed: list[tuple[str, str]]
) -> None:
    """Cache on, killed inside the write-up or the review graph: the resume restores their
    checkpointed states, and a call the killed step had already made is answered by the
    cache, not paid again."""
    run_dir, before = _start_and_kill(tmp_path, "--cache", "--pause-on", kill_at)
    assert before and all(c["schema"] != kill_at for c in before)
    calls = _resume(tmp_path, run_dir)
    assert _repeated(calls) == []  # no call reached the (paid) model twice
    assert calls[: len(before)] == before and len(calls) > len(before)
    rows = read_entries(run_dir / "ledger.jsonl")
    paid = [r for r in rows if not r.cache_hit]
    assert len(paid) == len(calls)  # the ledger's paid rows are exactly the model's calls
    hits = [(r.role, r.schema_name) for r in rows if r.cache_hit]
    assert set(replayed) <= set(hits), hits  # the killed step ran again; the cache answered
    # Only calls made before the kill come from the cache (which others do depends on where
    # the parallel write-up branches were when the kill came).
    answered = collections.Counter(schema or "text" for _, schema in hits)
    assert answered <= collections.Counter(c["schema"] for c in before), hits


def test_every_model_in_the_stage_graphs_states_may_be_checkpointed() -> None:
    """A state field of a type missing from CHECKPOINT_TYPES comes back from a checkpoint
    as a plain dict, and the resumed stage crashes on it."""
    from reviewer.review.nodes import ReviewState
    from scientist.pipeline.state import IdeaState, PaperState
    from scientist.runs.wiring import CHECKPOINT_TYPES
    from scientist.writeup.state import WriteupState

    states = (PaperState, IdeaState, WriteupState, ReviewState)
    found = {model for state in states for model in _models_in(state)}
    assert found and found <= set(CHECKPOINT_TYPES), found - set(CHECKPOINT_TYPES)


def _models_in(state: type) -> set[type]:
    """The pydantic models a TypedDict's fields may hold, however nested."""
    models: set[type] = set()
    todo = list(typing.get_type_hints(state).values())
    while todo:
        hint = todo.pop()
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            models.add(hint)
        todo.extend(typing.get_args(hint))
    return models


def _calls(tmp: Path) -> list[dict[str, str]]:
    path = tmp / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_resume_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    from core.runstore import RunStoreError

    with pytest.raises(RunStoreError, match="not a paper run folder"):
        resume_pipeline(str(tmp_path))


def test_fake_editor_is_used(tmp_path: Path) -> None:
    editor = FakeEditor()
    request = RunRequest(template=TOY, preset="debug", overrides=fast_overrides(tmp_path))
    run_pipeline(request, deps_factory=fake_deps_factory(PipelineModel(), editor=editor))
    assert editor.calls >= 3  # a coding round, the plot round and the notes round


def test_run_in_folder_starts_then_resumes_in_the_same_folder(tmp_path: Path) -> None:
    from core.runstore import RunPaths
    from scientist.runs.run import run_in_folder
    from scientist.runs.wiring import settings_for

    settings = settings_for("debug", fast_overrides(tmp_path))
    run = RunPaths(tmp_path / "jobs" / "7" / "run")
    events: list[str] = []
    model = PipelineModel(log=tmp_path / "calls.jsonl")
    factory = fake_deps_factory(model)
    first = run_in_folder(
        settings, TOY, run, on_event=lambda e: events.append(e.stage), deps_factory=factory
    )
    assert first.status == "done" and "review" in events
    calls = len(_calls(tmp_path))
    again = run_in_folder(settings, TOY, run, deps_factory=factory)  # a re-claimed job
    assert again.status == "done" and len(_calls(tmp_path)) == calls  # nothing redone


_PRICED_ROLES = [
    f"llm.models.{role}={PRICED_MODEL}"
    for role in ("ideas", "coder", "writer", "citations", "reviewer", "meta_reviewer")
]


def test_an_idea_cost_cap_stops_the_idea_before_its_first_paid_call(tmp_path: Path) -> None:
    llm = PricedLLM(PipelineModel())
    run, manifest = _run(tmp_path, *_PRICED_ROLES, "pipeline.idea_max_cost_usd=1e-9", llm=llm)
    [idea] = manifest.ideas
    assert idea.status == "stopped: budget"
    # The advice names the idea's cap, not the run's.
    assert "Raise pipeline.idea_max_cost_usd (AUTOSCHOLAR_PIPELINE__IDEA_MAX_COST_USD)" in (
        idea.reason or ""
    )
    # Every request sent was the run's ideas stage; the idea itself sent none.
    assert manifest.ideas_stage.calls == len(llm.requests) > 0
    assert sum(u.calls for u in idea.usage.values()) == 0
    assert manifest.status == "done" and not run.idea(idea.name).paper_pdf.exists()


def test_a_run_cost_cap_below_the_first_call_sends_nothing(tmp_path: Path) -> None:
    llm = PricedLLM(PipelineModel())
    with pytest.raises(BudgetExceededError, match=r"Raise budget\.max_cost_usd"):
        _run(tmp_path, *_PRICED_ROLES, "budget.max_cost_usd=1e-9", llm=llm)
    assert llm.requests == []
    [run_json] = (tmp_path / "runs").glob("*/run.json")
    manifest = RunManifest.model_validate_json(run_json.read_text())
    assert manifest.status == "failed" and "Cost budget reached" in (manifest.reason or "")
    assert manifest.totals.get("calls", 0) == 0
