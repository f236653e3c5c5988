"""Fitting a paper into a token budget (``reviewer.review.excerpt``)."""

from __future__ import annotations

import math
import random
import re

import pytest

from reviewer.review.excerpt import budget_excerpt
from reviewer.review.form import Excerpt, PaperText, Section
from reviewer.review.pdf_text import extract_paper
from tests.fixtures.pdfs import sample_papers

CPT = 3.5
SIZES = {
    "Front matter": 120,
    "Abstract": 900,
    "1 Introduction": 4000,
    "2 Related Work": 3000,
    "3 Method": 5000,
    "4 Experiments": 6000,
    "5 Conclusion": 1200,
    "References": 2500,
    "A Appendix": 4000,
}


def _text(title: str, n: int) -> str:
    """``n`` characters of distinct words, so a cut is visible in the output."""
    slug = re.sub(r"\W+", "", title.lower())
    words = " ".join(f"{slug}{i}" for i in range(n))
    return words[:n].rstrip()


def _paper(sizes: dict[str, int] = SIZES) -> PaperText:
    sections = [Section(title=t, text=_text(t, n)) for t, n in sizes.items()]
    text = "\n\n".join(
        s.text if s.title == "Front matter" else f"{s.title}\n\n{s.text}" for s in sections
    )
    return PaperText(source="synthetic", text=text, sections=sections)


def _full_tokens(paper: PaperText) -> int:
    return math.ceil(len(budget_excerpt(paper, 10**9).text) / CPT)


def _check_invariants(ex: Excerpt, budget: int) -> None:
    assert ex.estimated_tokens == math.ceil(len(ex.text) / CPT)
    assert ex.estimated_tokens <= budget and ex.budget_tokens == budget


def test_everything_fits() -> None:
    paper = _paper()
    ex = budget_excerpt(paper, 10**6)
    assert ex.cut == [] and not ex.truncated
    assert ex.kept_sections == list(SIZES)
    assert ex.text == paper.text


def test_references_are_dropped_first() -> None:
    paper = _paper()
    refs = len(f"References\n\n{paper.sections[7].text}\n\n")
    budget = math.ceil((len(paper.text) - refs) / CPT)
    ex = budget_excerpt(paper, budget)
    _check_invariants(ex, budget)
    assert [c.section for c in ex.cut] == ["References"]
    assert ex.cut[0].chars == SIZES["References"] and "references" in ex.cut[0].reason
    assert "References" not in ex.kept_sections and "A Appendix" in ex.kept_sections


def test_priorities_keep_abstract_intro_conclusion_ahead_of_related_work() -> None:
    ex = budget_excerpt(_paper(), 4000)
    _check_invariants(ex, 4000)
    for title in ("Abstract", "1 Introduction", "3 Method", "4 Experiments", "5 Conclusion"):
        assert title in ex.kept_sections
    assert "2 Related Work" not in ex.kept_sections and "A Appendix" not in ex.kept_sections
    cut = {c.section: c for c in ex.cut}
    assert cut["2 Related Work"].chars == SIZES["2 Related Work"]
    assert "left out" in cut["2 Related Work"].reason


def test_shortened_section_keeps_beginning_and_end_with_marker() -> None:
    ex = budget_excerpt(_paper(), 4000)
    cut = {c.section: c for c in ex.cut}
    assert "shortened" in cut["4 Experiments"].reason
    assert f"[… {cut['4 Experiments'].chars} characters cut …]" in ex.text
    experiments = ex.text.split("4 Experiments\n\n", 1)[1].split("\n\n5 Conclusion")[0]
    assert experiments.startswith("4experiments0 4experiments1")
    full = _text("4 Experiments", SIZES["4 Experiments"])
    assert experiments.endswith(full[-40:].split(" ", 1)[1])


def test_original_order_with_headings() -> None:
    ex = budget_excerpt(_paper(), 3000)
    positions = [ex.text.index(f"{t}\n\n") for t in ex.kept_sections if t != "Front matter"]
    assert positions == sorted(positions)
    assert ex.text.startswith("frontmatter0")


@pytest.mark.parametrize(
    "budget", [1, 5, 20, 50, 100, 150, 300, 700, 1000, 2500, 5000, 7300, 7600, 7900, 8200]
)
def test_never_exceeds_budget(budget: int) -> None:
    paper = _paper()
    ex = budget_excerpt(paper, budget)
    _check_invariants(ex, budget)
    recorded = {c.section for c in ex.cut}
    assert recorded | set(ex.kept_sections) == set(SIZES)
    if budget >= 150:
        assert "Abstract" in ex.kept_sections


def test_tiny_budget_keeps_part_of_the_abstract() -> None:
    ex = budget_excerpt(_paper(), 60)
    _check_invariants(ex, 60)
    assert ex.kept_sections == ["Abstract"] and ex.text.startswith("Abstract\n\nabstract0")


def test_paper_without_sections_is_one_block() -> None:
    paper = PaperText(source="x", text="word " * 2000)
    ex = budget_excerpt(paper, 200)
    _check_invariants(ex, 200)
    assert ex.kept_sections == ["Front matter"] and "characters cut" in ex.text


def test_custom_chars_per_token() -> None:
    ex = budget_excerpt(_paper(), 1000, chars_per_token=4.0)
    assert ex.estimated_tokens == math.ceil(len(ex.text) / 4.0) <= 1000


def test_invalid_budget() -> None:
    with pytest.raises(ValueError, match="budget_tokens"):
        budget_excerpt(_paper(), 0)


@pytest.mark.skipif(not sample_papers(), reason="sample papers (../shared/data/papers) absent")
def test_sample_papers_never_exceed_budget() -> None:
    for path in sample_papers():
        paper = extract_paper(path, max_pages=50, max_mb=30)
        for budget in (100, 1000, 3000, 6000, _full_tokens(paper) - 1):
            ex = budget_excerpt(paper, budget, chars_per_token=CPT)
            _check_invariants(ex, budget)
            assert ex.cut and any(c.section == "REFERENCES" for c in ex.cut)


def test_random_papers_and_budgets_stay_within_budget() -> None:
    rng = random.Random(7)
    titles = [*SIZES, "6 Discussion", "Acknowledgements", "B Proofs", "7 Our Idea"]
    for _ in range(300):
        chosen = rng.sample(titles, rng.randint(1, len(titles)))
        paper = _paper({t: rng.randint(0, 6000) for t in chosen})
        budget = rng.randint(1, 8000)
        ex = budget_excerpt(paper, budget, chars_per_token=rng.choice([2.5, 3.5, 4.0]))
        assert ex.estimated_tokens <= budget
        assert {c.section for c in ex.cut} | set(ex.kept_sections) == set(chosen)
