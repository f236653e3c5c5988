"""One reviewer (a review plus self-reflection rounds) and the area chair's meta-review."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from core.literature.factory import build_literature
from core.literature.models import Literature
from core.settings import Settings
from gateway import Gateway
from gateway.profiles import OutputProfile
from gateway.prompts import render
from reviewer.review.decision import Calibration, load_calibration
from reviewer.review.fewshot import FewshotExample, load_fewshot, shown_example
from reviewer.review.form import (
    Excerpt,
    MetaReviewReply,
    ReviewerResult,
    meta_review_reply,
    reflection_reply,
    review_form,
)

PROMPTS = Path(__file__).parent / "prompts"
INSTRUCTION_TOKENS = 900  # the persona, the user instructions and the schema instruction
CHARS_PER_TOKEN = 3.5
Message = dict[str, str | bool]


@dataclass(frozen=True)
class ProgressEvent:
    """A reviewer finished a step: its review (round 0) or a reflection round."""

    reviewer: int
    round: int
    total_rounds: int
    done: bool


@dataclass
class ReviewDeps:
    """What the review graph's nodes need; passed as LangGraph's runtime context.

    ``literature`` is where the checks look references and prior work up; None: they say
    so and leave both unchecked."""

    gateway: Gateway
    settings: Settings
    calibration: Calibration | None = None
    fewshot: list[FewshotExample] = field(default_factory=list)
    on_progress: Callable[[ProgressEvent], None] | None = None
    literature: Literature | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        gateway: Gateway,
        *,
        calibrated: bool = True,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        literature: Literature | None = None,
    ) -> ReviewDeps:
        """The deps every caller uses: the calibration file (``review.calibration_path``,
        unless ``calibrated`` is False: calibration itself needs the raw mean Overall),
        ``review.num_fewshot`` few-shot examples and, when ``checks.enabled``, the literature
        cascade of ``literature.sources`` (``literature`` shares a caller's own)."""
        path = settings.review.calibration_path
        if literature is None and settings.checks.enabled:
            literature = build_literature(settings)
        return cls(
            gateway=gateway,
            settings=settings,
            calibration=load_calibration(path) if path and calibrated else None,
            fewshot=load_fewshot(settings.review.num_fewshot),
            on_progress=on_progress,
            literature=literature,
        )

    def notify(self, event: ProgressEvent) -> None:
        """Report progress if anyone listens."""
        if self.on_progress is not None:
            self.on_progress(event)


def reviewer_model(settings: Settings, index: int) -> str:
    """The model of reviewer ``index``: review.models in turn, else llm.models.reviewer."""
    models = settings.review.models
    return models[index % len(models)] if models else settings.llm.models.reviewer


def ensemble_models(settings: Settings) -> list[str]:
    """The model of every reviewer in the ensemble, in reviewer order."""
    return [reviewer_model(settings, i) for i in range(settings.review.num_reviewers)]


def reviewer_persona(settings: Settings, index: int) -> str:
    """The persona name of reviewer ``index``, in turn."""
    personas = settings.review.personas
    return personas[index % len(personas)]


def _model_budget(deps: ReviewDeps, model: str) -> int:
    """Tokens of paper text that fit ``model``'s context beside everything else it is sent."""
    profile = deps.settings.profile(model)
    system = system_prompt(profile, deps.fewshot)
    return int(
        deps.gateway.context_tokens(model)
        - profile.review_max_tokens  # the reply
        - profile.previous_review_tokens  # a reflection round repeats the previous review
        - len(system) / CHARS_PER_TOKEN
        - INSTRUCTION_TOKENS
    )


def excerpt_budget(deps: ReviewDeps, evidence: str = "") -> int:
    """Tokens of paper text that fit every reviewer model's context with room to answer;
    the checks' ``evidence`` block is shown beside the paper, so its size comes out of it."""
    settings = deps.settings
    budget = min(_model_budget(deps, m) for m in set(ensemble_models(settings)))
    if settings.review.max_paper_tokens is not None:
        budget = min(budget, settings.review.max_paper_tokens)
    return max(budget - math.ceil(len(evidence) / CHARS_PER_TOKEN), 500)


def evidence_chars(settings: Settings) -> int:
    """Characters of the checks' evidence block every reviewer's profile allows."""
    models = set(ensemble_models(settings))
    return min(settings.profile(m).checks_evidence_chars for m in models)


def _examples_text(examples: list[FewshotExample], profile: OutputProfile) -> str:
    parts = []
    for i, example in enumerate(examples):
        shown = shown_example(example, profile)
        parts.append(
            render(
                PROMPTS,
                "fewshot_example.j2",
                index=i + 1,
                paper=shown.paper_excerpt,
                review=shown.review.model_dump_json(indent=1),
            )
        )
    return "\n\n".join(parts)


def system_prompt(profile: OutputProfile, examples: list[FewshotExample]) -> str:
    """The reviewer's system prompt: the profile's guidelines and the few-shot examples.

    It holds nothing specific to the paper or the reviewer, so providers that cache
    prompt prefixes serve it from cache for every call of every review.
    """
    return render(
        PROMPTS,
        "review_system.j2",
        guidelines=render(PROMPTS, f"guidelines_{profile.guidelines}.j2"),
        examples=_examples_text(examples, profile),
    )


def _cut_note(shown: Excerpt) -> str:
    if not shown.cut:
        return ""
    parts = ", ".join(f"{c.section} ({c.reason})" for c in shown.cut)
    return f"to fit the context window, parts of the paper were shortened or left out: {parts}."


def review_messages(
    shown: Excerpt,
    persona: str,
    examples: list[FewshotExample],
    profile: OutputProfile,
    evidence: str = "",
) -> list[Message]:
    """System and user messages of a first review.

    The persona comes last, after the paper and the checks' ``evidence`` block (the same for
    every reviewer), so every reviewer's prompt shares the long prefix (guidelines, examples,
    paper, evidence): providers that cache prompts (``cache`` marks the breakpoints) and the
    embedded server's prefix reuse then process it only once.
    """
    paper = render(
        PROMPTS,
        "review_paper.j2",
        cut_note=_cut_note(shown),
        paper=shown.text,
        evidence=evidence,
    )
    stance = render(PROMPTS, "review_user.j2", persona=render(PROMPTS, f"persona_{persona}.j2"))
    return [
        {"role": "system", "content": system_prompt(profile, examples), "cache": True},
        {"role": "user", "content": paper, "cache": True},
        {"role": "user", "content": stance},
    ]


class SamplingArgs(TypedDict):
    """What every call of one reviewer shares."""

    model: str
    temperature: float
    max_tokens: int


def run_reviewer(
    index: int, shown: Excerpt, deps: ReviewDeps, evidence: str = ""
) -> ReviewerResult:
    """Reviewer ``index``: a review, then up to ``num_reflections`` rounds until it is done.
    ``evidence`` (the checks' block) is shown after the paper; it never sets a score."""
    settings, gw = deps.settings, deps.gateway
    model, persona = reviewer_model(settings, index), reviewer_persona(settings, index)
    profile = settings.profile(model)
    total = settings.review.num_reflections
    base = review_messages(shown, persona, deps.fewshot, profile, evidence)
    sampling = SamplingArgs(
        model=model,
        temperature=settings.review.temperature,
        max_tokens=profile.review_max_tokens,
    )
    review = gw.complete(base, role="reviewer", schema=review_form(profile), **sampling)
    rounds, thoughts, stopped = [review], [], False
    deps.notify(ProgressEvent(index, 0, total, done=total == 0))
    for number in range(1, total + 1):
        messages: list[Message] = [
            *base,
            {"role": "assistant", "content": rounds[-1].model_dump_json()},
            {
                "role": "user",
                "content": render(PROMPTS, "reflection_user.j2", round=number, total=total),
            },
        ]
        reply = gw.complete(messages, role="reviewer", schema=reflection_reply(profile), **sampling)
        rounds.append(reply.review)
        thoughts.append(reply.thought)
        deps.notify(ProgressEvent(index, number, total, done=reply.done or number == total))
        if reply.done:
            stopped = number < total
            break
    return ReviewerResult(
        index=index,
        model=model,
        persona=persona,
        rounds=rounds,
        thoughts=thoughts,
        stopped_early=stopped,
    )


def meta_review(results: list[ReviewerResult], title: str, deps: ReviewDeps) -> MetaReviewReply:
    """The area chair's consensus text over every reviewer's final review."""
    finals = [r.final.model_dump() for r in sorted(results, key=lambda r: r.index)]
    profile = deps.settings.profile(deps.settings.llm.models.meta_reviewer)
    messages = [
        {"role": "system", "content": render(PROMPTS, "meta_system.j2")},
        {
            "role": "user",
            "content": render(
                PROMPTS,
                "meta_user.j2",
                title=title or "(untitled)",
                count=len(finals),
                reviews=json.dumps(finals, indent=1),
            ),
        },
    ]
    return deps.gateway.complete(
        messages,
        role="meta_reviewer",
        schema=meta_review_reply(profile),
        max_tokens=profile.review_max_tokens,
    )
