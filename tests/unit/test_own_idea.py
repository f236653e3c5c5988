"""The researcher's own idea (``--idea``, ``--idea-json``) and topic (``--topic``): used
verbatim, novelty-checked and reported, carried by run.json to a resume, in batch and
through the service's run endpoint and form (#19, first part)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from typer.testing import CliRunner

from core.literature.models import SearchResult, SourceOutcome
from core.runstore import RunPaths
from core.settings import Settings
from gateway.errors import EXIT_USAGE
from gateway.ledger import read_entries
from gateway.scripted import ScriptedLLM
from gateway.types import LLMRequest
from scientist.cli import app as scientist_app
from scientist.cli import pipeline as pipeline_cli
from scientist.ideas.given import (
    GivenIdeaError,
    given_ideas,
    idea_name,
    parse_markdown,
    read_ideas,
)
from scientist.ideas.records import IdeasFile, load_ideas
from scientist.pipeline.deps import PipelineDeps
from scientist.pipeline.models import PipelineEvent, RunManifest
from scientist.runs.batch import BatchResult, BatchTask, run_task
from scientist.runs.run import resume_pipeline, run_pipeline
from scientist.runs.wiring import RunRequest
from service.app import create_app
from tests.pipeline_support import (
    ROOT,
    FakeLiterature,
    PipelineModel,
    fake_deps_factory,
    fast_overrides,
)
from tests.service_support import auth, service_config

TOY = str(ROOT / "tests" / "fixtures" / "template_toy")
TITLE = "Warmup length and the onset of grokking"
EXPERIMENT = (
    "Train with 0, 100 and 1000 warmup steps.\n"
    "Measure the step where validation accuracy first passes 99%."
)
IDEA_MD = f"# {TITLE}\n\n{EXPERIMENT}\n"
NAME = "warmup_length_and_the_onset_of_grokking"
TOPIC = "sparse attention on tiny transformers"
Factory = Callable[[Settings, RunPaths, RunRequest], PipelineDeps]


class SameTitleLiterature(FakeLiterature):
    """Every query finds a published paper with the idea's own title."""

    PAPER = FakeLiterature.PAPER.model_copy(update={"title": TITLE, "year": 2021})

    def search(self, query: str, limit: int) -> SearchResult:
        return SearchResult(
            query=query,
            papers=[self.PAPER],
            outcomes=[SourceOutcome(source="offline", ok=True, results=1)],
        )


def _not_novel_model() -> PipelineModel:
    """The scripted model that finds an idea done before, naming the paper it was shown."""
    model = PipelineModel()
    model.filler.overrides.update(
        decision="not_novel", closest_papers=[FakeLiterature.PAPER.paper_id]
    )
    return model


def _factory(model: Any, literature: FakeLiterature | None = None) -> Factory:
    build = fake_deps_factory(model)

    def factory(settings: Settings, run: RunPaths, request: RunRequest) -> PipelineDeps:
        deps = build(settings, run, request)
        if literature is not None:
            deps.literature = literature
        return deps

    return factory


def _cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str, factory: Factory | None = None
) -> Any:
    """``scientist run TOY ... --json`` with every side effect faked; the CliRunner result."""
    chosen = factory or _factory(PipelineModel())

    def faked(request: RunRequest) -> tuple[RunPaths, RunManifest]:
        return run_pipeline(request, deps_factory=chosen)

    monkeypatch.setattr(pipeline_cli, "run_pipeline", faked)
    sets = [arg for o in fast_overrides(tmp_path) for arg in ("--set", o)]
    return CliRunner().invoke(
        scientist_app, ["run", TOY, "--preset", "debug", *sets, *args, "--json"]
    )


def _finished(result: Any) -> tuple[RunPaths, RunManifest, IdeasFile]:
    output = json.loads(result.stdout)
    run = RunPaths(Path(output["run_dir"]))
    manifest = RunManifest.model_validate_json(run.run_json.read_text())
    return run, manifest, load_ideas(run.ideas_json)


def _schemas(run: RunPaths) -> list[str | None]:
    return [entry.schema_name for entry in read_entries(run.ledger)]


def _idea_file(tmp_path: Path, text: str, name: str = "idea.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- parsing


def test_a_markdown_idea_is_a_title_line_then_its_text() -> None:
    idea = parse_markdown(IDEA_MD)
    assert (idea.Name, idea.Title, idea.Experiment) == (NAME, TITLE, EXPERIMENT)
    assert idea.Interestingness is idea.Feasibility is idea.Novelty is None
    long = idea_name("Sparse " * 20)
    assert len(long) <= 60 and long.startswith("sparse_sparse") and not long.endswith("_")
    with pytest.raises(GivenIdeaError, match="first line must be the title"):
        parse_markdown("Just some text\nwithout a heading")
    with pytest.raises(GivenIdeaError, match="no text"):
        parse_markdown("# A title alone\n\n")


@pytest.mark.parametrize(
    "path", sorted((ROOT / "samples" / "ideas").glob("*.md")), ids=lambda p: p.name
)
def test_the_sample_ideas_parse(path: Path) -> None:
    [idea] = read_ideas(path, "markdown")
    assert idea.Name == idea_name(idea.Title) and len(idea.Experiment) > 100


# ----------------------------------------------------------------------------- run


def test_a_markdown_idea_runs_verbatim_and_is_novelty_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _cli(monkeypatch, tmp_path, "--idea", str(_idea_file(tmp_path, IDEA_MD)))
    assert result.exit_code == 0, result.output
    run, manifest, ideas = _finished(result)
    [record] = ideas.ideas
    assert record.origin == "given" and record.reflections_used == 0
    assert (record.idea.Name, record.idea.Title, record.idea.Experiment) == (
        NAME,
        TITLE,
        EXPERIMENT,
    )
    assert record.idea.Interestingness is None and record.overall is None  # not scored
    assert record.novelty is not None and record.novelty.status == "novel"
    assert record.novelty.queries[0].query == TITLE  # the existing check, on the given title
    [outcome] = manifest.ideas
    assert (outcome.name, outcome.title, outcome.status) == (NAME, TITLE, "done")
    schemas = _schemas(run)
    assert "NoveltyReply" in schemas
    assert "IdeaReply" not in schemas and "IdeaReflection" not in schemas  # nothing generated


def test_an_ideas_json_idea_runs_verbatim_without_its_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = {"Name": "my_idea", "Title": TITLE, "Experiment": EXPERIMENT, "Novelty": 9}
    path = _idea_file(tmp_path, json.dumps(given), "idea.json")
    result = _cli(monkeypatch, tmp_path, "--idea-json", str(path))
    assert result.exit_code == 0, result.output
    assert "scores of my_idea are dropped" in result.stderr
    run, manifest, ideas = _finished(result)
    [record] = ideas.ideas
    assert record.idea.model_dump(exclude_none=True) == {
        "Name": "my_idea",
        "Title": TITLE,
        "Experiment": EXPERIMENT,
    }
    assert [o.name for o in manifest.ideas] == ["my_idea"]
    assert "IdeaReply" not in _schemas(run)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"Name": "x", "Title": "A title"}, "Experiment: Field required"),
        ({"Name": "x", "Title": "t", "Experiment": "e", "Budget": 3}, "Budget: Extra inputs"),
        ([{"Name": "a", "Title": "t", "Experiment": "e"}, {"Name": "b"}], "idea 2: Title"),
        ({"Name": "n" * 61, "Title": "t", "Experiment": "e"}, "Name: String should have at"),
    ],
)
def test_a_malformed_idea_json_exits_2_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: Any, named: str
) -> None:
    path = _idea_file(tmp_path, json.dumps(content), "idea.json")
    result = _cli(monkeypatch, tmp_path, "--idea-json", str(path))
    assert result.exit_code == EXIT_USAGE, result.output
    error = json.loads(result.stdout)
    assert error["error_type"] == "GivenIdeaError" and named in error["error"]
    assert not (tmp_path / "runs").exists()  # refused before any run folder


def test_topic_and_an_idea_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _idea_file(tmp_path, IDEA_MD)
    result = _cli(monkeypatch, tmp_path, "--idea", str(path), "--topic", TOPIC)
    assert result.exit_code == EXIT_USAGE and "--topic" in json.loads(result.stdout)["error"]


def test_a_not_novel_verdict_is_reported_and_the_idea_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = _factory(_not_novel_model(), SameTitleLiterature())
    path = _idea_file(tmp_path, IDEA_MD)
    result = _cli(monkeypatch, tmp_path, "--idea", str(path), factory=factory)
    assert result.exit_code == 0, result.output
    _, manifest, ideas = _finished(result)
    [record] = ideas.ideas
    assert record.novelty is not None and record.novelty.status == "not_novel"
    assert [p.title for p in record.novelty.closest] == [TITLE]  # the paper that did it
    [note] = manifest.notes
    assert f"your idea {NAME} not_novel" in note and TITLE in note and "runs anyway" in note
    assert manifest.status == "done" and [o.status for o in manifest.ideas] == ["done"]
    assert "runs anyway, as given" in result.stderr  # the progress line says it too


def test_the_not_novel_note_is_in_the_progress_events(tmp_path: Path) -> None:
    events: list[PipelineEvent] = []
    request = RunRequest(
        template=TOY,
        preset="debug",
        overrides=[*fast_overrides(tmp_path), _given_override()],
        on_event=events.append,
    )
    run_pipeline(request, deps_factory=_factory(_not_novel_model(), SameTitleLiterature()))
    [done] = [e for e in events if e.stage == "ideas" and e.status == "done"]
    assert done.detail.startswith("1 chosen; your idea") and TITLE in done.detail


def test_stop_if_not_novel_stops_the_idea(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    factory = _factory(_not_novel_model(), SameTitleLiterature())
    path = _idea_file(tmp_path, IDEA_MD)
    result = _cli(
        monkeypatch, tmp_path, "--idea", str(path), "--stop-if-not-novel", factory=factory
    )
    assert result.exit_code == 1, result.output
    run, manifest, ideas = _finished(result)
    assert manifest.status == "no_ideas" and manifest.ideas == []
    assert "--stop-if-not-novel" in (manifest.reason or "") and TITLE in (manifest.reason or "")
    assert ideas.ideas[0].novelty is not None and ideas.ideas[0].novelty.status == "not_novel"
    assert not run.idea(NAME).experiments_json.exists()


def test_refine_idea_runs_the_reflection_step_on_the_given_idea(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _idea_file(tmp_path, IDEA_MD)
    result = _cli(monkeypatch, tmp_path, "--idea", str(path), "--refine-idea")
    assert result.exit_code == 0, result.output
    run, _, ideas = _finished(result)
    [record] = ideas.ideas
    assert record.origin == "given" and record.reflections_used == 1
    assert record.drafts[0].Title == TITLE and record.drafts[0].Experiment == EXPERIMENT
    assert record.idea.Interestingness is not None  # the model scored its refinement
    schemas = _schemas(run)
    assert "IdeaReflection" in schemas and "IdeaReply" not in schemas


# ----------------------------------------------------------------------------- topic


def test_topic_reaches_the_generation_prompt_and_ideas_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = ScriptedLLM(PipelineModel())
    result = _cli(monkeypatch, tmp_path, "--topic", TOPIC, factory=_factory(llm))
    assert result.exit_code == 0, result.output
    _, _, ideas = _finished(result)
    assert ideas.topic == TOPIC and ideas.ideas[0].origin == "generated"
    asks = [r for r in llm.requests if _schema_title(r) == "IdeaReply"]
    assert asks and all(
        f"The researcher's direction (propose an idea on this topic):\n{TOPIC}"
        in r.messages[-1].content
        for r in asks
    )


def test_without_a_topic_the_prompt_has_no_direction(tmp_path: Path) -> None:
    llm = ScriptedLLM(PipelineModel())
    request = RunRequest(template=TOY, preset="debug", overrides=fast_overrides(tmp_path))
    run, _ = run_pipeline(request, deps_factory=_factory(llm))
    asks = [r for r in llm.requests if _schema_title(r) == "IdeaReply"]
    assert asks and all("researcher's direction" not in r.messages[-1].content for r in asks)
    assert load_ideas(run.ideas_json).topic is None


def _schema_title(request: LLMRequest) -> str:
    fmt = request.response_format or {}
    schema = fmt.get("schema") or fmt.get("json_schema", {}).get("schema") or {}
    return str(schema.get("title", ""))


# ----------------------------------------------------------------------------- resume, batch


def _given_override() -> str:
    given = [{"Name": NAME, "Title": TITLE, "Experiment": EXPERIMENT}]
    return f"ideas.given={json.dumps(given)}"


def test_resume_of_a_run_with_a_given_idea_keeps_it(tmp_path: Path) -> None:
    """Stopped inside the ideas stage, so the resume runs that stage again from run.json's
    settings: it must take the researcher's idea again, not generate one."""

    def interrupted(request: LLMRequest) -> str:
        if _schema_title(request) == "NoveltyReply":
            raise KeyboardInterrupt  # Ctrl-C during the novelty check
        return PipelineModel()(request)

    request = RunRequest(
        template=TOY, preset="debug", overrides=[*fast_overrides(tmp_path), _given_override()]
    )
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(request, deps_factory=_factory(interrupted))
    [run_dir] = (tmp_path / "runs").iterdir()
    stopped = RunManifest.model_validate_json((run_dir / "run.json").read_text())
    assert stopped.status == "interrupted" and _given_override() in stopped.overrides
    run, manifest = resume_pipeline(str(run_dir), deps_factory=_factory(PipelineModel()))
    assert [(o.name, o.title, o.status) for o in manifest.ideas] == [(NAME, TITLE, "done")]
    [record] = load_ideas(run.ideas_json).ideas
    assert record.origin == "given" and record.idea.Experiment == EXPERIMENT
    assert "IdeaReply" not in _schemas(run)


def test_the_idea_graphs_state_may_be_checkpointed() -> None:
    """The idea graph checkpoints inside the ideas node: a type of its state missing from
    CHECKPOINT_TYPES comes back as a dict and the resumed stage crashes on it."""
    from scientist.ideas.nodes import IdeasState, NoveltyTask
    from scientist.ideas.template import Template
    from scientist.runs.wiring import CHECKPOINT_TYPES

    found: set[type] = set()
    todo: list[Any] = [
        hint for state in (IdeasState, NoveltyTask) for hint in get_type_hints(state).values()
    ]
    while todo:
        hint = todo.pop()
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            found.add(hint)  # nested models travel inside it as its model_dump()
        todo.extend(get_args(hint))
    assert Template in found and found <= set(CHECKPOINT_TYPES), found - set(CHECKPOINT_TYPES)


def test_batch_gives_the_idea_to_every_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = _factory(PipelineModel())
    seen: list[BatchTask] = []

    def inline(tasks: list[BatchTask], executor: Any, on_result: Any = None) -> list[BatchResult]:
        seen.extend(tasks)
        return [run_task(task, deps_factory=factory) for task in tasks]

    monkeypatch.setattr(pipeline_cli, "run_batch", inline)
    path = _idea_file(tmp_path, IDEA_MD)
    sets = [arg for o in fast_overrides(tmp_path) for arg in ("--set", o)]
    result = CliRunner().invoke(
        scientist_app,
        ["batch", "--templates", f"{TOY},{TOY}", "--preset", "debug", *sets, "--idea", str(path)],
    )
    assert result.exit_code == 0, result.output
    assert len(seen) == 2 and all(_given_override() in t.overrides for t in seen)
    for run_dir in (tmp_path / "runs").iterdir():
        manifest = RunManifest.model_validate_json((run_dir / "run.json").read_text())
        assert [(o.name, o.status) for o in manifest.ideas] == [(NAME, "done")]


# ----------------------------------------------------------------------------- service


def _job_settings(app: Any, job_id: str) -> Settings:
    state = app.state.service
    job = state.store.get(job_id, owner="alice")
    assert job is not None
    return state.config.for_job(job.params.get("preset"), job.params["overrides"])


def test_the_run_endpoint_takes_an_idea_as_markdown_or_json_and_a_topic(tmp_path: Path) -> None:
    app = create_app(service_config(tmp_path))
    with TestClient(app, headers=auth("alice")) as client:
        markdown = client.post("/v1/runs", json={"template": "digits", "idea": IDEA_MD})
        assert markdown.status_code == 202, markdown.text
        [idea] = given_ideas(_job_settings(app, markdown.json()["id"]))
        assert (idea.Name, idea.Title, idea.Experiment) == (NAME, TITLE, EXPERIMENT)

        objects = [
            {"Name": "first", "Title": "First", "Experiment": "Run A.", "Feasibility": 3},
            {"Name": "second", "Title": "Second", "Experiment": "Run B."},
        ]
        listed = client.post("/v1/runs", json={"template": "digits", "idea": objects})
        assert listed.status_code == 202, listed.text
        settings = _job_settings(app, listed.json()["id"])
        assert [i.Name for i in given_ideas(settings)] == ["first", "second"]
        assert given_ideas(settings)[0].Feasibility is None  # not the researcher's to give
        assert settings.pipeline.ideas_to_run == 2  # each idea of theirs runs

        topic = client.post("/v1/runs", json={"template": "digits", "topic": TOPIC})
        assert topic.status_code == 202, topic.text
        assert _job_settings(app, topic.json()["id"]).ideas.topic == TOPIC


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"idea": {"Name": "x", "Title": "t"}}, "Experiment: Field required"),
        ({"idea": "no heading here"}, "'# Title'"),
        ({"idea": IDEA_MD, "topic": TOPIC}, "not both"),
    ],
)
def test_the_run_endpoint_refuses_a_bad_idea_naming_the_problem(
    tmp_path: Path, body: dict[str, Any], named: str
) -> None:
    app = create_app(service_config(tmp_path))
    with TestClient(app, headers=auth("alice")) as client:
        refused = client.post("/v1/runs", json={"template": "digits", **body})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "invalid_idea" and named in refused.json()["detail"]
        assert app.state.service.store.jobs_of("alice") == []


def test_the_run_form_has_an_idea_and_a_topic_and_queues_them(tmp_path: Path) -> None:
    app = create_app(service_config(tmp_path))
    with TestClient(app, headers=auth("alice")) as client:
        page = client.get("/jobs")
        assert page.status_code == 200
        assert 'name="idea"' in page.text and 'name="topic"' in page.text
        form = {"template": "digits", "preset": "", "idea": IDEA_MD, "topic": ""}
        started = client.post("/jobs/run", data=form, follow_redirects=False)
        assert started.status_code == 303, started.text
        job_id = started.headers["location"].rsplit("/", 1)[-1]
        [idea] = given_ideas(_job_settings(app, job_id))
        assert idea.Title == TITLE and idea.Experiment == EXPERIMENT
