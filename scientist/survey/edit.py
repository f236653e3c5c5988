"""A researcher's edit of the review (co-pilot): papers removed, added or re-described.

The researcher edits the review's JSON. A paper they keep keeps the cascade's record and its
key; a paper they add must be one the literature cascade returns (looked up by its id, else
searched by its title) or the whole edit is rejected, saying which and why, since the
write-up may only cite what the literature layer returns. Summaries, relations, themes and
gaps are theirs to rewrite.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.literature.models import Literature, Paper
from gateway.errors import AutoscholarError
from scientist.survey.models import ADDED_THEME, LiteratureReview, ReviewedPaper
from scientist.survey.search import Pooled, identities, reviewed, template_keys, title_key

ADDED_QUERY = "added by the researcher"


class ReviewEditError(AutoscholarError):
    """The researcher's edit of the review cannot be used; the message says what to change."""


class EditedPaper(BaseModel):
    """A paper as the researcher left it: a title at least; the rest optional."""

    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1)
    paper_id: str = ""
    key: str = ""
    theme: str = ""
    summary: str = ""
    relation: str = ""


class EditedReview(BaseModel):
    """The parts of the review a researcher may change."""

    model_config = ConfigDict(extra="ignore")

    papers: list[EditedPaper]
    gaps: list[str] = Field(default_factory=list)


def review_json(review: LiteratureReview) -> str:
    """The review as the co-pilot edits it."""
    return json.dumps(review.model_dump(mode="json"), indent=2)


def parse_edit(text: str) -> EditedReview:
    """The edited JSON; a ReviewEditError when it is not a review."""
    try:
        return EditedReview.model_validate_json(text)
    except ValidationError as exc:
        raise ReviewEditError(
            'The edited review is not valid: it must be the review\'s JSON with a "papers" '
            f"list whose items have a title at least ({_first_error(exc)})."
        ) from exc


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "the document"
    return f"{where}: {error['msg']}"


def apply_edit(
    review: LiteratureReview, text: str, literature: Literature, template_dir: Path, limit: int
) -> LiteratureReview:
    """The review as the researcher edited it; a ReviewEditError names any added paper the
    cascade does not return (nothing of the edit is applied then)."""
    edited = parse_edit(text)
    known: dict[str, ReviewedPaper] = {}
    for paper in review.papers:
        for name in (f"id:{paper.paper_id.lower()}", f"key:{paper.key}", _title(paper.title)):
            known.setdefault(name, paper)
    taken = template_keys(template_dir) | {p.key for p in review.papers}
    papers: list[ReviewedPaper] = []
    rejected: list[str] = []
    for item in edited.papers:
        found = _match(item, known) or _added(item, literature, limit, taken, rejected)
        if found is not None and all(p.paper_id != found.paper_id for p in papers):
            papers.append(_described(found, item))
    if rejected:
        raise ReviewEditError(
            "The edited review adds papers the literature search does not return, so they "
            f"cannot be cited: {'; '.join(rejected)}. Give each added paper's title as the "
            "search returns it (or its paper_id from a search), or remove it."
        )
    gaps = [" ".join(g.split()) for g in edited.gaps if g.strip()]
    return review.model_copy(update={"papers": papers, "gaps": gaps, "edited": True})


def _title(title: str) -> str:
    return f"title:{title_key(title)}"


def _match(item: EditedPaper, known: dict[str, ReviewedPaper]) -> ReviewedPaper | None:
    names = [f"key:{item.key}"] if item.key else []
    names += [f"id:{item.paper_id.lower()}"] if item.paper_id else []
    names.append(_title(item.title))
    return next((known[n] for n in names if n in known), None)


def _added(
    item: EditedPaper, literature: Literature, limit: int, taken: set[str], rejected: list[str]
) -> ReviewedPaper | None:
    """A paper the researcher added, as the cascade returns it, under a new key."""
    found = lookup(literature, item, limit)
    if found is None:
        rejected.append(f"{item.title!r} (not found)")
        return None
    paper = reviewed(Pooled(paper=found, queries=[ADDED_QUERY]), taken)
    if paper is None:
        rejected.append(f"{item.title!r} (the literature layer has no BibTeX for it)")
        return None
    return paper.model_copy(update={"theme": ADDED_THEME})


def lookup(literature: Literature, item: EditedPaper, limit: int) -> Paper | None:
    """The cascade's record of an added paper: by its id, else a search for its title that
    returns it (same normalised title, or the id given)."""
    try:
        if item.paper_id:
            by_id = literature.paper(item.paper_id)
            if by_id is not None:
                return by_id
        result = literature.search(item.title, limit)
    except AutoscholarError:
        return None
    wanted = {_title(item.title)} | ({f"id:{item.paper_id.lower()}"} if item.paper_id else set())
    return next((p for p in result.papers if identities(p) & wanted), None)


def _described(paper: ReviewedPaper, item: EditedPaper) -> ReviewedPaper:
    """The cascade's paper with the researcher's theme, summary and relation."""
    update = {
        "theme": item.theme.strip() or paper.theme,
        "summary": item.summary.strip(),
        "relation": item.relation.strip(),
    }
    return paper.model_copy(update=update)
