"""The literature-review and experiment-plan stages with the scripted model and a fake
cascade: the review keeps only papers the cascade returned (deduplicated, ranked, keyed so
that every key resolves in the paper's references.bib); the plan's runs are the runs the
coding rounds make; co-pilot edits and feedback at both stages change what the next stage
sees and are recorded; a SIGKILL inside the review resumes without repeating a call."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from core.literature.bibtex import parse_bib
from core.literature.models import Paper, SearchResult, SourceOutcome
from core.runstore import RunPaths
from core.settings import Settings, load_settings
from gateway import Gateway
from gateway.ledger import Ledger
from gateway.scripted import ScriptedLLM
from gateway.types import LLMRequest
from graphs.survey import run_survey
from scientist.experiments.rounds import ExperimentState
from scientist.ideas.models import Idea
from scientist.ideas.template import load_template
from scientist.pipeline.models import CopilotReply, CopilotRequest, RunManifest
from scientist.plan.models import ExperimentPlan
from scientist.plan.planning import PlanEditError, parse_edited_plan
from scientist.runs.report_page import build_report
from scientist.runs.run import run_pipeline
from scientist.runs.wiring import CHECKPOINT_TYPES, RunRequest
from scientist.survey.deps import SurveyDeps
from scientist.survey.edit import ReviewEditError, apply_edit, review_json
from scientist.survey.models import (
    OTHER_THEME,
    LiteratureReview,
    ReviewedPaper,
    synthesis_schema,
)
from scientist.survey.nodes import PaperTask, SurveyState
from tests.pipeline_support import ROOT, PipelineModel, fake_deps_factory, fast_overrides

TOY = ROOT / "tests" / "fixtures" / "template_toy"
QUERIES = ["seeded means", "monte carlo variance"]


def _paper(key: str, title: str, *, source: str = "offline", bib: bool = True, **extra: Any):
    bibtex = (
        f"@article{{{key},\n  title={{{title}}},\n  author={{Lovelace, Ada}},\n"
        f"  journal={{Journal}},\n  year={{2020}}\n}}"
    )
    return Paper(
        paper_id=f"{source}:{key}",
        title=title,
        authors=["Ada Lovelace"],
        year=2020,
        abstract=f"We study {title.lower()}.",
        bibtex=bibtex if bib else "",
        citation_key=key,
        source=source,  # type: ignore[arg-type]
        **extra,
    )


MEANS = _paper("mean2020a", "Seeded Random Means")
MEANS_AGAIN = _paper("mean2020b", "Seeded random means!", source="semantic_scholar")
VARIANCE = _paper("var2019", "Variance of Monte Carlo Estimates", ids={"doi": "10.1/abc"})
VARIANCE_AGAIN = _paper("var2019b", "Monte Carlo variance (preprint)", ids={"doi": "10.1/ABC"})
BOOK = _paper("goodfellow2016deep", "Deep Learning")  # the toy template's own key
NO_BIB = _paper("nobib2021", "A Paper Without BibTeX", bib=False)
FAR = _paper("far2021", "Far Paper on Seeds")
SHELF = [MEANS, VARIANCE, BOOK, FAR]


class ShelfLiterature:
    """A fake cascade: fixed answers per query, else the whole shelf; every query recorded."""

    def __init__(self, answers: dict[str, list[Paper]] | None = None) -> None:
        self.answers = answers or {}
        self.queries: list[str] = []

    def search(self, query: str, limit: int) -> SearchResult:
        """The query's answer, or the shelf."""
        self.queries.append(query)
        papers = self.answers.get(query, SHELF)[:limit]
        outcome = SourceOutcome(source="offline", ok=True, results=len(papers))
        return SearchResult(query=query, papers=papers, outcomes=[outcome])

    def paper(self, paper_id: str) -> Paper | None:
        """A known paper by id."""
        known = [*SHELF, *(p for ps in self.answers.values() for p in ps)]
        return next((p for p in known if p.paper_id == paper_id), None)


ANSWERS = {
    QUERIES[0]: [MEANS, VARIANCE, BOOK, FAR],
    QUERIES[1]: [MEANS_AGAIN, NO_BIB, VARIANCE_AGAIN],
}


def _schema_title(request: LLMRequest) -> str:
    fmt = request.response_format or {}
    schema = fmt.get("schema") or fmt.get("json_schema", {}).get("schema") or {}
    return str(schema.get("title", "text"))


class StageModel:
    """The pipeline's schema-filling model, with fixed replies for some schemas (by title)."""

    def __init__(self, replies: dict[str, Any] | None = None, log: Path | None = None) -> None:
        self.base = PipelineModel(log)
        self.replies = replies or {}

    def __call__(self, request: LLMRequest) -> str:
        reply = self.replies.get(_schema_title(request))
        if reply is None:
            return self.base(request)
        return json.dumps(reply(request) if callable(reply) else reply)


def _prompts(llm: ScriptedLLM, title: str) -> list[str]:
    """The text of every request of one schema, in order."""
    return [
        "\n".join(m.content for m in r.messages) for r in llm.requests if _schema_title(r) == title
    ]


PLAN = {
    "hypotheses": ["More seeds shrink the standard error."],
    "runs": [
        {"name": "more_seeds", "change": "Use 50 seeds", "parameters": ["seeds = 50"]},
        {"name": "fewer_draws", "change": "Draw 10 samples per seed", "parameters": []},
    ],
    "baselines": ["run_0"],
    "metrics": ["mean"],
    "support": "The stderr falls as seeds grow.",
}
SYNTHESIS = {"themes": [{"name": "Estimating means", "papers": ["var2019", "mean2020a"]}]}


def _synthesis(request: LLMRequest) -> dict[str, Any]:
    return {**SYNTHESIS, "gaps": ["No work varies the seed count."]}


def _model(**extra: Any) -> ScriptedLLM:
    replies = {
        "SurveyQueries": {"queries": QUERIES},
        "SurveySynthesis": _synthesis,
        "PlanReply": PLAN,
        **extra,
    }
    return ScriptedLLM(StageModel(replies))


# ----------------------------------------------------------------------------- the review alone


def _settings(tmp_path: Path, **survey: Any) -> Settings:
    return load_settings(
        "debug",
        {
            "data_dir": str(tmp_path / "data"),
            "llm": {"cache_enabled": False},
            "survey": {"queries": 2, "papers_kept": 3, **survey},
        },
    )


def _review(tmp_path: Path, llm: ScriptedLLM, literature: ShelfLiterature, **survey: Any):
    settings = _settings(tmp_path, **survey)
    gateway = Gateway(settings, backend=llm, ledger=Ledger(tmp_path / "ledger.jsonl"))
    deps = SurveyDeps(gateway=gateway, settings=settings, literature=literature)
    idea = Idea(Name="seeds", Title="How many seeds?", Experiment="Vary the seed count.")
    folder = tmp_path / "idea"
    return run_survey(idea, folder, load_template(TOY), deps), folder


def test_review_keeps_only_returned_papers_deduplicated_ranked_and_keyed(tmp_path: Path) -> None:
    literature = ShelfLiterature(ANSWERS)
    llm = _model()
    review, folder = _review(tmp_path, llm, literature)
    assert literature.queries == QUERIES  # the model's queries, each searched once
    returned = {p.paper_id for papers in ANSWERS.values() for p in papers}
    assert {p.paper_id for p in review.papers} <= returned
    # Two records of the means paper (same title) and two of the variance paper (same DOI)
    # are one paper each; the one both queries found ranks first; the paper without BibTeX
    # is passed over; three are kept.
    assert review.found == 5
    assert [p.paper_id for p in review.papers] == [
        "offline:mean2020a",
        "offline:var2019",
        "offline:goodfellow2016deep",
    ]
    ranked = sorted(review.papers, key=lambda p: -p.score)
    assert ranked[0].paper_id == MEANS.paper_id and set(ranked[0].queries) == set(QUERIES)
    # The template's bibliography has goodfellow2016deep (another entry): the review's
    # copy gets a free key, so that every key names exactly its own entry.
    assert [p.key for p in review.papers] == ["mean2020a", "var2019", "goodfellow2016deepa"]
    assert all(parse_bib(p.bibtex)[0].key == p.key for p in review.papers)
    # Grouped by the model's themes (by key), the unplaced paper under the catch-all.
    assert [p.theme for p in review.papers] == ["Estimating means"] * 2 + [OTHER_THEME]
    assert review.gaps == ["No work varies the seed count."]
    assert all(p.summary and p.relation for p in review.papers)
    assert len(_prompts(llm, "PaperSummary")) == 3  # one per kept paper
    assert "passed over" in " ".join(review.warnings)
    on_disk = LiteratureReview.model_validate_json((folder / "literature_review.json").read_text())
    assert on_disk == review
    markdown = (folder / "literature_review.md").read_text()
    assert "## Estimating means" in markdown and "`[goodfellow2016deepa]`" in markdown
    assert "No work varies the seed count." in markdown


def test_the_synthesis_may_only_name_kept_papers(tmp_path: Path) -> None:
    llm = _model()
    review, _ = _review(tmp_path, llm, ShelfLiterature(ANSWERS))
    [request] = [r for r in llm.requests if _schema_title(r) == "SurveySynthesis"]
    text = json.dumps(request.response_format)
    schema = synthesis_schema([p.key for p in review.papers], load_settings("debug").profile("x"))
    reply = {"themes": [{"name": "made up", "papers": ["invented2024"]}], "gaps": []}
    with pytest.raises(ValidationError):
        schema.model_validate(reply)
    assert all(p.key in text for p in review.papers) and "far2021" not in text


def test_an_edit_may_only_add_papers_the_cascade_returns(tmp_path: Path) -> None:
    review, _ = _review(tmp_path, _model(), ShelfLiterature(ANSWERS))
    data = json.loads(review_json(review))
    data["papers"] = [p for p in data["papers"] if p["key"] != "var2019"]
    data["papers"].append({"title": "An Imaginary Paper Nobody Wrote", "summary": "x"})
    with pytest.raises(ReviewEditError, match="Imaginary Paper Nobody Wrote"):
        apply_edit(review, json.dumps(data), ShelfLiterature(), TOY, 10)
    data["papers"][-1] = {"title": "far paper on seeds", "summary": "Mine."}
    edited = apply_edit(review, json.dumps(data), ShelfLiterature(), TOY, 10)
    assert [p.key for p in edited.papers] == ["mean2020a", "goodfellow2016deepa", "far2021"]
    added = edited.papers[-1]
    assert added.paper_id == FAR.paper_id and added.title == FAR.title  # the cascade's record
    assert added.summary == "Mine." and parse_bib(added.bibtex)[0].key == "far2021"
    with pytest.raises(ReviewEditError, match="not valid"):
        apply_edit(review, "{not json", ShelfLiterature(), TOY, 10)


def test_an_edited_plan_needs_runs(tmp_path: Path) -> None:
    plan = ExperimentPlan(idea="i", title="t", runs=[])
    with pytest.raises(PlanEditError, match="no run"):
        parse_edited_plan(plan.model_dump_json(), plan)
    with pytest.raises(PlanEditError, match="not a valid plan"):
        parse_edited_plan('{"runs": "many"}', plan)


# ----------------------------------------------------------------------------- in the pipeline


class ScriptedCopilot:
    """Answers each stage's pause from a script (approve when it runs out); records requests."""

    def __init__(self, answers: dict[str, list[Callable[[CopilotRequest], CopilotReply]]]):
        self.answers = answers
        self.seen: list[CopilotRequest] = []

    def __call__(self, request: CopilotRequest) -> CopilotReply:
        self.seen.append(request)
        queue = self.answers.get(request.stage, [])
        return queue.pop(0)(request) if queue else CopilotReply(action="approve")


def _run(
    tmp_path: Path, llm: ScriptedLLM, *extra: str, copilot: Any = None
) -> tuple[RunPaths, RunManifest]:
    overrides = [
        *fast_overrides(tmp_path),
        "experiments.max_rounds=2",
        "survey.queries=2",
        "survey.papers_kept=3",
        *extra,
    ]
    request = RunRequest(template=str(TOY), preset="debug", overrides=overrides)
    factory = fake_deps_factory(llm, copilot=copilot, literature=ShelfLiterature(ANSWERS))
    return run_pipeline(request, deps_factory=factory)


def _idea_dir(run: RunPaths, manifest: RunManifest) -> Path:
    [outcome] = manifest.ideas
    assert outcome.status == "done", outcome.reason
    return run.idea(outcome.name).root


def _bib_keys(folder: Path) -> dict[str, str]:
    text = (folder / "paper" / "references.bib").read_text()
    return {entry.key: entry.field("title") for entry in parse_bib(text)}


def _rounds(folder: Path) -> list[dict[str, Any]]:
    record = json.loads((folder / "experiments.json").read_text())
    return [r for r in record["rounds"] if r["kind"] == "experiment"]


def test_every_review_key_resolves_and_the_rounds_follow_the_plan(tmp_path: Path) -> None:
    llm = _model()
    run, manifest = _run(tmp_path, llm)
    folder = _idea_dir(run, manifest)
    review = LiteratureReview.model_validate_json((folder / "literature_review.json").read_text())
    assert review.papers
    bib = _bib_keys(folder)
    for paper in review.papers:
        assert bib.get(paper.key) == paper.title, (paper.key, sorted(bib))
    writeup = json.loads((folder / "paper" / "writeup.json").read_text())
    cited = {c["key"]: c["query"] for c in writeup["citations"]}
    assert all(cited[p.key] == "literature review" for p in review.papers)
    # Round i made planned run i, with the plan and its run in the coder's prompt.
    plan = ExperimentPlan.model_validate_json((folder / "plan.json").read_text())
    rounds = _rounds(folder)
    assert [r["planned_run"] for r in rounds] == [run.name for run in plan.runs]
    assert [r["run_name"] for r in rounds] == ["run_1", "run_2"]
    assert (
        "This round makes the plan's run_1 more_seeds: Use 50 seeds (seeds=50)"
        in (rounds[0]["prompt"])
    )
    assert "run_2 fewer_draws: Draw 10 samples per seed" in rounds[1]["prompt"]
    # The writer is given the plan; the planner was given the review.
    assert any("- run_1 more_seeds: Use 50 seeds" in p for p in _prompts(llm, "text"))
    [planner] = _prompts(llm, "PlanReply")
    assert all(f"[{p.key}]" in planner for p in review.papers)
    idea = manifest.ideas[0]
    assert {"literature_review", "plan"} <= set(idea.usage) and idea.usage["plan"].calls == 1
    files = [f.label for f in build_report(run).ideas[0].files]
    assert {"literature_review.md", "plan.md"} <= set(files)


def _edit_review(request: CopilotRequest) -> CopilotReply:
    data = json.loads(request.editable)
    data["papers"] = [p for p in data["papers"] if p["key"] != "var2019"]
    data["papers"].append({"title": "An Imaginary Paper Nobody Wrote"})
    return CopilotReply(action="edit", text=json.dumps(data))


def _fix_review(request: CopilotRequest) -> CopilotReply:
    data = json.loads(request.editable)
    data["papers"] = [p for p in data["papers"] if p["key"] != "var2019"]
    data["papers"].append({"title": "Far Paper on Seeds", "relation": "Added by hand."})
    return CopilotReply(action="edit", text=json.dumps(data))


def _edit_plan(request: CopilotRequest) -> CopilotReply:
    data = json.loads(request.editable)
    data["runs"][0] = {"name": "human_run", "change": "Double the draws", "parameters": {"n": "2"}}
    return CopilotReply(action="edit", text=json.dumps(data))


def test_copilot_edits_change_what_the_next_stage_sees(tmp_path: Path) -> None:
    copilot = ScriptedCopilot(
        {"literature_review": [_edit_review, _fix_review], "plan": [_edit_plan]}
    )
    llm = _model()
    run, manifest = _run(tmp_path, llm, copilot=copilot)
    folder = _idea_dir(run, manifest)
    stages = [r.stage for r in copilot.seen]
    review_twice = ["literature_review", "literature_review"]
    assert stages == ["ideas", *review_twice, "plan", "experiments", "writeup"]
    refused = copilot.seen[2].summary
    assert "NOT APPLIED" in refused and "Imaginary Paper Nobody Wrote" in refused
    review = LiteratureReview.model_validate_json((folder / "literature_review.json").read_text())
    assert review.edited and [p.key for p in review.papers] == [
        "mean2020a",
        "goodfellow2016deepa",
        "far2021",
    ]
    # The planner saw the edited review: the removed paper gone, the added one there.
    [planner] = _prompts(llm, "PlanReply")
    assert "[var2019]" not in planner and "[far2021] Far Paper on Seeds" in planner
    assert "Added by hand." in planner
    # The coding rounds followed the edited plan; the edit replaced plan.json.
    plan = ExperimentPlan.model_validate_json((folder / "plan.json").read_text())
    assert plan.edited and plan.runs[0].name == "human_run"
    rounds = _rounds(folder)
    assert [r["planned_run"] for r in rounds] == ["human_run", "fewer_draws"]
    assert "run_1 human_run: Double the draws (n=2)" in rounds[0]["prompt"]
    assert "more_seeds" not in rounds[0]["prompt"]
    bib = _bib_keys(folder)
    assert all(p.key in bib for p in review.papers)


def _feedback(text: str) -> Callable[[CopilotRequest], CopilotReply]:
    return lambda request: CopilotReply(action="feedback", text=text)


def test_feedback_redoes_the_stage_and_is_recorded_in_run_json(tmp_path: Path) -> None:
    notes = {
        "ideas": "Keep it about seeds",
        "literature_review": "Include older work on the bootstrap",
        "plan": "Add a run with five seeds",
        "experiments": "Log the variance too",
    }
    copilot = ScriptedCopilot({stage: [_feedback(text)] for stage, text in notes.items()})
    llm = _model()
    run, manifest = _run(tmp_path, llm, copilot=copilot)
    folder = _idea_dir(run, manifest)
    queries = _prompts(llm, "SurveyQueries")
    assert len(queries) == 2
    assert notes["literature_review"] not in queries[0]
    assert notes["literature_review"] in queries[1]
    planner = _prompts(llm, "PlanReply")
    assert len(planner) == 2 and notes["plan"] in planner[1] and notes["plan"] not in planner[0]
    review = json.loads((folder / "literature_review.json").read_text())
    plan = json.loads((folder / "plan.json").read_text())
    assert review["feedback"] == notes["literature_review"] and plan["feedback"] == notes["plan"]
    on_disk = RunManifest.model_validate_json(run.run_json.read_text())
    assert on_disk.feedback == {"ideas": [notes["ideas"]]}
    idea_notes = {k: v for k, v in notes.items() if k != "ideas"}
    assert on_disk.ideas[0].feedback == {k: [v] for k, v in idea_notes.items()}


def test_the_stages_can_be_turned_off(tmp_path: Path) -> None:
    llm = _model()
    run, manifest = _run(tmp_path / "off", llm, "survey.enabled=false", "plan.enabled=false")
    folder = _idea_dir(run, manifest)
    assert not (folder / "literature_review.json").exists() and not (folder / "plan.json").exists()
    assert _prompts(llm, "SurveyQueries") == [] and _prompts(llm, "PlanReply") == []
    assert [r["planned_run"] for r in _rounds(folder)] == [None, None]
    assert not {"literature_review", "plan"} & set(manifest.ideas[0].usage)
    llm = _model()
    run, manifest = _run(tmp_path / "plan_only", llm, "survey.enabled=false")
    folder = _idea_dir(run, manifest)
    [planner] = _prompts(llm, "PlanReply")
    assert "(no literature review)" in planner
    assert [r["planned_run"] for r in _rounds(folder)] == ["more_seeds", "fewer_draws"]


# ----------------------------------------------------------------------------- kill and resume


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _calls(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


@pytest.mark.parametrize("kill_at", ["PaperSummary", "SurveySynthesis"])
def test_sigkill_in_the_review_then_resume_repeats_no_call(tmp_path: Path, kill_at: str) -> None:
    """Cache off: the review's finished steps are checkpointed, so no call is made twice."""
    marker = tmp_path / "paused"
    start = [sys.executable, "-m", "tests.pipeline_support", "start", "--tmp", str(tmp_path)]
    start += ["--template", str(TOY), "--pause-marker", str(marker), "--pause-s", "120"]
    start += ["--pause-on", kill_at]
    proc = subprocess.Popen(
        start, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 600  # a guard against a hang, not a performance bound
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()[0].decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _calls(tmp_path)
    assert "SurveyQueries" in [c["schema"] for c in before]
    assert kill_at not in [c["schema"] for c in before]
    [run_dir] = (tmp_path / "runs").iterdir()
    resume = [sys.executable, "-m", "tests.pipeline_support", "resume", "--tmp", str(tmp_path)]
    resume += ["--run-dir", str(run_dir)]
    done = subprocess.run(resume, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    calls = _calls(tmp_path)
    counts = collections.Counter((c["schema"], c["hash"]) for c in calls)
    assert [key for key, n in counts.items() if n > 1] == []
    assert calls[: len(before)] == before
    after = [c["schema"] for c in calls[len(before) :]]
    assert after[0] == kill_at and "SurveyQueries" not in after
    manifest = RunManifest.model_validate_json((run_dir / "run.json").read_text())
    assert [o.status for o in manifest.ideas] == ["done"]
    assert (run_dir / manifest.ideas[0].folder / "literature_review.json").is_file()


# ----------------------------------------------------------------------------- checkpoints


def _models_in(state: type) -> set[type]:
    models: set[type] = set()
    todo = list(typing.get_type_hints(state).values())
    while todo:
        hint = todo.pop()
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            models.add(hint)
        todo += list(typing.get_args(hint))
    return models


def test_the_new_states_may_be_checkpointed() -> None:
    found = {m for s in (SurveyState, PaperTask, ExperimentState) for m in _models_in(s)}
    assert {LiteratureReview, ReviewedPaper, ExperimentPlan} <= found
    assert found <= set(CHECKPOINT_TYPES), found - set(CHECKPOINT_TYPES)
