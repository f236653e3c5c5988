"""The review records as the rest of the reviewer reads them (issue #24,
``reviewer/review/form.py``).

The forms a model fills are pinned by ``test_review_decision_rules.py`` (no decision field,
extra keys refused, score ranges, profile bounds, the committed JSON schemas). These tests
pin what the aggregation, the report and the web pages rely on: the nine NeurIPS scores by
name and in order, the final round of a reviewer, and a stored ``review.json`` read back
with its defaults and bounds.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reviewer.review.aggregate import aggregate_scores
from reviewer.review.form import (
    SCORE_FIELDS,
    PaperText,
    ReflectionReply,
    ReviewerResult,
    ReviewForm,
    ReviewReport,
)
from tests.unit.review_script import review_json

NEURIPS_SCORES = [
    "Originality",
    "Quality",
    "Clarity",
    "Significance",
    "Soundness",
    "Presentation",
    "Contribution",
    "Overall",
    "Confidence",
]


def _form(overall: int, sub: int, confidence: int) -> ReviewForm:
    scores = dict.fromkeys(NEURIPS_SCORES[:7], sub) | {"Overall": overall}
    return ReviewForm.model_validate({**review_json(overall), **scores, "Confidence": confidence})


def _reviewer(index: int, *rounds: ReviewForm) -> ReviewerResult:
    return ReviewerResult(
        index=index, model="local", persona="balanced", rounds=list(rounds), stopped_early=False
    )


def test_the_ensemble_is_scored_on_the_nine_neurips_scores_of_each_final_review() -> None:
    reviewers = [
        _reviewer(1, _form(9, 4, 1), _form(6, 3, 5)),  # revised in its reflection
        _reviewer(0, _form(2, 1, 2)),
    ]
    scores = aggregate_scores(reviewers)
    assert list(scores) == list(SCORE_FIELDS) == NEURIPS_SCORES  # the report's row order
    assert scores["Overall"].values == [2, 6]  # by reviewer index, final rounds only
    assert (scores["Overall"].mean, scores["Overall"].min, scores["Overall"].max) == (4.0, 2, 6)
    assert scores["Confidence"].values == [2, 5]
    for name in NEURIPS_SCORES[:7]:
        assert scores[name].values == [1, 3], name
    same = aggregate_scores([_reviewer(0, _form(5, 2, 3)), _reviewer(1, _form(5, 2, 3))])
    assert same["Overall"].std == 0.0 and same["Overall"].mean == 5.0  # no spread is valid


def _stored_report(**changes: Any) -> dict[str, Any]:
    """A ``review.json`` with only what every release wrote (no optional keys)."""
    final = review_json(6)
    data: dict[str, Any] = {
        "paper": {"source": "paper.pdf", "chars": 1200},
        "shown": {"text": "", "budget_tokens": 4000, "estimated_tokens": 300, "kept_sections": []},
        "reviewers": [
            {
                "index": 0,
                "model": "openai/gpt-4o",
                "persona": "balanced",
                "rounds": [final],
                "stopped_early": False,
            }
        ],
        "meta_review": None,
        "scores": {
            name: {"mean": 6.0, "std": 0.0, "min": 6, "max": 6, "values": [6]}
            for name in NEURIPS_SCORES
        },
        "decision": {
            "decision": "accept",
            "overall_mean": 6.0,
            "threshold": 6.0,
            "calibrated": False,
            "provenance": "uncalibrated",
        },
        "usage": {"calls": 1, "cost_usd": 0.01},
        "wall_time_s": 0.0,
    }
    return data | changes


def test_a_stored_review_without_optional_keys_reads_back_with_empty_defaults() -> None:
    report = ReviewReport.model_validate(_stored_report())
    assert (report.injection_flags, report.failures, report.ledger) == ([], [], [])
    assert (report.settings, report.models, report.meta_review_error) == ({}, [], None)
    assert (report.paper.title, report.paper.pages) == ("", None)
    assert report.shown.cut == [] and not report.shown.truncated
    assert report.reviewers[0].thoughts == [] and report.reviewers[0].final.Overall == 6
    assert report.decision.probability is None
    assert ReviewReport.model_validate_json(report.model_dump_json()) == report


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"wall_time_s": -0.5}, "wall_time_s"),
        ({"paper": {"source": "p", "chars": -1}}, "chars"),
        ({"reviewers": []}, None),  # valid: every reviewer may have failed
        ({"decision": {"decision": "maybe"}}, "decision"),
    ],
)
def test_a_stored_review_is_checked_against_the_records_bounds(
    changes: dict[str, Any], field: str | None
) -> None:
    data = _stored_report(**changes)
    if field is None:
        assert ReviewReport.model_validate(data).reviewers == []
        return
    with pytest.raises(ValidationError, match=field):
        ReviewReport.model_validate(data)


def test_a_reflection_reply_needs_its_thought_its_review_and_done() -> None:
    reply = {"thought": "Raise Clarity.", "review": review_json(5), "done": True}
    parsed = ReflectionReply.model_validate(reply)
    assert (parsed.thought, parsed.review.Overall, parsed.done) == ("Raise Clarity.", 5, True)
    for name in reply:
        with pytest.raises(ValidationError, match=name):
            ReflectionReply.model_validate({k: v for k, v in reply.items() if k != name})


def test_an_extracted_paper_always_says_where_it_came_from() -> None:
    """``PaperInfo.source`` in review.json is taken from it."""
    assert PaperText(source="paper.pdf", text="t").source == "paper.pdf"
    with pytest.raises(ValidationError, match="source"):
        PaperText.model_validate({"text": "t"})
