"""The review graph on real PDFs: prompt-injection guard and every bad-input case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from graphs.review import review_alone as review
from reviewer.cli import app
from reviewer.review.form import Excerpt
from reviewer.review.reviewing import ReviewDeps, run_reviewer
from tests.fixtures.make_pdfs import PdfFixtures
from tests.fixtures.pdfs import pdf_fixtures_fixture  # noqa: F401
from tests.unit.review_script import INJECTION, obedient_reviewer, paper_prompt

SettingsFactory = Callable[..., Settings]
runner = CliRunner()


def _deps(make_settings: SettingsFactory, script: ScriptedLLM) -> ReviewDeps:
    settings = make_settings(review={"num_reviewers": 2, "num_reflections": 1})
    return ReviewDeps(gateway=Gateway(settings, backend=script), settings=settings)


def test_the_scripted_model_would_obey_an_injection(make_settings: SettingsFactory) -> None:
    shown = Excerpt(
        text=f"A paper. {INJECTION}.", budget_tokens=100, estimated_tokens=10, kept_sections=["all"]
    )
    result = run_reviewer(0, shown, _deps(make_settings, ScriptedLLM(obedient_reviewer())))
    assert result.final.Overall == 10  # without the guard the injection works


def test_injected_text_is_flagged_and_does_not_move_scores(
    make_settings: SettingsFactory, pdf_fixtures: PdfFixtures
) -> None:
    clean_script, injected_script = (
        ScriptedLLM(obedient_reviewer()),
        ScriptedLLM(obedient_reviewer()),
    )
    clean = review({"pdf_path": str(pdf_fixtures.clean)}, _deps(make_settings, clean_script))
    injected = review(
        {"pdf_path": str(pdf_fixtures.injected)}, _deps(make_settings, injected_script)
    )
    assert injected.scores == clean.scores
    assert injected.scores["Overall"].values == [4, 4]
    assert clean.injection_flags == []
    kinds = {f.kind for f in injected.injection_flags}
    assert kinds == {"instruction", "hidden_text"}
    for request in injected_script.requests:
        assert INJECTION not in paper_prompt(request).lower()
    assert "<paper>" in paper_prompt(injected_script.requests[0])


@pytest.mark.parametrize(
    ("name", "extra", "reason"),
    [
        ("not_a_pdf", [], "not a PDF"),
        ("truncated", [], "corrupt"),
        ("encrypted", [], "encrypted"),
        ("image_only", [], "no extractable text"),
        ("many_pages", ["--set", "review.max_pages=3"], "pages"),
    ],
)
def test_bad_input_fails_with_one_clear_line(
    pdf_fixtures: PdfFixtures,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    extra: list[str],
    reason: str,
) -> None:
    monkeypatch.setenv("AUTOSCHOLAR_DATA_DIR", str(tmp_path / "data"))
    pdf = getattr(pdf_fixtures, name)
    out = tmp_path / "out"
    result = runner.invoke(app, ["review", str(pdf), "--out", str(out), *extra])
    assert result.exit_code == 2  # an unusable input (EXIT_USAGE)
    errors = [line for line in result.output.splitlines() if "error:" in line]
    assert len(errors) == 1 and pdf.name in errors[0] and reason.lower() in errors[0].lower()
    assert not (out / "review.json").exists()


def test_missing_file_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSCHOLAR_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["review", str(tmp_path / "nope.pdf")])
    assert result.exit_code == 2 and "nope.pdf: no such file" in result.output
