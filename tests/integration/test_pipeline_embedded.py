"""The whole paper pipeline on the embedded model: what `make demo` runs (slow: ~10-15 min)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.settings import Settings
from scientist.runs.run import run_pipeline
from scientist.runs.wiring import RunRequest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (ROOT / ".venv-aider" / "bin" / "aider").exists(),
    reason="Aider's virtualenv is missing: run `make setup`",
)
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="no TeX toolchain: `make setup`")
def test_digits_end_to_end(embedded_settings: Settings, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scientist.cli import app

    data = f"data_dir={embedded_settings.data_dir}"
    index = CliRunner().invoke(
        app, ["literature", "index", str(ROOT / "samples/literature/references.bib"), "--set", data]
    )
    assert index.exit_code == 0, index.output
    request = RunRequest(
        template="digits", preset="debug", overrides=[data, f"runs_dir={tmp_path / 'runs'}"]
    )
    run, manifest = run_pipeline(request)
    assert manifest.status == "done"
    [idea] = manifest.ideas
    assert idea.status == "done", idea.reason
    assert Path(idea.paper_pdf or "").is_file() and Path(idea.review_json or "").is_file()
    assert run.ledger.is_file() and manifest.totals["calls"] > 0


@pytest.mark.skipif(
    not (ROOT / ".venv-aider" / "bin" / "aider").exists(),
    reason="Aider's virtualenv is missing: run `make setup`",
)
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="no TeX toolchain: `make setup`")
def test_digits_from_the_researchers_own_idea(embedded_settings: Settings, tmp_path: Path) -> None:
    """`scientist run digits --idea samples/ideas/digits_label_smoothing.md --preset debug`:
    the given idea runs verbatim through the literature review, the plan, the experiments,
    the write-up and the review (#19's integration acceptance)."""
    from typer.testing import CliRunner

    from scientist.cli import app
    from scientist.ideas.records import IdeasFile
    from scientist.plan.models import ExperimentPlan
    from scientist.survey.models import LiteratureReview

    data = f"data_dir={embedded_settings.data_dir}"
    index = CliRunner().invoke(
        app, ["literature", "index", str(ROOT / "samples/literature/references.bib"), "--set", data]
    )
    assert index.exit_code == 0, index.output
    idea_md = ROOT / "samples" / "ideas" / "digits_label_smoothing.md"
    flags = ["--set", data, "--set", f"runs_dir={tmp_path / 'runs'}"]
    command = ["run", "digits", "--idea", str(idea_md), "--preset", "debug", "--json", *flags]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    [run_dir] = list((tmp_path / "runs").iterdir())
    ideas = IdeasFile.model_validate_json((run_dir / "ideas.json").read_text())
    title = idea_md.read_text().splitlines()[0].lstrip("# ").strip()
    assert [r.idea.Title for r in ideas.ideas] == [title]  # verbatim, not replaced
    [folder] = [p for p in run_dir.iterdir() if (p / "plan.json").is_file()]
    review = LiteratureReview.model_validate_json((folder / "literature_review.json").read_text())
    plan = ExperimentPlan.model_validate_json((folder / "plan.json").read_text())
    assert plan.runs and (folder / "paper" / "paper.pdf").is_file()
    bib = (folder / "paper" / "references.bib").read_text()
    assert all(p.key in bib for p in review.papers)
    assert (folder / "review" / "review.json").is_file()
