"""The accept/reject decision: mean Overall against a threshold, never the model's own word.

Each test here was checked against a bug planted in the product code (issue #24): an
optional ``Decision`` field that overrides the result, ``ReviewForm`` with ``extra="allow"``,
an "always reject" default rule, and ``>=`` turned into ``>`` at the threshold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from gateway.errors import SettingsError
from gateway.types import LLMRequest
from graphs.review import review_alone as review
from reviewer.review.decision import (
    Calibration,
    IsotonicCalibrator,
    LogisticCalibrator,
    decide,
    load_calibration,
)
from reviewer.review.form import ReviewForm, meta_review_reply, reflection_reply, review_form
from reviewer.review.reviewing import ReviewDeps
from tests.unit.review_script import obedient_reviewer, review_json, schema_name

SettingsFactory = Callable[..., Settings]
PAPER = "\n\n".join(
    [
        "SPARSE GADGETS FOR WIDGET LEARNING",
        "Abstract\nWe assemble widgets from few examples with sparse gadgets.",
        "1 Introduction\n" + "Widgets are hard to learn from few examples. " * 20,
        "2 Results\n" + "Accuracy reaches 91% after 300 steps. " * 20,
    ]
)
MODELS = ["local", "openai/gpt-4o"]  # the compact and the full output profile
FORBIDDEN_WORDS = ("decision", "accept", "reject", "recommend", "verdict")
BASE_MESSAGES = 3  # system, paper, persona: a first review before any re-ask


@pytest.fixture(autouse=True)
def _fresh_forms() -> Iterator[None]:
    """Build the profile forms anew in each test, so that every test reaches the builders
    (``functools.cache`` would otherwise hand out forms built before a mutant was switched on)."""
    for builder in (review_form, reflection_reply, meta_review_reply):
        builder.cache_clear()
    yield


def _deps(make_settings: SettingsFactory, backend: ScriptedLLM, **review: Any) -> ReviewDeps:
    model = review.pop("model", "local")
    settings = make_settings(
        llm={"models": {"reviewer": model, "meta_reviewer": model}},
        review={"num_reviewers": 3, "num_reflections": 0, **review},
    )
    return ReviewDeps(gateway=Gateway(settings, backend=backend), settings=settings)


def _forms(make_settings: SettingsFactory) -> dict[str, type[ReviewForm]]:
    """The record type and the form each output profile sends to the model."""
    settings = make_settings()
    return {"record": ReviewForm} | {m: review_form(settings.profile(m)) for m in MODELS}


def _property_names(schema: Any) -> Iterator[str]:
    """Every property name anywhere in a JSON schema (nested models and $defs included)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                yield from value
            yield from _property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _property_names(item)


def _decision_like(names: Iterator[str] | list[str]) -> list[str]:
    return [n for n in names if any(word in n.lower() for word in FORBIDDEN_WORDS)]


# --- The form has no decision field, and refuses one ------------------------------------------


def test_no_review_form_has_a_decision_field(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    for name, form in _forms(make_settings).items():
        assert _decision_like(list(form.model_fields)) == [], name
        assert _decision_like(_property_names(form.model_json_schema())) == [], name
        assert form.model_json_schema()["additionalProperties"] is False, name
    for model in MODELS:
        schema = reflection_reply(settings.profile(model)).model_json_schema()
        assert _decision_like(_property_names(schema)) == [], model


@pytest.mark.parametrize("extra", [{"Decision": "Accept"}, {"accept": True}, {"Notes": "x"}])
def test_every_review_form_refuses_an_extra_key(
    make_settings: SettingsFactory, extra: dict[str, object]
) -> None:
    settings = make_settings()
    for name, form in _forms(make_settings).items():
        assert form.model_validate(review_json(2)).Overall == 2, name  # valid without it
        with pytest.raises(ValidationError) as caught:
            form.model_validate({**review_json(2), **extra})
        assert [e["type"] for e in caught.value.errors()] == ["extra_forbidden"], name
    for model in MODELS:
        reply = {"thought": "t", "review": {**review_json(2), **extra}, "done": True}
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            reflection_reply(settings.profile(model)).model_validate(reply)


@pytest.mark.parametrize("model", MODELS)
def test_the_schema_sent_to_the_model_has_no_decision_field(
    make_settings: SettingsFactory, model: str
) -> None:
    script = ScriptedLLM(obedient_reviewer(lambda request: 7, done_after=1))
    review({"paper_text": PAPER}, _deps(make_settings, script, model=model, num_reflections=1))
    sent = {schema_name(r): r for r in script.requests}
    assert {"ReviewForm", "ReflectionReply"} <= set(sent)
    for name in ("ReviewForm", "ReflectionReply"):
        request = sent[name]
        names = list(_property_names(request.response_format))
        assert "Overall" in names, f"{model} {name}: no schema in {request.response_format}"
        assert _decision_like(names) == [], f"{model} {name}"
        instruction = request.messages[-1].content  # the schema also goes into the prompt
        assert '"Overall"' in instruction and '"Decision"' not in instruction


# --- A reply that carries the model's own "Accept" ---------------------------------------------


def _accepting_reviewer(overall: int) -> Callable[[LLMRequest], str]:
    """Each first attempt adds ``"Decision": "Accept"`` (reflections too); a re-ask drops it."""
    obey = obedient_reviewer(lambda request: overall, done_after=1)

    def reply(request: LLMRequest) -> str:
        text = obey(request)
        name = schema_name(request)
        first_attempt = request.messages[-1].content.find("did not validate") < 0
        if name == "ReviewForm" and first_attempt:
            return json.dumps({**json.loads(text), "Decision": "Accept"})
        if name == "ReflectionReply" and first_attempt:
            data = json.loads(text)
            return json.dumps({**data, "review": {**data["review"], "Decision": "Accept"}})
        return text

    return reply


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("reflections", [0, 1])
def test_a_reply_saying_accept_with_overall_2_is_reasked_and_rejected(
    make_settings: SettingsFactory, model: str, reflections: int
) -> None:
    script = ScriptedLLM(_accepting_reviewer(overall=2))
    deps = _deps(make_settings, script, model=model, num_reflections=reflections)
    report = review({"paper_text": PAPER}, deps)
    assert not report.failures and len(report.reviewers) == 3
    reasks = [r for r in script.requests if "did not validate" in r.messages[-1].content]
    assert len(reasks) == 3 * (1 + reflections)  # every reply with "Decision" was refused
    for request in reasks:
        assert "Decision" in request.messages[-1].content
        assert "Extra inputs are not permitted" in request.messages[-1].content
    for reviewer in report.reviewers:
        for form in reviewer.rounds:
            assert set(form.model_dump()) == set(ReviewForm.model_fields)
    assert report.scores["Overall"].values == [2, 2, 2]
    assert report.decision.decision == "reject"
    assert report.decision.overall_mean == 2.0


def test_a_model_that_always_says_accept_never_gets_an_accept(
    make_settings: SettingsFactory,
) -> None:
    always = obedient_reviewer(lambda request: 2)

    def stubborn(request: LLMRequest) -> str:
        text = always(request)
        if schema_name(request) == "ReviewForm":
            return json.dumps({**json.loads(text), "Decision": "Accept"})
        return text

    script = ScriptedLLM(stubborn)
    deps = _deps(make_settings, script, num_reviewers=1)
    with pytest.raises(Exception, match="every reviewer failed") as caught:
        review({"paper_text": PAPER}, deps)
    assert "Decision" in str(caught.value)
    assert len(script.requests) == deps.settings.llm.structured_reasks + 1


# --- The default rule: mean Overall >= review.accept_threshold, no calibration ----------------


def _by_persona(values: dict[str, int]) -> Callable[[LLMRequest], int]:
    """Overall per reviewer, told apart by the persona prompt (the third message)."""
    prompts = {name: _persona_text(name) for name in values}

    def overall(request: LLMRequest) -> int:
        stance = request.messages[2].content
        return next(values[name] for name, text in prompts.items() if text in stance)

    return overall


def _persona_text(name: str) -> str:
    path = (
        Path(__file__).resolve().parents[2]
        / "reviewer"
        / "review"
        / "prompts"
        / f"persona_{name}.j2"
    )
    return path.read_text().strip()[:40]


def test_an_all_7s_ensemble_is_accepted_without_calibration(
    make_settings: SettingsFactory,
) -> None:
    script = ScriptedLLM(obedient_reviewer(lambda request: 7))
    deps = _deps(make_settings, script)
    assert deps.calibration is None and deps.settings.review.accept_threshold == 6.0
    report = review({"paper_text": PAPER}, deps)
    decision = report.decision
    assert report.scores["Overall"].values == [7, 7, 7]
    assert decision.decision == "accept" and decision.overall_mean == 7.0
    assert decision.threshold == 6.0 and not decision.calibrated
    assert decision.probability is None


@pytest.mark.parametrize(
    ("overall", "expected"),
    [
        ({"balanced": 6, "critical": 5, "generous": 7}, "accept"),  # mean exactly 6
        ({"balanced": 6, "critical": 6, "generous": 6}, "accept"),
        ({"balanced": 6, "critical": 5, "generous": 6}, "reject"),  # mean 5.67
        ({"balanced": 10, "critical": 1, "generous": 6}, "reject"),  # mean 5.67
        ({"balanced": 10, "critical": 1, "generous": 7}, "accept"),  # mean 6
    ],
)
def test_the_default_rule_accepts_at_the_threshold_and_rejects_below(
    make_settings: SettingsFactory, overall: dict[str, int], expected: str
) -> None:
    script = ScriptedLLM(obedient_reviewer(_by_persona(overall)))
    report = review({"paper_text": PAPER}, _deps(make_settings, script))
    assert sorted(report.scores["Overall"].values) == sorted(overall.values())
    assert report.decision.decision == expected
    assert report.decision.overall_mean == pytest.approx(sum(overall.values()) / 3)


@pytest.mark.parametrize(
    ("threshold", "overall", "expected"),
    [(4.5, 5, "accept"), (4.5, 4, "reject"), (5.0, 5, "accept"), (8.0, 7, "reject")],
)
def test_the_default_rule_reads_review_accept_threshold(
    make_settings: SettingsFactory, threshold: float, overall: int, expected: str
) -> None:
    script = ScriptedLLM(obedient_reviewer(lambda request: overall))
    deps = _deps(make_settings, script, accept_threshold=threshold)
    decision = review({"paper_text": PAPER}, deps).decision
    assert (decision.decision, decision.threshold) == (expected, threshold)


@pytest.mark.parametrize(
    ("mean", "threshold", "expected"),
    [
        (6.0, 6.0, "accept"),
        (math.nextafter(6.0, 0), 6.0, "reject"),
        (5.999, 6.0, "reject"),
        (6.001, 6.0, "accept"),
        (4.5, 4.5, "accept"),
        (4.49, 4.5, "reject"),
        (10.0, 10.0, "accept"),
        (1.0, 1.0, "accept"),
        (1.0, 6.0, "reject"),
        (10.0, 6.0, "accept"),
    ],
)
def test_decide_without_calibration_at_the_boundary(
    mean: float, threshold: float, expected: str
) -> None:
    decision = decide(mean, None, threshold)
    assert decision.decision == expected
    assert decision.overall_mean == mean and decision.threshold == threshold
    assert decision.probability is None and decision.calibrated is False
    # The rule, and the command and setting that turn on a fitted one.
    assert decision.provenance == (
        f"uncalibrated: mean Overall >= {threshold:g}; run `reviewer calibrate` and set "
        "review.calibration_path for a fitted threshold and probability"
    )


# --- A fitted calibration: its threshold, its probability, its provenance ---------------------


def _calibration(threshold: float, a: float = 1.0, b: float = -5.5) -> Calibration:
    return Calibration(
        threshold=threshold, calibrator=LogisticCalibrator(a=a, b=b), provenance="fit on 40 papers"
    )


@pytest.mark.parametrize(
    ("mean", "threshold", "expected"),
    [
        (5.5, 5.5, "accept"),
        (math.nextafter(5.5, 0), 5.5, "reject"),
        (3.0, 3.0, "accept"),
        (2.9, 3.0, "reject"),
        (7.0, 7.5, "reject"),
    ],
)
def test_a_calibration_decides_by_its_own_threshold(
    mean: float, threshold: float, expected: str
) -> None:
    for rule in (1.0, 6.0, 10.0):  # review.accept_threshold plays no part
        decision = decide(mean, _calibration(threshold), rule)
        assert decision.decision == expected
        assert decision.threshold == threshold and decision.calibrated is True
        assert decision.overall_mean == mean and decision.provenance == "fit on 40 papers"


def test_a_calibration_gives_the_probability_at_the_mean() -> None:
    decision = decide(6.5, _calibration(5.5, a=2.0, b=-12.0), 6.0)
    assert decision.probability == pytest.approx(1 / (1 + math.exp(-1.0)))
    isotonic = Calibration(
        threshold=5.0,
        calibrator=IsotonicCalibrator(x=[4.0, 6.0], y=[0.2, 0.6]),
        provenance="iso",
    )
    assert decide(5.5, isotonic, 6.0).probability == pytest.approx(0.5)


def test_a_calibrated_review_reports_the_fitted_threshold(
    make_settings: SettingsFactory,
) -> None:
    script = ScriptedLLM(obedient_reviewer(lambda request: 5))
    deps = _deps(make_settings, script)
    deps.calibration = _calibration(4.5)
    decision = review({"paper_text": PAPER}, deps).decision
    assert (decision.decision, decision.threshold, decision.calibrated) == ("accept", 4.5, True)
    assert decision.probability == pytest.approx(1 / (1 + math.exp(0.5)))


@pytest.mark.parametrize(
    ("a", "b", "score", "expected"),
    [
        (0.0, 0.0, 5.0, 0.5),
        (1.0, -5.0, 6.0, 1 / (1 + math.exp(-1.0))),
        (1.0, -5.0, 4.0, 1 / (1 + math.exp(1.0))),
        (2.0, 1.0, 0.0, 1 / (1 + math.exp(-1.0))),  # the intercept counts on its own
        (0.5, 0.0, 2.0, 1 / (1 + math.exp(-1.0))),  # the slope multiplies the score
        (100.0, 0.0, 10.0, 1.0),  # z = 1000: no overflow
        (100.0, 0.0, -10.0, 0.0),  # z = -1000: no overflow
        (-1.0, 0.0, 3.0, 1 / (1 + math.exp(3.0))),
    ],
)
def test_logistic_probability(a: float, b: float, score: float, expected: float) -> None:
    assert LogisticCalibrator(a=a, b=b).probability(score) == pytest.approx(expected, abs=1e-12)


def test_isotonic_probability_interpolates_and_clips() -> None:
    cal = IsotonicCalibrator(x=[2.0, 4.0, 8.0], y=[0.1, 0.3, 0.9])
    assert cal.probability(3.0) == pytest.approx(0.2)
    assert cal.probability(6.0) == pytest.approx(0.6)
    assert cal.probability(1.0) == pytest.approx(0.1) and cal.probability(9.0) == 0.9
    with pytest.raises(ValidationError):
        IsotonicCalibrator(x=[], y=[])


@pytest.mark.parametrize(
    ("threshold", "valid"), [(1, True), (10, True), (0.99, False), (10.01, False)]
)
def test_a_calibration_threshold_lies_on_the_overall_scale(threshold: float, valid: bool) -> None:
    data = {"threshold": threshold, "calibrator": {"kind": "logistic", "a": 1, "b": 0}}
    if valid:
        assert Calibration.model_validate({**data, "provenance": "p"}).threshold == threshold
    else:
        with pytest.raises(ValidationError):
            Calibration.model_validate({**data, "provenance": "p"})


def test_load_calibration_round_trips_and_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(_calibration(5.5).model_dump_json())
    assert load_calibration(path) == _calibration(5.5)
    with pytest.raises(SettingsError, match="not found; run `reviewer calibrate`"):
        load_calibration(tmp_path / "missing.json")
    path.write_text("{not json")
    with pytest.raises(SettingsError, match="not a valid calibration file"):
        load_calibration(path)
    path.write_text(json.dumps({"threshold": 11, "calibrator": {"kind": "logistic"}}))
    with pytest.raises(SettingsError, match="not a valid calibration file"):
        load_calibration(path)


# --- The record types hold scores only inside their ranges -------------------------------------

SCORE_RANGES = {
    **dict.fromkeys(
        (
            "Originality",
            "Quality",
            "Clarity",
            "Significance",
            "Soundness",
            "Presentation",
            "Contribution",
        ),
        (1, 4),
    ),
    "Overall": (1, 10),
    "Confidence": (1, 5),
}


@pytest.mark.parametrize(("name", "bounds"), SCORE_RANGES.items())
def test_every_score_is_checked_against_its_range(
    make_settings: SettingsFactory, name: str, bounds: tuple[int, int]
) -> None:
    low, high = bounds
    for form in _forms(make_settings).values():
        for value in (low, high):
            assert getattr(form.model_validate({**review_json(5), name: value}), name) == value
        for value in (low - 1, high + 1):
            with pytest.raises(ValidationError, match=name):
                form.model_validate({**review_json(5), name: value})


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("Summary", "", False),
        ("Strengths", [], False),
        ("Weaknesses", [], False),
        ("Strengths", [""], False),
        ("Questions", [], True),
        ("Limitations", [], True),
        ("Questions", [""], False),
        ("Ethical_Concerns_Text", "", True),
    ],
)
def test_empty_text_where_the_form_needs_some(
    make_settings: SettingsFactory, name: str, value: object, valid: bool
) -> None:
    for form in _forms(make_settings).values():
        data = {**review_json(5), name: value}
        if valid:
            assert getattr(form.model_validate(data), name) == value
        else:
            with pytest.raises(ValidationError, match=name):
                form.model_validate(data)


@pytest.mark.parametrize("model", MODELS)
def test_each_profile_form_holds_replies_to_its_own_bounds(
    make_settings: SettingsFactory, model: str
) -> None:
    profile = make_settings().profile(model)
    form = review_form(profile)
    items, chars, summary = (
        profile.review_items,
        profile.review_item_chars,
        profile.review_summary_chars,
    )
    at_bounds = {
        "Summary": "s" * summary,
        "Strengths": ["a" * chars] * items,
        "Weaknesses": ["w"],  # one character is text enough
        "Questions": ["q" * chars] * items,
        "Limitations": [],
        "Ethical_Concerns_Text": "e" * chars,
    }
    assert form.model_validate({**review_json(5), **at_bounds}).Strengths == at_bounds["Strengths"]
    over = {
        "Summary": "s" * (summary + 1),
        "Strengths": ["a" * (chars + 1)],
        "Weaknesses": ["w"] * (items + 1),
        "Questions": ["q" * (chars + 1)],
        "Limitations": ["l"] * (items + 1),
        "Ethical_Concerns_Text": "e" * (chars + 1),
    }
    for name, value in over.items():
        with pytest.raises(ValidationError, match=name):
            form.model_validate({**review_json(5), name: value})
    ReviewForm.model_validate({**review_json(5), **over})  # the record type keeps any length


@pytest.mark.parametrize("model", MODELS)
def test_each_profile_bounds_the_reflection_and_the_meta_review(
    make_settings: SettingsFactory, model: str
) -> None:
    profile = make_settings().profile(model)
    reflection = reflection_reply(profile)
    thought = "t" * profile.review_thought_chars
    reply = {"thought": thought, "review": review_json(5), "done": False}
    assert reflection.model_validate(reply).thought == thought
    with pytest.raises(ValidationError, match="thought"):
        reflection.model_validate({**reply, "thought": thought + "t"})
    with pytest.raises(ValidationError, match="Summary"):
        long_summary = {**review_json(5), "Summary": "s" * (profile.review_summary_chars + 1)}
        reflection.model_validate({**reply, "review": long_summary})
    meta = meta_review_reply(profile)
    items, chars = profile.review_items, profile.review_item_chars
    valid = {
        "summary": "s" * profile.review_summary_chars,
        "strengths": ["a" * chars] * items,
        "weaknesses": ["w"],
        "disagreements": [],
    }
    assert meta.model_validate(valid).strengths == valid["strengths"]
    for name, value in {
        "summary": "s" * (profile.review_summary_chars + 1),
        "strengths": [],
        "weaknesses": ["w"] * (items + 1),
        "disagreements": ["d" * (chars + 1)],
    }.items():
        with pytest.raises(ValidationError, match=name):
            meta.model_validate({**valid, name: value})


# --- The schemas the model reads and review.json's, as committed --------------------------------


def test_the_review_schemas_are_the_committed_ones() -> None:
    """A field, bound or description the model reads changes only on purpose: regenerate
    with ``.venv/bin/python tests/fixtures/build_review_schemas.py`` and commit the diff."""
    from tests.fixtures.build_review_schemas import OUT, review_schemas

    committed = json.loads(OUT.read_text("utf-8"))
    current = json.loads(json.dumps(review_schemas()))
    assert sorted(current) == sorted(committed)
    for name, schema in current.items():
        assert schema == committed[name], f"{name} changed; see the test's docstring"


def test_record_defaults_and_bounds() -> None:
    from reviewer.review.form import (
        CutRecord,
        Decision,
        Excerpt,
        InjectionFlag,
        PaperText,
        ReviewerFailure,
        ReviewerResult,
        ScoreStats,
    )

    form = ReviewForm.model_validate(
        {k: v for k, v in review_json(5).items() if k != "Ethical_Concerns_Text"}
    )
    assert form.Ethical_Concerns_Text == ""
    first, last = (
        ReviewForm.model_validate(review_json(3)),
        ReviewForm.model_validate(review_json(6)),
    )
    result = ReviewerResult(
        index=0, model="m", persona="p", rounds=[first, last], stopped_early=False
    )
    assert result.final == last and result.thoughts == []
    for bad in (
        {"index": -1, "rounds": [first]},
        {"index": 0, "rounds": []},
    ):
        with pytest.raises(ValidationError):
            ReviewerResult(model="m", persona="p", stopped_early=False, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ReviewerFailure(index=-1, model="m", error="e")
    with pytest.raises(ValidationError):
        ScoreStats(mean=1, std=-0.1, min=1, max=1, values=[1])
    decision = {"decision": "accept", "overall_mean": 6, "threshold": 6, "calibrated": True}
    assert Decision(**decision, provenance="p").probability is None  # type: ignore[arg-type]
    for probability in (-0.01, 1.01):
        with pytest.raises(ValidationError):
            Decision(**decision, provenance="p", probability=probability)  # type: ignore[arg-type]
    for probability in (0.0, 1.0):
        assert Decision(**decision, provenance="p", probability=probability).probability == (
            probability
        )
    flag = InjectionFlag(kind="hidden_text", excerpt="x" * 300, reason="r")
    assert flag.page is None
    with pytest.raises(ValidationError):
        InjectionFlag(kind="hidden_text", excerpt="x" * 301, reason="r")
    with pytest.raises(ValidationError):
        CutRecord(section="s", chars=-1, reason="r")
    shown = Excerpt(text="t", budget_tokens=10, estimated_tokens=1, kept_sections=["all"])
    assert not shown.truncated and shown.cut == []
    cut = shown.model_copy(update={"cut": [CutRecord(section="s", chars=0, reason="r")]})
    assert cut.truncated
    paper = PaperText(source="s", text="t")
    assert (paper.title, paper.pages, paper.sections) == ("", None, [])
