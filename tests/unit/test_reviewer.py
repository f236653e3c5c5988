"""The review graph with the scripted model: reflection, ensemble, meta-review, decision."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from gateway.types import LLMRequest
from graphs.review import review_alone as review
from reviewer.review.decision import Calibration, LogisticCalibrator, decide, load_calibration
from reviewer.review.reviewing import ReviewDeps, excerpt_budget
from tests.unit.review_script import obedient_reviewer, review_json, schema_name

SettingsFactory = Callable[..., Settings]
PAPER = "\n\n".join(
    [
        "GROKKING FASTER WITH LAYER-WISE LEARNING RATES",
        "Abstract\nWe study grokking on modular arithmetic and report faster generalisation.",
        "1 Introduction\n" + "Grokking is delayed generalisation after memorisation. " * 30,
        "2 Method\n" + "We scale the learning rate of each layer separately. " * 30,
        "3 Results\n" + "Validation accuracy reaches 99% after 1,200 steps instead of 4,000. " * 20,
        "4 Conclusion\nLayer-wise learning rates speed up grokking on these tasks.",
        "References\n[1] Power et al. Grokking. 2022.",
    ]
)


def _deps(make_settings: SettingsFactory, backend: ScriptedLLM, **review: object) -> ReviewDeps:
    settings = make_settings(review={"num_reviewers": 3, "num_reflections": 2, **review})
    return ReviewDeps(gateway=Gateway(settings, backend=backend), settings=settings)


def test_reflection_stops_early_when_done(make_settings: SettingsFactory) -> None:
    script = ScriptedLLM(obedient_reviewer(done_after=1))
    report = review(
        {"paper_text": PAPER, "paper_id": "p1"}, _deps(make_settings, script, num_reflections=3)
    )
    assert len(report.reviewers) == 3
    for reviewer in report.reviewers:
        assert len(reviewer.rounds) == 2 and reviewer.stopped_early
        assert reviewer.thoughts == ["round 1"]
    names = [schema_name(r) for r in script.requests]
    assert names.count("ReviewForm") == 3 and names.count("ReflectionReply") == 3
    assert names[-1] == "MetaReviewReply"


def test_reflection_runs_all_rounds_without_done(make_settings: SettingsFactory) -> None:
    script = ScriptedLLM(obedient_reviewer())
    report = review({"paper_text": PAPER}, _deps(make_settings, script))
    assert all(len(r.rounds) == 3 and not r.stopped_early for r in report.reviewers)
    reflection = next(r for r in script.requests if schema_name(r) == "ReflectionReply")
    assert reflection.messages[-2].role == "assistant"  # it sees its previous review
    assert '"Overall":4' in reflection.messages[-2].content


def test_ensemble_aggregates_mean_and_spread(make_settings: SettingsFactory) -> None:
    personas = {"balanced": 3, "critical": 5, "generous": 8}

    def overall(request: LLMRequest) -> int:
        stance = request.messages[2].content  # the persona follows the shared paper prefix
        return next(v for k, v in personas.items() if _persona_text(k) in stance)

    report = review(
        {"paper_text": PAPER}, _deps(make_settings, ScriptedLLM(obedient_reviewer(overall)))
    )
    stats = report.scores["Overall"]
    assert stats.values == [3, 5, 8]
    assert stats.mean == pytest.approx(16 / 3) and stats.min == 3 and stats.max == 8
    assert stats.std == pytest.approx(2.0548, abs=1e-3)
    assert report.decision.decision == "reject" and not report.decision.calibrated
    assert report.decision.probability is None and "uncalibrated" in report.decision.provenance
    assert [r.persona for r in report.reviewers] == ["balanced", "critical", "generous"]


def _persona_text(name: str) -> str:
    path = (
        Path(__file__).resolve().parents[2]
        / "reviewer"
        / "review"
        / "prompts"
        / f"persona_{name}.j2"
    )
    return path.read_text().strip()[:40]


def test_meta_review_sees_every_review(make_settings: SettingsFactory) -> None:
    counter = iter(range(100))

    def tagged(request: LLMRequest) -> str:
        name = schema_name(request)
        if name == "MetaReviewReply":
            return obedient_reviewer()(request)
        tag = f"summary-tag-{next(counter)}"
        if name == "ReflectionReply":
            return json.dumps({"thought": "t", "review": review_json(5, tag), "done": True})
        return json.dumps(review_json(5, tag))

    script = ScriptedLLM(tagged)
    report = review({"paper_text": PAPER}, _deps(make_settings, script, num_reflections=1))
    meta_prompt = script.requests[-1].messages[-1].content
    assert len(report.reviewers) == 3
    for reviewer in report.reviewers:
        assert reviewer.final.Summary in meta_prompt
    assert report.meta_review.summary == "Consensus."


def test_out_of_range_score_is_reasked_not_clamped(make_settings: SettingsFactory) -> None:
    bad = json.dumps({**review_json(4), "Overall": 11})
    good = json.dumps(review_json(7))
    meta = json.dumps(
        {"summary": "s", "strengths": ["a"], "weaknesses": ["b"], "disagreements": []}
    )
    script = ScriptedLLM([bad, good, meta])
    report = review(
        {"paper_text": PAPER}, _deps(make_settings, script, num_reviewers=1, num_reflections=0)
    )
    assert report.scores["Overall"].values == [7]
    reask = script.requests[1].messages[-1].content
    assert "Overall" in reask and "less than or equal to 10" in reask


def test_long_paper_is_cut_to_budget_and_cuts_recorded(make_settings: SettingsFactory) -> None:
    long_paper = PAPER.replace(
        "4 Conclusion", "Related Work\n" + "Prior work. " * 3000 + "\n\n4 Conclusion"
    )
    deps = _deps(make_settings, ScriptedLLM(obedient_reviewer()), max_paper_tokens=1500)
    report = review({"paper_text": long_paper}, deps)
    assert report.shown.estimated_tokens <= 1500 == excerpt_budget(deps)
    assert report.shown.cut, "the cut must be recorded"
    assert any("Related" in c.section for c in report.shown.cut)


def test_calibrated_decision_uses_threshold_and_probability(tmp_path: Path) -> None:
    calib = Calibration(
        threshold=5.5, calibrator=LogisticCalibrator(a=1.0, b=-5.5), provenance="test fit"
    )
    path = tmp_path / "calibration.json"
    path.write_text(calib.model_dump_json())
    decision = decide(6.0, load_calibration(path), threshold=6.0)
    assert decision.decision == "accept" and decision.calibrated
    assert decision.probability == pytest.approx(1 / (1 + 2.718281828**-0.5), abs=1e-6)
    assert decide(5.9, None, threshold=6.0).decision == "reject"


def test_a_failing_reviewer_is_recorded_and_the_rest_go_on(make_settings: SettingsFactory) -> None:
    obey = obedient_reviewer()

    def one_broken(request: LLMRequest) -> str:
        if schema_name(request) != "MetaReviewReply" and "critical" in request.messages[2].content:
            return "not json"
        return obey(request)

    settings_review = {"num_reflections": 0, "personas": ["balanced", "critical"]}
    deps = _deps(make_settings, ScriptedLLM(one_broken), num_reviewers=2, **settings_review)
    report = review({"paper_text": PAPER}, deps)
    assert [r.index for r in report.reviewers] == [0]
    assert [f.index for f in report.failures] == [1] and "not json" in report.failures[0].error
    assert report.scores["Overall"].values == [4]


def test_meta_review_failure_keeps_the_reviews(make_settings: SettingsFactory) -> None:
    obey = obedient_reviewer()

    def no_meta(request: LLMRequest) -> str:
        return "{" if schema_name(request) == "MetaReviewReply" else obey(request)

    report = review({"paper_text": PAPER}, _deps(make_settings, ScriptedLLM(no_meta)))
    assert report.meta_review is None and "MetaReviewReply" in (report.meta_review_error or "")
    assert len(report.reviewers) == 3 and report.decision.decision == "reject"


def test_all_reviewers_failing_is_an_error(make_settings: SettingsFactory) -> None:
    from reviewer.review.nodes import NoReviewsError

    deps = _deps(make_settings, ScriptedLLM(lambda request: "nope"), num_reflections=0)
    with pytest.raises(NoReviewsError, match="every reviewer failed"):
        review({"paper_text": PAPER, "paper_id": "p9"}, deps)


def test_reviewers_run_concurrently_except_on_the_one_embedded_server(
    make_settings: SettingsFactory,
) -> None:
    from graphs.review import graph_config

    script = ScriptedLLM([])
    assert graph_config(_deps(make_settings, script)) == {"max_concurrency": 1}
    remote = make_settings(llm={"models": {"reviewer": "openai/gpt-4o"}})
    assert graph_config(ReviewDeps(gateway=Gateway(remote, backend=script), settings=remote)) == {}
    mixed = make_settings(review={"models": ["local", "openai/gpt-4o"], "num_reviewers": 2})
    assert graph_config(ReviewDeps(gateway=Gateway(mixed, backend=script), settings=mixed)) == {}


def test_review_uses_a_saved_calibration_and_shows_it(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    from dataclasses import replace

    from rich.console import Console

    from reviewer.cli import build_deps, summary

    path = tmp_path / "calibration.json"
    path.write_text(
        Calibration(
            threshold=3.5,
            calibrator=LogisticCalibrator(a=1.0, b=-3.5),
            provenance="fitted on 20 test papers",
        ).model_dump_json()
    )
    settings = make_settings(
        review={"calibration_path": str(path), "num_reviewers": 2, "num_reflections": 0}
    )
    deps = build_deps(settings)
    assert deps.calibration is not None
    deps = replace(deps, gateway=Gateway(settings, backend=ScriptedLLM(obedient_reviewer())))
    report = review({"paper_text": PAPER}, deps)
    assert report.decision.decision == "accept" and report.decision.calibrated
    assert report.decision.probability == pytest.approx(1 / (1 + 2.718281828**-0.5), abs=1e-6)
    console = Console(record=True, width=200)
    console.print(summary(report, {}))
    text = console.export_text()
    assert "P(accept) 0.62" in text and "fitted on 20 test papers" in text


def _gpt4o_reviews() -> list[dict[str, object]]:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "gpt4o_reviews.jsonl"
    return [json.loads(line)["review"] for line in path.read_text().splitlines()]


def _capable_deps(
    make_settings: SettingsFactory, backend: ScriptedLLM, **review: object
) -> ReviewDeps:
    settings = make_settings(
        llm={"models": {"reviewer": "openai/gpt-4o", "meta_reviewer": "openai/gpt-4o"}},
        review={"num_reviewers": 3, "num_reflections": 1, **review},
    )
    return ReviewDeps(gateway=Gateway(settings, backend=backend), settings=settings)


def test_a_capable_models_long_review_is_kept_whole(make_settings: SettingsFactory) -> None:
    long = max(_gpt4o_reviews(), key=lambda r: len(r["Questions"]) + len(r["Weaknesses"]))
    assert len(long["Questions"]) >= 8 and len(long["Weaknesses"]) >= 6

    def capable(request: LLMRequest) -> str:
        name = schema_name(request)
        if name == "ReflectionReply":
            return json.dumps({"thought": "Fine as it is. " * 40, "review": long, "done": True})
        if name == "MetaReviewReply":
            items = long["Weaknesses"]
            return json.dumps(
                {
                    "summary": long["Summary"],
                    "strengths": long["Strengths"],
                    "weaknesses": items,
                    "disagreements": items,
                }
            )
        return json.dumps(long)

    script = ScriptedLLM(capable)
    report = review({"paper_text": PAPER}, _capable_deps(make_settings, script))
    assert not report.failures and len(report.reviewers) == 3
    for reviewer in report.reviewers:
        assert reviewer.final.Questions == long["Questions"]
        assert reviewer.final.Weaknesses == long["Weaknesses"]
        assert len(reviewer.thoughts[0]) > 300  # over the compact bound, kept under full
    assert report.meta_review is not None and report.meta_review.weaknesses == long["Weaknesses"]
    # Full profile: the long guidelines and the whole-review output cap.
    first = script.requests[0]
    assert first.max_tokens == 8192 and "Overall" in first.messages[0].content
    assert len(first.messages[0].content) > 8000


def test_the_embedded_model_keeps_the_compact_bounds(make_settings: SettingsFactory) -> None:
    long = max(_gpt4o_reviews(), key=lambda r: len(r["Questions"]))
    script = ScriptedLLM(lambda request: json.dumps(long))
    deps = _deps(make_settings, script, num_reviewers=1, num_reflections=0)
    with pytest.raises(Exception, match="every reviewer failed"):
        review({"paper_text": PAPER}, deps)
    assert len(script.requests) == deps.settings.llm.structured_reasks + 1
    schema = (script.requests[0].response_format or {})["schema"]
    assert schema["properties"]["Questions"]["maxItems"] == 4
    assert len(script.requests[0].messages[0].content) < 3000  # the short guidelines


def test_a_runaway_reply_is_reasked_then_a_failure_with_the_error(
    make_settings: SettingsFactory,
) -> None:
    runaway = {**review_json(5), "Weaknesses": [f"weakness {i}" for i in range(21)]}
    obey = obedient_reviewer()

    def one_runaway(request: LLMRequest) -> str:
        if schema_name(request) == "ReviewForm" and "critical" in request.messages[2].content:
            return json.dumps(runaway)
        return obey(request)

    deps = _capable_deps(
        make_settings,
        ScriptedLLM(one_runaway),
        num_reviewers=2,
        num_reflections=0,
        personas=["balanced", "critical"],
    )
    report = review({"paper_text": PAPER}, deps)
    assert [r.index for r in report.reviewers] == [0]
    assert [f.index for f in report.failures] == [1]
    error = report.failures[0].error
    assert "Weaknesses" in error and "at most 20 items" in error
    from reviewer.review.report import render_html, render_markdown

    assert "at most 20 items" in render_markdown(report)
    assert "at most 20 items" in render_html(report)
