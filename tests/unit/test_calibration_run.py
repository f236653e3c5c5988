"""Both calibrate modes end to end on the small fixture (scripted model, no server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from gateway.types import LLMRequest
from graphs.review import review_alone
from reviewer.calibration.errors import CalibrationError
from reviewer.calibration.run import CalibrateOptions, calibrate_from_reviews, calibrate_with_model
from reviewer.cli.calibrate import calibrate_command
from reviewer.review.decision import load_calibration
from reviewer.review.reviewing import ReviewDeps
from tests.unit.review_script import obedient_reviewer, paper_prompt, schema_name

FIXTURES = Path(__file__).resolve().parents[2] / "samples" / "calibration"
PAPERS = FIXTURES / "iclr_small.jsonl"
REVIEWS = FIXTURES / "iclr_small_reviews.csv"
SettingsFactory = Callable[..., Settings]


def _options(out: Path, **changes: object) -> CalibrateOptions:
    base: dict[str, object] = {"data": PAPERS, "out_dir": out, "n_resamples": 100, "human_draws": 3}
    return CalibrateOptions(**{**base, **changes})  # type: ignore[arg-type]


def test_reviews_mode_writes_every_file_and_a_loadable_calibration(tmp_path: Path) -> None:
    outcome = calibrate_from_reviews(_options(tmp_path), REVIEWS)
    assert {p.name for p in outcome.paths.values()} == {
        "calibration.json",
        "report.md",
        "roc.png",
        "reliability.png",
    }
    assert outcome.paths["roc"].read_bytes().startswith(b"\x89PNG")
    calibration = load_calibration(outcome.paths["calibration"])
    assert 1 <= calibration.threshold <= 10 and calibration.calibrator.kind == "logistic"
    saved = json.loads(outcome.paths["calibration"].read_text())
    assert saved["data"]["n_papers"] == 20 and saved["cv"]["k"] == 5
    assert [r["name"] for r in saved["cv"]["rows"]][2:] == [
        "human: single random reviewer",
        "human: mean of all ratings",
        "text length (full text)",
        "text length (before References)",
        "always reject",
    ]
    report = outcome.paths["report"].read_text()
    assert "| reviewer / baseline | rule | n | Bal. acc." in report
    assert "| iclr_small_reviews | Overall ≥ 6 | 20 |" in report


def test_fixed_rule_row_matches_hand_counts(tmp_path: Path) -> None:
    outcome = calibrate_from_reviews(_options(tmp_path), REVIEWS)
    rule = outcome.rows[1]
    # From the fixture: accepted papers with Overall >= 6: 6 of 8; rejected: 1 of 12.
    assert rule.metrics["fnr"].value == pytest.approx(2 / 8)
    assert rule.metrics["fpr"].value == pytest.approx(1 / 12)
    balanced = rule.metrics["balanced_accuracy"]
    assert balanced.value is not None and balanced.lo is not None and balanced.hi is not None
    assert balanced.lo <= balanced.value <= balanced.hi


def test_peer_reviews_beside_the_data_get_a_row_on_the_covered_papers(tmp_path: Path) -> None:
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([{"paper_id": p, "Overall": 5} for p in _ids()]))
    outcome = calibrate_from_reviews(_options(tmp_path / "out", peer_reviews=REVIEWS), mine)
    peer = next(r for r in outcome.rows if r.name.startswith("AI Scientist"))
    assert peer.n == 20 and peer.rule == "Overall ≥ 6"
    assert outcome.rows[0].metrics["spearman"].value is None  # a constant reviewer


def _ids() -> list[str]:
    return [json.loads(line)["id"] for line in PAPERS.read_text().splitlines()]


def _accepted_topics() -> list[str]:
    records = [json.loads(line) for line in PAPERS.read_text().splitlines()]
    return [r["title"].split("A STUDY OF ")[1] for r in records if r["decision"] == "accept"]


ACCEPTED = _accepted_topics()


def _oracle_reviewer(request: LLMRequest) -> int:
    """A reviewer that knows the answer: Overall 7 for accepted fixture papers, else 4."""
    text = paper_prompt(request).upper()
    return 7 if any(f"A STUDY OF {topic}" in text for topic in ACCEPTED) else 4


def _deps(make_settings: SettingsFactory, reviewers: int = 1) -> tuple[ReviewDeps, ScriptedLLM]:
    settings = make_settings("debug", review={"num_reviewers": reviewers, "num_reflections": 0})
    script = ScriptedLLM(obedient_reviewer(_oracle_reviewer))
    return ReviewDeps(gateway=Gateway(settings, backend=script), settings=settings), script


def test_model_mode_caches_each_paper_and_resumes_without_calls(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    deps, script = _deps(make_settings)
    outcome, done = calibrate_with_model(_options(tmp_path, limit=8), deps, review_alone)
    assert done.reviewed == 8 and done.cached == 0 and len(script.requests) == 16
    cached = sorted(p.name for p in (tmp_path / "reviews").iterdir())
    assert len(cached) == 8 and all(name.endswith(".json") for name in cached)
    assert load_calibration(outcome.paths["calibration"]).threshold == 5.5
    again, script_again = _deps(make_settings)
    second, done_again = calibrate_with_model(_options(tmp_path, limit=8), again, review_alone)
    assert done_again.cached == 8 and script_again.requests == []
    assert second.rows[0].metrics == outcome.rows[0].metrics


def test_cached_reviews_from_other_settings_are_refused(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    deps, _ = _deps(make_settings)
    calibrate_with_model(_options(tmp_path, limit=4), deps, review_alone)
    other, _ = _deps(make_settings, reviewers=2)
    with pytest.raises(CalibrationError, match="other settings"):
        calibrate_with_model(_options(tmp_path, limit=4), other, review_alone)


def test_a_paper_the_model_cannot_review_is_left_out_and_noted(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    good = obedient_reviewer(_oracle_reviewer)

    def flaky(request: LLMRequest) -> str:
        broken = "PAPER 01:" in paper_prompt(request) and schema_name(request) == "ReviewForm"
        return "no json here" if broken else good(request)

    settings = make_settings("debug", review={"num_reviewers": 1, "num_reflections": 0})
    deps = ReviewDeps(gateway=Gateway(settings, backend=ScriptedLLM(flaky)), settings=settings)
    outcome, done = calibrate_with_model(_options(tmp_path), deps, review_alone)
    assert list(done.failures) == [_ids()[0]] and outcome.rows[0].n == 19
    assert any("could not be reviewed" in note for note in outcome.notes)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("calibrate")(calibrate_command)

    @app.callback()
    def _root() -> None:
        """Test app."""

    return app


def test_cli_reviews_mode_prints_the_table_and_paths(tmp_path: Path) -> None:
    out = tmp_path / ("a-long-folder-name-" * 4) / "[out]"  # longer than the terminal; markup
    args = ["calibrate", "--data", str(PAPERS), "--reviews", str(REVIEWS), "--out", str(out)]
    result = CliRunner(env={"COLUMNS": "100"}).invoke(
        _app(), [*args, "--bootstrap", "100", "--calibrator", "isotonic"]
    )
    assert result.exit_code == 0, result.output
    # Each path whole on one line, whatever the terminal's width, so it can be copied.
    assert f"calibration: {out / 'calibration.json'}\n" in result.output
    assert "always reject" in result.output
    assert "[rating ≥ 6]" in result.output  # not eaten as rich markup
    assert load_calibration(out / "calibration.json").calibrator.kind == "isotonic"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--reviews", "absent.csv"], "no such reviews file"),
        (["--reviews", str(REVIEWS), "--model", "local"], "--reviews reads finished reviews"),
        (["--reviews", str(REVIEWS), "--calibrator", "platt"], "logistic or isotonic"),
        (["--reviews", str(REVIEWS), "--limit", "2"], "too small"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    args = ["calibrate", "--data", str(PAPERS), "--out", str(tmp_path), *extra]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_reports_bad_data_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(PAPERS.read_text().splitlines()[0] + "\n{oops\n")
    args = ["calibrate", "--data", str(bad), "--reviews", str(REVIEWS), "--out", str(tmp_path)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2 and "line 2" in result.output
