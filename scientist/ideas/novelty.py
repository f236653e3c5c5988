"""The novelty check: literature rounds until the model decides, or undecided after K rounds.

It opens with a search for the idea's title, so even a one-round check decides on real
results. Each round the model sees the latest results in full and earlier queries as
titles, then asks another query or decides. Closest-paper ids are checked against the
papers actually shown. A check in which no source answered is undecided: without
literature, a verdict would be a guess.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.literature.models import Paper, SourceName
from gateway.errors import StructuredOutputError
from gateway.prompts import render
from scientist.ideas.deps import IdeasDeps, IdeasProgress
from scientist.ideas.models import Idea
from scientist.ideas.records import (
    NoveltyQuery,
    NoveltyReply,
    NoveltyVerdict,
    PaperRef,
    as_record,
    novelty_reply,
)

PROMPTS = Path(__file__).parent / "prompts"


class NoveltySession:
    """The queries of one check and every paper shown so far, by id."""

    def __init__(self, idea: Idea, index: int, deps: IdeasDeps) -> None:
        self.idea = idea
        self.index = index
        self.deps = deps
        self.queries: list[NoveltyQuery] = []
        self.shown: dict[str, Paper] = {}
        self.latest: list[Paper] = []
        self.thoughts: list[str] = []

    def search(self, query: str, round_: int, asked_by: str) -> None:
        """Run ``query`` through the literature and remember what was shown."""
        limit = self.deps.settings.literature.max_results
        result = self.deps.literature.search(query, limit)
        self.latest = result.papers
        self.shown.update({p.paper_id: p for p in result.papers})
        self.queries.append(
            NoveltyQuery(
                round=round_,
                query=query,
                asked_by="title" if asked_by == "title" else "model",
                papers=[PaperRef.of(p) for p in result.papers],
                outcomes=result.outcomes,
            )
        )

    def answered(self) -> list[SourceName]:
        """Sources that answered at least one query of this check."""
        names = [o.source for q in self.queries for o in q.outcomes if o.ok]
        return list(dict.fromkeys(names))


def paper_line(paper: Paper, abstract_chars: int | None) -> str:
    """``[id] Title (year, venue, N citations)`` and the abstract, truncated."""
    facts = [str(paper.year or "n.d."), *([paper.venue] if paper.venue else [])]
    if paper.citation_count is not None:
        facts.append(f"{paper.citation_count} citations")
    line = f"[{paper.paper_id}] {paper.title} ({', '.join(facts)})"
    abstract = " ".join((paper.abstract or "").split())
    if abstract and abstract_chars != 0:
        cut = (
            abstract
            if abstract_chars is None or len(abstract) <= abstract_chars
            else (abstract[:abstract_chars] + "…")
        )
        line += f"\n    {cut}"
    return line


def results_text(session: NoveltySession) -> str:
    """The latest results in full, or why there are none."""
    if session.latest:
        chars = session.deps.profile().novelty_abstract_chars
        return "\n".join(paper_line(p, chars) for p in session.latest)
    outcomes = session.queries[-1].outcomes if session.queries else []
    failed = [f"{o.source}: {o.error}" for o in outcomes if not o.ok]
    note = f" (failed sources: {'; '.join(failed)})" if failed else ""
    return f"(no papers found{note})"


def history_text(session: NoveltySession) -> str:
    """Earlier queries and the titles they found (the latest is shown in full instead)."""
    shown = session.deps.profile().novelty_history_titles
    lines = []
    for query in session.queries[:-1]:
        titles = "; ".join(p.title for p in query.papers[:shown]) or "nothing"
        lines.append(f'Earlier query "{query.query}": {titles}')
    return "\n".join(lines)


def novelty_messages(session: NoveltySession, round_: int, total: int) -> list[dict[str, str]]:
    """System and user messages of one round."""
    note = "This is the last round: decide now." if round_ == total else ""
    idea = json.dumps({"Title": session.idea.Title, "Experiment": session.idea.Experiment})
    user = render(
        PROMPTS,
        "novelty_user.j2",
        idea=idea,
        round=round_,
        total=total,
        round_note=note,
        history=history_text(session),
        query=session.queries[-1].query,
        results=results_text(session),
    )
    system = render(PROMPTS, "novelty_system.j2")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def resolve_ids(named: list[str], shown: dict[str, Paper]) -> tuple[list[PaperRef], list[str]]:
    """Papers the model named that were shown (by id, bare id or citation key), and the rest."""
    by_alias: dict[str, Paper] = {}
    for paper in shown.values():
        for alias in (paper.paper_id, paper.paper_id.split(":", 1)[-1], paper.citation_key):
            by_alias.setdefault(alias.lower(), paper)
    found: dict[str, PaperRef] = {}
    unknown: list[str] = []
    for raw in named:
        match = by_alias.get(raw.strip().strip("[]").lower())
        if match is None:
            unknown.append(raw)
        else:
            found.setdefault(match.paper_id, PaperRef.of(match))
    return list(found.values()), unknown


def check_novelty(idea: Idea, index: int, deps: IdeasDeps) -> NoveltyVerdict:
    """Up to ``ideas.novelty_rounds`` rounds; a verdict, or undecided with the reason."""
    total = deps.settings.ideas.novelty_rounds
    session = NoveltySession(idea, index, deps)
    session.search(idea.Title, 0, "title")
    schema = novelty_reply(deps.profile())
    for round_ in range(1, total + 1):
        try:
            reply = as_record(
                deps.gateway.complete(
                    novelty_messages(session, round_, total),
                    role="ideas",
                    schema=schema,
                    **deps.sampling(),
                ),
                NoveltyReply,
            )
        except StructuredOutputError as exc:
            return _undecided(session, round_, f"the model gave no valid reply: {exc}")
        session.thoughts.append(reply.thought)
        deps.notify(IdeasProgress("novelty", index, round_, total, idea.Name))
        if reply.decision != "query":
            return _decided(session, reply, round_)
        if round_ < total:
            session.search(reply.query, round_, "model")
    return _undecided(
        session, total, f"no decision after {total} rounds (novelty_rounds); not guessed"
    )


def _decided(session: NoveltySession, reply: NoveltyReply, rounds: int) -> NoveltyVerdict:
    closest, unknown = resolve_ids(reply.closest_papers, session.shown)
    answered = session.answered()
    if not answered:
        return _undecided(
            session, rounds, "no literature source answered; a verdict would be a guess"
        )
    return NoveltyVerdict(
        status="novel" if reply.decision == "novel" else "not_novel",
        novel=reply.decision == "novel",
        justification=reply.justification,
        closest=closest,
        unknown_ids=unknown,
        queries=session.queries,
        thoughts=session.thoughts,
        rounds_used=rounds,
        sources_answered=answered,
    )


def _undecided(session: NoveltySession, rounds: int, reason: str) -> NoveltyVerdict:
    return NoveltyVerdict(
        status="undecided",
        reason=reason,
        queries=session.queries,
        thoughts=session.thoughts,
        rounds_used=rounds,
        sources_answered=session.answered(),
    )


def skipped_verdict(reason: str) -> NoveltyVerdict:
    """The verdict of an idea whose check was not run."""
    return NoveltyVerdict(status="skipped", reason=reason)
