"""Output profiles: how much a model is asked to write and shown, decided per model in one place.

``compact`` keeps a grammar-constrained small model (the embedded 135M one) inside its token
limit: few, short list items, short thoughts, cut few-shot examples and context. ``full`` is
for capable provider models: NeurIPS-length reviews (only guard rails against runaway output),
whole earlier sections for the writer, The AI Scientist's citation-round sizes, and output
caps sized for long replies. Forms, prompts and caps read the profile of the model they ask;
:func:`profile_for` is the only place that decides which profile a model gets.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProfileName = Literal["compact", "full"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("compact", "full")
Guidelines = Literal["short", "full"]
LOCAL_MODEL = "local"


class OutputProfile(BaseModel):
    """Every size bound a model's replies and prompts are held to (``None``: no cut)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)

    name: ProfileName = Field(description="Which profile this is.")
    default_max_tokens: int = Field(
        ge=64, description="Cap on generated tokens of a call that names no cap of its own."
    )
    # The reviewer.
    review_max_tokens: int = Field(
        ge=256, description="Cap on generated tokens of each review, reflection and meta-review."
    )
    previous_review_tokens: int = Field(
        ge=100,
        description="Context kept free for the previous review that a reflection round repeats.",
    )
    review_items: int = Field(
        ge=1,
        description="Most items in a review's Strengths, Weaknesses, Questions and Limitations "
        "(and a meta-review's lists).",
    )
    review_item_chars: int = Field(ge=50, description="Longest single item of those lists.")
    review_summary_chars: int = Field(
        ge=100, description="Longest review Summary or meta-review summary."
    )
    review_thought_chars: int = Field(
        ge=50, description="Longest reflection thought of a reviewer."
    )
    guidelines: Guidelines = Field(
        description="Reviewer instructions: the full venue guidelines, or a short version."
    )
    fewshot_paper_chars: int | None = Field(
        ge=200, description="Characters of a few-shot example's paper shown; None: the whole."
    )
    checks_evidence_chars: int = Field(
        ge=0,
        description="Characters of the checks' evidence block shown to each reviewer (taken "
        "from the paper's budget; 0: none).",
    )
    # Ideas.
    ideas_per_reply: int = Field(ge=1, description="Most ideas accepted in one reply.")
    idea_thought_chars: int = Field(
        ge=50, description="Longest thought of an idea, reflection or novelty reply."
    )
    idea_experiment_chars: int = Field(
        ge=200, description="Longest Experiment field of an idea in a reply."
    )
    novelty_closest_papers: int = Field(
        ge=1, description="Most closest-paper ids a novelty verdict may list."
    )
    novelty_history_titles: int | None = Field(
        ge=1,
        description="Titles shown per earlier query of a novelty check (the latest results are "
        "shown in full); None: all.",
    )
    idea_code_chars: int | None = Field(
        ge=200, description="Characters of experiment.py shown to the idea generator; None: all."
    )
    novelty_abstract_chars: int | None = Field(
        ge=0, description="Characters of each abstract shown in a novelty round; None: all."
    )
    idea_max_tokens: int = Field(
        ge=64, description="Cap on generated tokens of each idea, reflection and novelty reply."
    )
    # The literature review (scientist.survey) and the experiment plan (scientist.plan).
    survey_abstract_chars: int | None = Field(
        ge=0, description="Characters of a paper's abstract shown when summarising it; None: all."
    )
    survey_text_chars: int = Field(
        ge=50,
        description="Longest query, paper summary, relation, theme name or gap in a reply.",
    )
    survey_items: int = Field(ge=1, description="Most themes, and most gaps, in a review reply.")
    survey_max_tokens: int = Field(
        ge=64, description="Cap on generated tokens of each query, summary or synthesis reply."
    )
    plan_text_chars: int = Field(
        ge=50, description="Longest hypothesis, run description, baseline, metric or criterion."
    )
    plan_items: int = Field(
        ge=1, description="Most hypotheses, baselines and metrics in an experiment plan."
    )
    plan_code_chars: int | None = Field(
        ge=200, description="Characters of experiment.py shown to the planner; None: all."
    )
    plan_max_tokens: int = Field(ge=64, description="Cap on generated tokens of the plan reply.")
    # The write-up.
    section_max_tokens: int = Field(
        ge=64, description="Cap on generated tokens per section draft, fix or shortening."
    )
    earlier_section_chars: int | None = Field(
        ge=100, description="Characters of each earlier section shown to the writer; None: all."
    )
    section_words_scale: float = Field(
        gt=0,
        le=4,
        description="Factor on each section's target length in words (1: the compact targets, "
        "about 3,000 words in all).",
    )
    citation_picks: int = Field(ge=1, description="Most papers picked per citation round.")
    citation_queries_per_reply: int = Field(
        ge=1,
        description="Most queries a citation reply may hold (writing.max_citation_queries of "
        "them are searched).",
    )
    citation_sentence_chars: int = Field(
        ge=50, description="Longest claim or supported sentence quoted in a citation reply."
    )
    citation_abstract_chars: int | None = Field(
        ge=50, description="Characters of each candidate's abstract shown; None: the whole."
    )
    citation_draft_chars: int | None = Field(
        ge=100,
        description="Characters of each section shown when asking for queries; None: all.",
    )
    citation_max_tokens: int = Field(
        ge=64, description="Cap on generated tokens of a citation query or selection reply."
    )
    # The coder (Aider).
    coder_max_tokens: int = Field(
        ge=64, description="Cap on tokens the coder model may generate per Aider reply."
    )
    coder_table_runs: int | None = Field(
        ge=2,
        description="Runs in the coder's results table (the baseline and the latest); None: all.",
    )
    # The gym's tool-using agent (scientist.gym.agent).
    agent_history_steps: int = Field(
        ge=1, description="Latest (action, observation) pairs a gym agent is shown each turn."
    )
    agent_observation_chars: int = Field(
        ge=200, description="Characters of each earlier observation shown to a gym agent."
    )
    agent_thought_chars: int = Field(ge=50, description="Longest thought in a gym agent's reply.")
    agent_max_tokens: int = Field(ge=64, description="Cap on generated tokens per gym action.")
    agent_memory_notes: int = Field(
        ge=1, description="Notes a gym agent's memory shows it each turn (most similar first)."
    )


# Today's bounds: replies of the 135M model under a JSON grammar fit its 8k context.
COMPACT_PROFILE: dict[str, Any] = {
    "name": "compact",
    "default_max_tokens": 1024,
    "review_max_tokens": 2048,
    "previous_review_tokens": 700,
    "review_items": 4,
    "review_item_chars": 300,
    "review_summary_chars": 800,
    "review_thought_chars": 300,
    "guidelines": "short",
    "fewshot_paper_chars": 2200,
    "checks_evidence_chars": 1200,
    "ideas_per_reply": 5,
    "idea_thought_chars": 600,
    "idea_experiment_chars": 2000,
    "novelty_closest_papers": 5,
    "novelty_history_titles": 5,
    "idea_code_chars": 3000,
    "novelty_abstract_chars": 300,
    "idea_max_tokens": 700,
    "survey_abstract_chars": 300,
    "survey_text_chars": 300,
    "survey_items": 4,
    "survey_max_tokens": 700,
    "plan_text_chars": 200,
    "plan_items": 3,
    "plan_code_chars": 2000,
    "plan_max_tokens": 1024,
    "section_max_tokens": 900,
    "earlier_section_chars": 700,
    "section_words_scale": 1.0,
    "citation_picks": 4,
    "citation_queries_per_reply": 8,
    "citation_sentence_chars": 200,
    "citation_abstract_chars": 300,
    "citation_draft_chars": 500,
    "citation_max_tokens": 600,
    "coder_max_tokens": 1024,
    "coder_table_runs": 4,
    "agent_history_steps": 3,
    "agent_observation_chars": 1500,
    "agent_thought_chars": 300,
    "agent_max_tokens": 700,
    "agent_memory_notes": 2,
}

# Guard rails only: GPT-4o's 500 stored ICLR reviews peak at 18 items and 797-character
# summaries; a reply past these bounds is runaway output, not a thorough review.
FULL_PROFILE: dict[str, Any] = {
    "name": "full",
    "default_max_tokens": 4096,
    "review_max_tokens": 8192,
    "previous_review_tokens": 4096,
    "review_items": 20,
    "review_item_chars": 2000,
    "review_summary_chars": 5000,
    "review_thought_chars": 5000,
    "guidelines": "full",
    "fewshot_paper_chars": None,
    "checks_evidence_chars": 12000,
    "ideas_per_reply": 20,
    "idea_thought_chars": 5000,
    "idea_experiment_chars": 8000,
    "novelty_closest_papers": 20,
    "novelty_history_titles": None,
    "idea_code_chars": None,
    "novelty_abstract_chars": None,
    "idea_max_tokens": 4096,
    "survey_abstract_chars": None,
    "survey_text_chars": 2000,
    "survey_items": 12,
    "survey_max_tokens": 4096,
    "plan_text_chars": 2000,
    "plan_items": 12,
    "plan_code_chars": None,
    "plan_max_tokens": 4096,
    "section_max_tokens": 4096,
    "earlier_section_chars": None,
    # About 4,500 words: an 8-page paper with its figures, not the compact model's 3,000.
    "section_words_scale": 1.5,
    "citation_picks": 20,
    "citation_queries_per_reply": 20,
    "citation_sentence_chars": 1000,
    "citation_abstract_chars": None,
    "citation_draft_chars": None,
    "citation_max_tokens": 2048,
    "coder_max_tokens": 8192,
    "coder_table_runs": None,
    "agent_history_steps": 12,
    "agent_observation_chars": 8000,
    "agent_thought_chars": 4000,
    "agent_max_tokens": 4096,
    "agent_memory_notes": 5,
}
DEFAULTS: dict[ProfileName, dict[str, Any]] = {"compact": COMPACT_PROFILE, "full": FULL_PROFILE}


def _merged(name: ProfileName, given: Any) -> Any:
    """A partial profile (from a preset, the environment or ``--set``) over its defaults."""
    if isinstance(given, OutputProfile):
        return given
    if given is None:
        return dict(DEFAULTS[name])
    if isinstance(given, dict):
        return {**DEFAULTS[name], **given, "name": name}
    return given


class ProfileSettings(BaseModel):
    """Which output profile each model gets, and the bounds of each profile."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    compact: OutputProfile = Field(
        default_factory=lambda: OutputProfile.model_validate(COMPACT_PROFILE),
        description="Bounds for grammar-constrained small models (the embedded one).",
    )
    full: OutputProfile = Field(
        default_factory=lambda: OutputProfile.model_validate(FULL_PROFILE),
        description="Bounds for capable provider models: guard rails against runaway output.",
    )
    models: dict[str, ProfileName] = Field(
        default_factory=dict,
        description="Profile per model string, or per provider prefix ending in '/' "
        "(e.g. {'ollama/': 'compact', 'openai/qwen2.5-0.5b': 'compact', 'local': 'full'}). "
        "Unlisted: 'local' is compact, every other model full.",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_partial(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {**data, **{n: _merged(n, data.get(n)) for n in PROFILE_NAMES}}

    def name_for(self, model: str) -> ProfileName:
        """The profile name of ``model``: exact entry, then the longest prefix, then default."""
        if model in self.models:
            return self.models[model]
        prefixes = [p for p in self.models if p.endswith("/") and model.startswith(p)]
        if prefixes:
            return self.models[max(prefixes, key=len)]
        return "compact" if model == LOCAL_MODEL else "full"

    def for_model(self, model: str) -> OutputProfile:
        """The bounds that apply to replies of ``model``."""
        return self.compact if self.name_for(model) == "compact" else self.full
