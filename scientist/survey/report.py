"""``literature_review.json`` and ``literature_review.md`` in an idea's folder."""

from __future__ import annotations

from pathlib import Path

from scientist.survey.models import REVIEW_JSON, REVIEW_MD, LiteratureReview, ReviewedPaper


def save_review(review: LiteratureReview, idea_dir: Path) -> None:
    """Write the review's JSON and Markdown (the folder is created if need be)."""
    idea_dir.mkdir(parents=True, exist_ok=True)
    (idea_dir / REVIEW_JSON).write_text(review.model_dump_json(indent=2), encoding="utf-8")
    (idea_dir / REVIEW_MD).write_text(review_markdown(review), encoding="utf-8")


def review_markdown(review: LiteratureReview) -> str:
    """The review for a reader: papers by theme, each with its key; the gaps; the queries."""
    lines = [
        f"# Literature review: {review.title}",
        "",
        f"Idea `{review.idea}`: {counts(review)}"
        + (" (edited by the researcher)." if review.edited else "."),
    ]
    for theme, papers in review.themes():
        lines += ["", f"## {theme}"]
        for paper in papers:
            lines += ["", *_paper_lines(paper)]
    if review.gaps:
        lines += ["", "## Gaps the idea addresses", ""]
        lines += [f"- {gap}" for gap in review.gaps]
    if review.searches:
        lines += ["", "## Queries", ""]
        for search in review.searches:
            found = len(search.paper_ids)
            sources = ", ".join(search.sources_answered) or "no source answered"
            outcome = search.error or f"{found} paper{'' if found == 1 else 's'} ({sources})"
            lines.append(f"- `{search.query}`: {outcome}")
    if review.feedback:
        lines += ["", "## Researcher's feedback", "", review.feedback]
    if review.warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- {warning}" for warning in review.warnings]
    return "\n".join(lines) + "\n"


def counts(review: LiteratureReview) -> str:
    """'3 papers kept of 7 found by 4 queries'."""
    kept, queries = len(review.papers), len(review.searches)
    return (
        f"{kept} paper{'' if kept == 1 else 's'} kept of {review.found} found by {queries} "
        f"{'query' if queries == 1 else 'queries'}"
    )


def _paper_lines(paper: ReviewedPaper) -> list[str]:
    authors = ", ".join(paper.authors[:4]) + (" et al." if len(paper.authors) > 4 else "")
    facts = ", ".join(str(x) for x in (authors, paper.year, paper.venue) if x)
    lines = [f"### {paper.title} `[{paper.key}]`", "", facts or "(no details)"]
    if paper.summary:
        lines += ["", f"**What it does.** {paper.summary}"]
    if paper.relation:
        lines += ["", f"**How it relates to the idea.** {paper.relation}"]
    return lines
