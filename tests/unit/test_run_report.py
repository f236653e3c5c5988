"""``scientist report RUN_DIR`` (#21): report.html from a run folder's files, its ``--json``
summary, its typed errors, and the same tables on the service's run page."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core.runstore import RunPaths
from gateway.errors import EXIT_USAGE
from gateway.ledger import read_entries, sum_entries
from scientist.cli import report as report_cli
from scientist.experiments.models import ExperimentRecord, FigureNote, RunOutcome
from scientist.ideas.models import Idea
from scientist.ideas.records import IdeaRecord, IdeasFile, NoveltyVerdict
from scientist.pipeline.models import IdeaOutcome, RunManifest, StageUsage
from scientist.runs.report_page import REPORT_FILE, ReportSummary, build_report
from scientist.runs.run import run_pipeline
from scientist.runs.wiring import RunRequest
from service.app import create_app
from tests.pipeline_support import PNG, ROOT, PipelineModel, fake_deps_factory, fast_overrides
from tests.priced_llm import PRICED_MODEL, PricedLLM
from tests.service_support import auth, service_config

TOY = str(ROOT / "tests" / "fixtures" / "template_toy")
PRICED_ROLES = [
    f"llm.models.{role}={PRICED_MODEL}"
    for role in ("ideas", "coder", "writer", "citations", "reviewer", "meta_reviewer")
]


# ----------------------------------------------------------------------------- helpers


class Page(HTMLParser):
    """The rows of each table (by its id), keyed by a row's data-* attribute, each row's
    text by cell class (and by the class of a span or strong inside a cell), and every link
    and image of the page."""

    KEYS = ("data-idea", "data-stage", "data-role")

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, dict[str, str]]] = {}
        self.row_links: dict[str, list[str]] = {}
        self.hrefs: list[str] = []
        self.images: list[str] = []
        self._table: str | None = None
        self._row: str | None = None
        self._cell: str | None = None
        self._spans: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = found.get("id", "")
            self.tables[self._table] = {}
        elif tag == "tr" and self._table is not None:
            self._row = next((found[k] for k in self.KEYS if k in found), None)
            if self._row is not None:
                self.tables[self._table][self._row] = {}
                self.row_links[f"{self._table}/{self._row}"] = []
        elif tag in ("td", "th") and self._row is not None:
            classes = [c for c in found.get("class", "").split() if c != "num"]
            self._cell = classes[-1] if classes else tag
            self.tables[str(self._table)][self._row][self._cell] = ""
        elif tag in ("span", "strong") and self._cell is not None:
            self._spans.append(found.get("class", tag).split()[-1])
        elif tag == "a":
            self.hrefs.append(found["href"])
            if self._row is not None:
                self.row_links[f"{self._table}/{self._row}"].append(found["href"])
        elif tag == "img":
            self.images.append(found["src"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = self._row = self._cell = None
        elif tag == "tr":
            self._row = self._cell = None
        elif tag in ("td", "th"):
            self._cell = None
        elif tag in ("span", "strong") and self._spans:
            self._spans.pop()

    def handle_data(self, data: str) -> None:
        if self._table is None or self._row is None or self._cell is None:
            return
        cells = self.tables[self._table][self._row]
        for key in (self._cell, *self._spans):
            cells[key] = " ".join(f"{cells.get(key, '')} {data}".split())


def cli_app() -> typer.Typer:
    """An app with ``report`` registered the way scientist/cli/__init__.py registers it."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Commands."""

    report_cli.register(app)
    return app


def invoke(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``scientist report ARGS``."""
    result = CliRunner().invoke(cli_app(), ["report", *args])
    return result.exit_code, result.stdout, result.stderr


def manifest_of(run: Path) -> RunManifest:
    return RunManifest.model_validate_json((run / "run.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the toy template with every side effect faked and priced calls:
    three ideas kept, two taken through the pipeline."""
    tmp = tmp_path_factory.mktemp("report_run")
    overrides = [
        *fast_overrides(tmp),
        *PRICED_ROLES,
        "ideas.num_ideas=3",
        "pipeline.ideas_to_run=2",
        "pipeline.skip_not_novel=false",
    ]
    request = RunRequest(template=TOY, preset="debug", overrides=overrides)
    run, manifest = run_pipeline(
        request, deps_factory=fake_deps_factory(PricedLLM(PipelineModel()))
    )
    assert manifest.status == "done" and len(manifest.ideas) == 2
    return run.root


# ----------------------------------------------------------------------------- the command


def test_the_report_shows_each_idea_as_run_json_has_it(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    code, stdout, _ = invoke(str(copy))
    assert code == 0, stdout
    assert str(copy / REPORT_FILE) in " ".join(stdout.split())
    page = Page((copy / REPORT_FILE).read_text(encoding="utf-8"))
    manifest = manifest_of(copy)
    rows = page.tables["run-ideas"]
    kept = IdeasFile.model_validate_json((copy / "ideas.json").read_text()).ideas
    assert list(rows) == [o.name for o in manifest.ideas] + [
        r.idea.Name for r in kept if r.idea.Name not in {o.name for o in manifest.ideas}
    ]
    assert len(rows) == 3
    for outcome in manifest.ideas:
        row = rows[outcome.name]
        assert row["stage"] == outcome.stage == "review"
        assert row["state"] == outcome.status == "done"
        assert row["decision"] == outcome.decision
        assert row["overall"] == f"Overall {outcome.overall:.2f}"
        assert row["cost"] == f"{outcome.cost_usd:.4f}" and outcome.cost_usd > 0
        assert row["tokens"] == f"{outcome.tokens:,}"
        assert row["verdict"] == "novel"
        review = json.loads((copy / outcome.name / "review" / "review.json").read_text())
        assert f"Soundness {review['scores']['Soundness']['mean']:.2f}" in row["scores"]
        links = page.row_links[f"run-ideas/{outcome.name}"]
        assert f"{outcome.name}/paper/paper.pdf" in links
        assert f"{outcome.name}/review/review.html" in links
    [left] = [r for r in rows.values() if r["stage"] == "ideas"]
    assert left["state"] == "not run" and "ideas_to_run" in left["reason"]
    assert left["cost"] == "–" and left["verdict"] == "novel"


def test_per_stage_usage_adds_up_to_the_ledger(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    assert invoke(str(copy))[0] == 0
    stages = Page((copy / REPORT_FILE).read_text(encoding="utf-8")).tables["run-stages"]
    manifest = manifest_of(copy)
    idea_stages = ["literature_review", "plan", "experiments", "writeup", "review"]
    assert list(stages) == ["ideas", *idea_stages, "total"]
    for stage in idea_stages:
        usages = [o.usage[stage] for o in manifest.ideas]
        assert stages[stage]["calls"] == f"{sum(u.calls for u in usages):,}"
        assert stages[stage]["cost"] == f"{sum(u.cost_usd for u in usages):.4f}"
    assert stages["ideas"]["calls"] == f"{manifest.ideas_stage.calls:,}"
    ledger = sum_entries(read_entries(copy / "ledger.jsonl"))
    assert stages["total"]["calls"] == f"{ledger.calls:,}" and ledger.calls > 0
    assert stages["total"]["cost"] == f"{ledger.cost_usd:.4f}" and ledger.cost_usd > 0
    assert stages["total"]["tokens"] == f"{ledger.total_tokens:,}"
    roles = Page((copy / REPORT_FILE).read_text(encoding="utf-8")).tables["run-roles"]
    assert set(roles) == {*ledger.by_role, "total"}
    assert roles["total"]["cost"] == f"{ledger.cost_usd:.4f}"


def test_links_and_figures_still_resolve_after_the_folder_moves(
    run_dir: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first" / run_dir.name
    shutil.copytree(run_dir, first)
    assert invoke(str(first))[0] == 0
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.move(first, moved)
    html = (moved / REPORT_FILE).read_text(encoding="utf-8")
    page = Page(html)
    assert str(first) not in html and str(run_dir) not in html
    assert len(page.images) == 2  # the plot of each idea that ran
    for target in [*page.hrefs, *page.images]:
        assert not target.startswith(("/", "http:", "https:", "file:")), target
        assert (moved / target).is_file(), target


def test_json_prints_the_report_path_and_its_rows(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    code, stdout, _ = invoke(str(copy), "--json")
    assert code == 0, stdout
    summary = ReportSummary.model_validate_json(stdout)
    assert Path(summary.report) == copy / REPORT_FILE and Path(summary.report).is_file()
    manifest = manifest_of(copy)
    ran = [row for row in summary.ideas if row.ran]
    assert [(r.name, r.stage, r.status, r.decision, r.cost_usd) for r in ran] == [
        (o.name, o.stage, o.status, o.decision, o.cost_usd) for o in manifest.ideas
    ]
    assert summary.total.calls == manifest.totals["calls"]
    assert [f.label for f in ran[0].files][:2] == ["paper/paper.pdf", "review/review.html"]


# ----------------------------------------------------------------------------- bad input


def test_a_corrupt_run_json_is_a_usage_error_that_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"template": "toy", "status": "done"', encoding="utf-8")
    code, stdout, stderr = invoke(str(tmp_path), "--json")
    assert code == EXIT_USAGE and stdout == ""
    message = " ".join(stderr.split())
    assert "RunReportError" in message and "is not a valid run manifest" in message
    assert "Fix it or restore it from a backup" in message
    assert not (tmp_path / REPORT_FILE).exists()


def test_a_run_json_of_the_wrong_shape_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"template": "toy", "status": "exploded"}')
    code, _, stderr = invoke(str(tmp_path))
    assert code == EXIT_USAGE
    message = " ".join(stderr.split())
    assert "(2 errors; first, at status: Input should be 'running'" in message


def test_a_folder_without_run_json_or_no_folder_is_a_usage_error(tmp_path: Path) -> None:
    code, _, stderr = invoke(str(tmp_path))
    assert code == EXIT_USAGE and "run.json does not exist" in " ".join(stderr.split())
    code, _, stderr = invoke(str(tmp_path / "nope"))
    assert code == EXIT_USAGE and "is not a folder" in " ".join(stderr.split())


def _idea(name: str, title: str) -> Idea:
    return Idea(
        Name=name,
        Title=title,
        Experiment="Run it.",
        Interestingness=6,
        Feasibility=8,
        Novelty=3,
    )


def _written_run(root: Path) -> RunPaths:
    """A run folder written from the real models: one idea failed in its experiments, one
    found not novel and left, and a title with markup in it."""
    run = RunPaths(root)
    root.mkdir(parents=True)
    failed = IdeaOutcome(
        name="a b",
        title="<script>alert(1)</script>",
        status="failed",
        stage="experiments",
        reason="RuntimeError: simulated crash",
        usage={"experiments": StageUsage(seconds=12.5, calls=3, prompt_tokens=900, cost_usd=0.25)},
    )
    manifest = RunManifest(
        template="toy",
        status="done",
        started_at="2026-01-01T00:00:00+00:00",
        ideas_stage=StageUsage(seconds=4.0, calls=2, prompt_tokens=100, cost_usd=0.5),
        ideas=[failed],
    )
    run.run_json.write_text(manifest.model_dump_json())
    verdict = NoveltyVerdict(status="not_novel", novel=False, justification="Done in 2019.")
    ideas = IdeasFile(
        template="toy",
        model="openai/gpt-4o",
        created_at="2026-01-01T00:00:00+00:00",
        wall_time_s=1.0,
        ideas=[
            IdeaRecord(index=0, idea=_idea("a b", "<script>alert(1)</script>")),
            IdeaRecord(index=1, idea=_idea("old_news", "Old news"), novelty=verdict),
        ],
    )
    run.ideas_json.write_text(ideas.model_dump_json())
    folder = run.idea("a b").root  # a_b/
    folder.mkdir()
    (folder / "experiments.json").write_text("{not json")
    (folder / "loss curve.png").write_bytes(PNG)
    return run


def test_failed_and_left_ideas_and_unreadable_files(tmp_path: Path) -> None:
    run = _written_run(tmp_path / "run")
    code, stdout, _ = invoke(str(run.root))
    assert code == 0, stdout
    html = (run.root / REPORT_FILE).read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = Page(html)
    rows = page.tables["run-ideas"]
    assert list(rows) == ["a b", "old_news"]
    failed = rows["a b"]
    assert (failed["stage"], failed["state"]) == ("experiments", "failed")
    assert failed["reason"] == "RuntimeError: simulated crash"
    assert (failed["cost"], failed["time"], failed["decision"]) == ("0.2500", "12", "–")
    assert page.row_links["run-ideas/a b"] == []  # no paper, no review
    left = rows["old_news"]
    assert (left["stage"], left["state"], left["reason"]) == ("ideas", "not run", "found not novel")
    assert left["verdict"] == "not_novel" and "Done in 2019." in left["novelty"]
    assert page.images == ["a_b/loss%20curve.png"]  # experiments.json unreadable: the PNGs
    assert "experiments.json of a_b/ is unreadable" in html
    stages = page.tables["run-stages"]
    assert list(stages) == ["ideas", "experiments", "total"]
    assert (stages["total"]["cost"], stages["total"]["calls"]) == ("0.7500", "5")


def test_only_plots_inside_the_idea_folder_are_shown_with_their_notes(tmp_path: Path) -> None:
    run = _written_run(tmp_path / "run")
    folder = run.idea("a b").root
    (folder / "plot.png").write_bytes(PNG)
    (run.root / "outside.png").write_bytes(PNG)
    baseline = RunOutcome(
        run_name="run_0", status="ok", seconds=1.0, stdout_path="o", stderr_path="e"
    )
    figures = [
        FigureNote(path="plot.png", description="Loss over <b>steps</b>."),
        FigureNote(path="../outside.png"),
        FigureNote(path="/etc/hostname"),
        FigureNote(path="missing.png"),
    ]
    record = ExperimentRecord(idea_name="a b", template="toy", baseline=baseline, figures=figures)
    (folder / "experiments.json").write_text(record.model_dump_json())
    [row, _] = build_report(run).ideas
    assert [(f.name, f.href, f.caption) for f in row.figures] == [
        ("plot.png", "a_b/plot.png", "Loss over <b>steps</b>.")
    ]
    code, _, _ = invoke(str(run.root))
    html = (run.root / REPORT_FILE).read_text(encoding="utf-8")
    assert code == 0 and "Loss over &lt;b&gt;steps&lt;/b&gt;." in html
    assert Page(html).images == ["a_b/plot.png"]


# ----------------------------------------------------------------------------- the service


def test_the_service_run_page_shows_the_report_tables(run_dir: Path, tmp_path: Path) -> None:
    app = create_app(service_config(tmp_path))
    state = app.state.service
    job = state.store.create("run", "alice", {"template": "toy"})
    claimed = state.store.claim("w", lease_s=60, max_attempts=3)
    assert claimed is not None and claimed.id == job.id and claimed.claim is not None
    run = state.paths.run_dir(job.id)
    shutil.copytree(run_dir, run)
    manifest = manifest_of(run)
    client = TestClient(app, headers=auth("alice"))

    running = Page(client.get(f"/runs/{job.id}").text)
    assert "run-ideas" not in running.tables and "ideas" in running.tables  # the live table

    assert state.store.finish(job.id, claimed.claim, "done", result={"summary": {}})
    page = Page(client.get(f"/runs/{job.id}").text)
    rows = page.tables["run-ideas"]
    assert "ideas" not in page.tables and len(rows) == 3
    for outcome in manifest.ideas:
        assert rows[outcome.name]["stage"] == outcome.stage
        assert rows[outcome.name]["cost"] == f"{outcome.cost_usd:.4f}"
        paper, review = page.row_links[f"run-ideas/{outcome.name}"]
        assert paper == f"/v1/runs/{job.id}/ideas/{outcome.name}/paper.pdf"
        assert review == f"/v1/runs/{job.id}/ideas/{outcome.name}/review"
        assert client.get(paper).content.startswith(b"%PDF-")
        assert client.get(review).json()["decision"]["decision"] == outcome.decision
    total = page.tables["run-stages"]["total"]
    assert total["calls"] == f"{manifest.totals['calls']:,}"
