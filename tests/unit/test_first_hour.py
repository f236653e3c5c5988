"""What a new user trips over in the first hour (#23): each fixed, each with a test."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from core.literature.models import Paper, SearchResult, SourceOutcome
from core.runstore import RunPaths
from core.settings import Settings
from gateway import Gateway
from gateway.errors import AuthenticationFailedError
from scientist.cli import pipeline as cli
from scientist.cli.copilot import terminal_copilot
from scientist.cli.tables import batch_rows, batch_table, cut_statuses
from scientist.ideas.records import NoveltyQuery, NoveltyVerdict, PaperRef, relevant_papers
from scientist.pipeline.deps import PipelineDeps
from scientist.pipeline.models import CopilotRequest, IdeaOutcome, PipelineEvent, RunManifest
from scientist.runs.batch import BatchResult, BatchTask, progress_line, result_of
from scientist.runs.run import run_pipeline
from scientist.runs.wiring import RunRequest
from scientist.writeup.citations import NOVELTY_QUERY, restore_citations
from scientist.writeup.models import CitationRecord, WriteupRecord
from tests.pipeline_support import (
    ROOT,
    FakeLiterature,
    PipelineModel,
    SchemaFiller,
    fake_deps_factory,
    fast_overrides,
)

SettingsFactory = Callable[..., Settings]
TOY = str(ROOT / "tests" / "fixtures" / "template_toy")


def test_the_copilot_prompt_shows_its_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a\n"))
    console = Console(record=True, width=120, force_terminal=False)
    request = CopilotRequest(stage="ideas", summary="2 ideas", editable="{}")
    reply = terminal_copilot(request, console)
    text = console.export_text()
    assert reply.action == "approve"
    assert "[a]pprove, [e]dit, or [f]eedback and redo" in text


@pytest.mark.parametrize("role", ["reviewer", "meta_reviewer", "writer"])
def test_the_missing_key_hint_names_the_role_that_failed(
    role: str, make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    gw = Gateway(make_settings(llm={"models": {role: "anthropic/claude-sonnet-4-5"}}))
    with pytest.raises(AuthenticationFailedError) as info:
        gw.complete([{"role": "user", "content": "Rate this."}], role=role)  # type: ignore[arg-type]
    message = str(info.value)
    assert "ANTHROPIC_API_KEY" in message
    assert f"AUTOSCHOLAR_LLM__MODELS__{role.upper()}=local" in message
    assert f"the {role} role" in message


# ------------------------------------------------- 5: papers cite the novelty check's papers


class NoveltyModel(PipelineModel):
    """The pipeline's fake model with a fixed novelty verdict and a citation model that asks
    for nothing (no queries, no picks)."""

    def __init__(self, decision: str = "novel", closest: list[str] | None = None) -> None:
        super().__init__()
        self.filler = SchemaFiller(
            {"decision": decision, "closest_papers": closest or [], "queries": [], "picks": []}
        )


def _paper(n: int, title: str) -> Paper:
    key = f"author{2020 + n}paper{n}"
    return Paper(
        paper_id=f"offline:p{n}",
        title=title,
        authors=[f"Author {n}"],
        year=2020 + n,
        bibtex=f"@article{{{key},\n  title={{{title}}},\n  author={{Author {n}}},\n"
        f"  journal={{arXiv}},\n  year={{{2020 + n}}}\n}}",
        citation_key=key,
        source="offline",
    )


class ThreePapers(FakeLiterature):
    """Three papers for every query, best first."""

    PAPERS = (
        _paper(1, "Sparse gating of mixture experts"),
        _paper(2, "Quantum annealing schedules"),
        _paper(3, "Protein folding with transformers"),
    )

    def search(self, query: str, limit: int) -> SearchResult:
        """The three papers."""
        return SearchResult(
            query=query,
            papers=list(self.PAPERS[:limit]),
            outcomes=[SourceOutcome(source="offline", ok=True, results=3)],
        )

    def paper(self, paper_id: str) -> Paper | None:
        """One of the three, by id."""
        return next((p for p in self.PAPERS if p.paper_id == paper_id), None)


def _with_literature(model: PipelineModel, literature: FakeLiterature) -> Any:
    base = fake_deps_factory(model)

    def build(settings: Settings, run: RunPaths, request: RunRequest) -> PipelineDeps:
        return replace(base(settings, run, request), literature=literature)

    return build


def _pipeline(
    tmp_path: Path,
    model: PipelineModel,
    *extra: str,
    literature: Any = None,
    on_event: Callable[[PipelineEvent], None] | None = None,
) -> Any:
    request = RunRequest(
        template=TOY,
        preset="debug",
        overrides=[*fast_overrides(tmp_path), *extra],
        on_event=on_event,
    )
    factory = _with_literature(model, literature or FakeLiterature())
    return run_pipeline(request, deps_factory=factory)


def _writeup(run: RunPaths, manifest: RunManifest) -> WriteupRecord:
    [idea] = manifest.ideas
    path = run.idea(idea.name).paper_dir / "writeup.json"
    return WriteupRecord.model_validate_json(path.read_text(encoding="utf-8"))


def test_related_work_cites_the_novelty_checks_closest_paper(tmp_path: Path) -> None:
    closest = FakeLiterature.PAPER
    run, manifest = _pipeline(tmp_path, NoveltyModel("novel", [closest.paper_id]))
    record = _writeup(run, manifest)
    [related] = [s for s in record.sections if s.name == "related_work"]
    [citation] = [c for c in record.citations if c.paper_id == closest.paper_id]
    assert citation.key in related.citations
    paper_dir = run.idea(manifest.ideas[0].name).paper_dir
    bib = (paper_dir / "references.bib").read_text(encoding="utf-8")
    assert f"@article{{{citation.key}," in bib and "title={Grokking}" in bib
    assert f"\\cite{{{citation.key}}}" in (paper_dir / "paper.tex").read_text(encoding="utf-8")


def test_without_closest_papers_related_work_cites_the_top_results(tmp_path: Path) -> None:
    run, manifest = _pipeline(
        tmp_path,
        NoveltyModel("novel"),
        "writing.novelty_citations=2",
        "survey.enabled=false",  # the literature review's papers would join them
        literature=ThreePapers(),
    )
    record = _writeup(run, manifest)
    [related] = [s for s in record.sections if s.name == "related_work"]
    cited = {c.paper_id for c in record.citations if c.key in related.citations}
    assert cited == {"offline:p1", "offline:p2"}


def test_the_top_results_interleave_the_queries_best_first() -> None:
    a, b, c = (PaperRef.of(p) for p in ThreePapers.PAPERS)
    queries = [
        NoveltyQuery(round=0, query="title", asked_by="title", papers=[a, b]),
        NoveltyQuery(round=1, query="more", asked_by="model", papers=[c, a]),
    ]
    verdict = NoveltyVerdict(status="undecided", queries=queries)
    assert relevant_papers(verdict, 3) == [a, c, b]
    assert relevant_papers(verdict, 1) == [a] and relevant_papers(verdict, 0) == []
    named = verdict.model_copy(update={"closest": [b]})
    assert relevant_papers(named, 0) == [b]  # named closest papers are always cited
    assert a.bibtex.startswith("@article{author2021paper1,")  # ideas.json keeps the entry


def test_related_work_keeps_the_citations_whatever_the_model_wrote() -> None:
    records = [
        CitationRecord(
            key=p.citation_key,
            paper_id=p.paper_id,
            title=p.title,
            source="offline",
            query=NOVELTY_QUERY,
            section="related_work",
            hint=p.title,
        )
        for p in ThreePapers.PAPERS[:2]
    ]
    text = "Sparse gating of mixture experts routes tokens. We differ in our focus."
    cited = restore_citations(text, "related_work", records)
    assert "routes tokens~\\cite{author2021paper1}." in cited
    assert cited.endswith("Closely related prior work includes~\\cite{author2022paper2}.")
    assert restore_citations(cited, "related_work", records) == cited


# ------------------------------------------- 3: a run that ran no idea says so, and why


def test_a_run_whose_only_idea_is_not_novel_says_so_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[PipelineEvent] = []
    model = NoveltyModel("not_novel", [FakeLiterature.PAPER.paper_id])
    run, manifest = _pipeline(tmp_path, model, on_event=events.append)
    reason = manifest.reason or ""
    assert manifest.status == "no_ideas" and not manifest.ideas
    assert reason.startswith('no idea passed the novelty check (not_novel: closest paper "Grokking')
    on_disk = RunManifest.model_validate_json(run.run_json.read_text(encoding="utf-8"))
    assert (on_disk.status, on_disk.reason) == ("no_ideas", reason)
    assert any(e.stage == "ideas" and reason in e.detail for e in events)  # the live view

    result = result_of(BatchTask(template="diffusion_2d", preset="debug"), "r", manifest, 27.0)
    assert progress_line(result) == f"diffusion_2d: no_ideas in 27 s: {reason}"
    console = Console(width=300, record=True)
    console.print(batch_table([result], width=300))
    table = console.export_text()
    assert f"no_ideas: {reason}" in table and "failed" not in table and "done" not in table

    out, err = Console(width=300, record=True), Console(width=300, record=True)
    monkeypatch.setattr(cli, "out", out)
    monkeypatch.setattr(cli, "err", err)
    cli.report_run(run, manifest)
    printed = out.export_text()
    assert f"no_ideas: {reason}" in printed and "(status no_ideas" in printed
    assert f"No paper was written: {reason}" in err.export_text()


def test_a_finished_batch_run_counts_its_papers() -> None:
    ideas = [IdeaOutcome(name="a", status="done", stage="review", paper_pdf="a/paper.pdf")]
    result = BatchResult(
        task=BatchTask(template="digits", preset="debug"), status="done", seconds=3.2, ideas=ideas
    )
    assert progress_line(result) == "digits: done in 3 s (1 paper from 1 idea)"


# ------------------------------------------------------ 4: the batch table in 80 columns

LONG = "adaptive_dual_scale_denoising_with_learned_gating_of_the_noise"


def _batch_results() -> list[BatchResult]:
    reviewed = IdeaOutcome(
        name=LONG,
        title="Adaptive dual-scale denoising with learned gating",
        status="done",
        stage="review",
        overall=4.5,
        revised_overall=5.0,
        decision="Reject",
    )
    crashed = IdeaOutcome(
        name=LONG + "_b",
        status="failed",
        stage="experiments",
        reason="experiments: RuntimeError: " + "the experiment ran out of memory " * 4,
    )
    reason = 'no idea passed the novelty check (not_novel: closest paper "Denoising ' + (
        'diffusion probabilistic models" (2020))'
    )
    return [
        BatchResult(
            task=BatchTask(template="templates/digits", preset="debug"),
            status="done",
            seconds=90,
            ideas=[reviewed, crashed],
        ),
        BatchResult(
            task=BatchTask(template="diffusion_2d", preset="debug"),
            status="no_ideas",
            reason=reason,
            seconds=27,
        ),
    ]


@pytest.mark.parametrize("width", [80, 100])
def test_the_batch_table_fits_a_narrow_terminal(width: int) -> None:
    console = Console(width=width, record=True)
    console.print(batch_table(_batch_results(), width=width))
    lines = [line for line in console.export_text().splitlines() if line.strip()]
    title, header, rule, *rows = lines
    assert title.strip() == "Batch" and set(rule.strip()) == {"─"}
    assert len(rows) == 3, lines  # one line per idea, one for the run that ran none
    assert all(len(line) <= width for line in lines)
    assert {"run", "idea", "stage", "status", "decision"} <= set(header.split())
    assert "digits" in rows[0] and "adaptive_dual" in rows[0] and "Reject" in rows[0]
    assert "review" in rows[0] and "experiments" in rows[1] and "failed" in rows[1]
    assert "diffusion_2d" in rows[2] and "no_ideas" in rows[2]
    notes = cut_statuses(batch_rows(_batch_results()), width)  # printed in full below it
    assert f"diffusion_2d: no_ideas: {_batch_results()[1].reason}" in notes
    assert notes[0].startswith(f"digits · {LONG}_b: failed: experiments: RuntimeError")


def test_a_wide_terminal_shows_every_column() -> None:
    console = Console(width=320, record=True)
    console.print(batch_table(_batch_results(), width=320))
    header = console.export_text().splitlines()[1]
    assert " ".join(header.split()) == "run idea stage status Overall decision cost $ tokens s"
    assert cut_statuses(batch_rows(_batch_results()), 320) == []


def test_the_run_page_says_no_paper_was_written_and_why() -> None:
    from service.models import JobLinks, RunJobView
    from service.pages import render

    reason = 'no idea passed the novelty check (not_novel: closest paper "Grokking" (2022))'
    job = RunJobView(
        id="j1",
        kind="run",
        status="done",
        owner="ann",
        created_at=0.0,
        attempts=1,
        links=JobLinks(self="/v1/runs/j1", page="/runs/j1"),
        template="diffusion_2d",
        summary={"status": "no_ideas", "reason": reason},
    )
    page = render(
        "run.html.j2",
        user="ann",
        job=job,
        refresh=None,
        reviews={},
        events=[],
        documents=[],
        run_answers=[],
        refused={},
    )
    assert "no paper was written: no idea passed the novelty check" in page.body.decode()


def test_the_last_progress_line_of_an_idea_says_how_it_ended() -> None:
    from scientist.pipeline.models import IdeaOutcome
    from scientist.pipeline.nodes import finish_detail

    reviewed = IdeaOutcome(name="x", status="done", stage="review", overall=4.0, decision="reject")
    assert finish_detail(reviewed) == "idea done: Overall 4.0, reject"
    failed = IdeaOutcome(name="x", status="failed", stage="writeup", reason="latex failed")
    assert finish_detail(failed) == "idea failed: latex failed"


def test_the_usage_table_fits_80_columns_without_cutting_a_role() -> None:
    from core.report import summary_table
    from gateway.ledger import sum_entries
    from gateway.types import LedgerEntry

    rows = [
        LedgerEntry(
            role=role,
            model="openai/gpt-4o",
            prompt_tokens=1_234_567,
            completion_tokens=98_765,
            cost_usd=12.3456,
            latency_s=1234.5,
            cache_hit=False,
            cached_prompt_tokens=654_321,
            uncached_cost_usd=13.0,
        )
        for role in ("ideas", "coder", "writer", "citations", "reviewer", "meta_reviewer")
    ]
    console = Console(record=True, width=80)
    console.print(summary_table(sum_entries(rows)))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for word in ("meta_reviewer", "citations", "1,234,567", "654,321", "12.3456", "saved"):
        assert word in text
    assert "…" not in text


def test_the_job_list_says_when_a_done_run_wrote_no_paper() -> None:
    from service.store import JobRecord
    from service.views import summary

    reason = "no idea passed the novelty check (not_novel: closest paper 'Grokking' (2022))"
    base = {"id": "j1", "kind": "run", "owner": "alice", "status": "done", "params": {}}
    times = {"created_at": 1.0, "updated_at": 2.0}
    empty = JobRecord(**base, **times, result={"summary": {"status": "no_ideas", "reason": reason}})
    assert summary(empty).note == f"no paper written: {reason}"
    wrote = JobRecord(**base, **times, result={"summary": {"status": "done"}})
    assert summary(wrote).note is None
