"""The literature review's nodes: queries → search → one summary per paper → synthesis → finish.

The model writes queries, summaries, themes and gaps; the papers are only ever those the
cascade returned (the synthesis names them through an enum of their keys, and code places
each paper). ``graphs/survey.py`` wires the nodes; each model call is its own step, so a run
killed in the stage resumes without repeating a finished call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import Send

from gateway.errors import StructuredOutputError
from gateway.prompts import render
from scientist.ideas.models import Idea
from scientist.ideas.template import Template
from scientist.survey.deps import SurveyDeps
from scientist.survey.models import (
    OTHER_THEME,
    LiteratureReview,
    PaperSummary,
    ReviewedPaper,
    SearchRecord,
    SurveyQueries,
    paper_summary,
    survey_queries,
    synthesis_schema,
)
from scientist.survey.report import save_review
from scientist.survey.search import keep, pool, search_queries, template_keys

PROMPTS = Path(__file__).parent / "prompts"


def merge_summaries(
    left: dict[str, PaperSummary] | None, right: dict[str, PaperSummary] | None
) -> dict[str, PaperSummary]:
    """Reducer: each paper's branch adds its summary under the paper's key."""
    return {**(left or {}), **(right or {})}


def add_warnings(left: list[str] | None, right: list[str] | None) -> list[str]:
    """Reducer: warnings from parallel branches, in arrival order."""
    return [*(left or []), *(right or [])]


class SurveyInput(TypedDict):
    """One idea, its folder, the template, and a researcher's feedback (co-pilot)."""

    idea: Idea
    idea_dir: str
    template: Template
    feedback: NotRequired[str | None]


class SurveyState(SurveyInput, total=False):
    """Everything the review accumulates."""

    queries: list[str]
    searches: list[SearchRecord]
    found: int
    kept: list[ReviewedPaper]
    summaries: Annotated[dict[str, PaperSummary], merge_summaries]
    gaps: list[str]
    warnings: Annotated[list[str], add_warnings]
    review: LiteratureReview


class PaperTask(TypedDict):
    """What one paper's branch receives through ``Send``."""

    idea: Idea
    feedback: str | None
    paper: ReviewedPaper


def _messages(user: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": render(PROMPTS, "survey_system.j2")},
        {"role": "user", "content": user},
    ]


def make_queries(state: SurveyState, runtime: Runtime[SurveyDeps]) -> dict[str, Any]:
    """Ask for ``survey.queries`` search queries; the idea's title alone if none is valid."""
    deps, idea = runtime.context, state["idea"]
    count = deps.settings.survey.queries
    user = render(
        PROMPTS,
        "survey_queries.j2",
        title=idea.Title,
        experiment=idea.Experiment,
        task=state["template"].prompt.task_description,
        count=count,
        feedback=state.get("feedback") or "",
    )
    schema = survey_queries(deps.profile(), count)
    try:
        reply = deps.gateway.complete(_messages(user), schema=schema, **deps.sampling())
    except StructuredOutputError as exc:
        return {"queries": [idea.Title], "warnings": [f"no valid queries ({exc})"[:300]]}
    queries = [
        " ".join(q.split()) for q in SurveyQueries.model_validate(reply.model_dump()).queries
    ]
    unique = list(dict.fromkeys(q for q in queries if q))[:count]
    return {"queries": unique or [idea.Title]}


def search(state: SurveyState, runtime: Runtime[SurveyDeps]) -> dict[str, Any]:
    """Search every query; pool, deduplicate and rank the papers; keep the best N that can be
    cited, each under a key the template's bibliography does not use."""
    deps = runtime.context
    queries = state["queries"]
    limit = deps.settings.literature.max_results
    records, results = search_queries(deps.literature, queries, limit)
    pooled = pool(queries, results)
    taken = template_keys(state["template"].path)
    kept, skipped = keep(pooled, deps.settings.survey.papers_kept, taken)
    warnings = [f"search {r.query!r} failed: {r.error}" for r in records if r.error]
    if skipped:
        warnings.append(f"{skipped} paper(s) passed over: the literature layer gave no BibTeX")
    if not kept:
        warnings.append("the searches returned no paper that can be cited")
    return {"searches": records, "found": len(pooled), "kept": kept, "warnings": warnings}


def fan_out(state: SurveyState) -> list[Send] | Literal["synthesize"]:
    """One summary per kept paper, in parallel; straight to the synthesis if none."""
    kept = state.get("kept", [])
    if not kept:
        return "synthesize"
    feedback = state.get("feedback")
    return [
        Send("summarize_paper", {"idea": state["idea"], "feedback": feedback, "paper": paper})
        for paper in kept
    ]


def paper_text(paper: ReviewedPaper, abstract_chars: int | None) -> str:
    """Title, authors, year, venue and the abstract (cut to ``abstract_chars``)."""
    authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
    facts = ", ".join(str(x) for x in (authors, paper.year, paper.venue) if x)
    abstract = " ".join((paper.abstract or "").split())
    if abstract_chars is not None and len(abstract) > abstract_chars:
        abstract = abstract[:abstract_chars] + "…"
    return f"{paper.title} ({facts or 'n.d.'})\nAbstract: {abstract or '(none)'}"


def summarize_paper(task: PaperTask, runtime: Runtime[SurveyDeps]) -> dict[str, Any]:
    """What one paper does and how it relates to the idea, from its title and abstract."""
    deps, idea, paper = runtime.context, task["idea"], task["paper"]
    user = render(
        PROMPTS,
        "survey_paper.j2",
        title=idea.Title,
        experiment=idea.Experiment,
        paper=paper_text(paper, deps.profile().survey_abstract_chars),
        feedback=task.get("feedback") or "",
    )
    try:
        reply = deps.gateway.complete(
            _messages(user), schema=paper_summary(deps.profile()), **deps.sampling()
        )
    except StructuredOutputError as exc:
        return {"warnings": [f"no valid summary of {paper.key} ({exc})"[:300]]}
    summary = PaperSummary.model_validate(reply.model_dump())
    return {"summaries": {paper.key: summary}}


def synthesis_text(kept: list[ReviewedPaper], summaries: dict[str, PaperSummary]) -> str:
    """One line per paper: key, title, summary and relation."""
    lines = []
    for paper in kept:
        said = summaries.get(paper.key)
        text = f"{said.summary} Relation: {said.relation}" if said else "(no summary)"
        lines.append(f"- [{paper.key}] {paper.title}: {text}")
    return "\n".join(lines)


def synthesize(state: SurveyState, runtime: Runtime[SurveyDeps]) -> dict[str, Any]:
    """Themes (by key, from the kept papers only) and the gaps the idea addresses."""
    deps, idea = runtime.context, state["idea"]
    kept, summaries = state.get("kept", []), state.get("summaries", {})
    if not kept:
        return {}
    profile = deps.profile()
    user = render(
        PROMPTS,
        "survey_synthesis.j2",
        title=idea.Title,
        experiment=idea.Experiment,
        papers=synthesis_text(kept, summaries),
        max_themes=profile.survey_items,
        feedback=state.get("feedback") or "",
    )
    schema = synthesis_schema([p.key for p in kept], profile)
    try:
        reply = deps.gateway.complete(_messages(user), schema=schema, **deps.sampling())
    except StructuredOutputError as exc:
        return {"warnings": [f"no valid themes and gaps ({exc})"[:300]]}
    data = reply.model_dump()
    themes = {str(t["name"]).strip() or OTHER_THEME: list(t["papers"]) for t in data["themes"]}
    gaps = [" ".join(str(g).split()) for g in data["gaps"] if str(g).strip()]
    return {"kept": placed(kept, themes), "gaps": gaps}


def placed(kept: list[ReviewedPaper], themes: dict[str, list[str]]) -> list[ReviewedPaper]:
    """Each paper under the first theme that names it (else ``OTHER_THEME``), grouped in the
    order of the themes; keys the model named that are not kept are ignored."""
    theme_of: dict[str, str] = {}
    for name, keys in themes.items():
        for key in keys:
            theme_of.setdefault(key, name)
    order = {name: index for index, name in enumerate(themes)}
    updated = [p.model_copy(update={"theme": theme_of.get(p.key, OTHER_THEME)}) for p in kept]
    return sorted(updated, key=lambda p: order.get(p.theme, len(order)))


def finish(state: SurveyState, runtime: Runtime[SurveyDeps]) -> dict[str, Any]:
    """Assemble the review and write literature_review.json and .md in the idea's folder."""
    idea = state["idea"]
    summaries = state.get("summaries", {})
    papers = [
        p.model_copy(
            update={
                "summary": summaries[p.key].summary if p.key in summaries else "",
                "relation": summaries[p.key].relation if p.key in summaries else "",
            }
        )
        for p in state.get("kept", [])
    ]
    review = LiteratureReview(
        idea=idea.Name,
        title=idea.Title,
        searches=state.get("searches", []),
        found=state.get("found", 0),
        papers=papers,
        gaps=state.get("gaps", []),
        feedback=state.get("feedback"),
        warnings=state.get("warnings", []),
    )
    save_review(review, Path(state["idea_dir"]))
    return {"review": review}
