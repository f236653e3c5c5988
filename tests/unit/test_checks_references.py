"""The bibliography, its lookup and the citations that point at it (``reviewer.checks``
bibliography, references, citations): small papers compiled with the real pdflatex and read
with the real extraction, the committed sample PDF, literature from ``StaticLiterature`` and,
once, the real cascade against the loopback Semantic Scholar/OpenAlex fake."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.literature.factory import build_literature
from core.literature.models import Paper, SearchResult
from core.settings import ChecksSettings, Settings
from reviewer.checks.bib_fields import parse_fields
from reviewer.checks.bibliography import parse_bibliography
from reviewer.checks.citations import citation_findings
from reviewer.checks.models import BibEntry, ReferenceCheck
from reviewer.checks.references import (
    arxiv_year,
    differences,
    reference_findings,
    verify_references,
)
from tests.checks_support import paper_from_latex, read_paper
from tests.clock import ManualClock
from tests.fakes_literature import Act, StaticLiterature, fake_literature_server

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "papers" / "multi_style_adapter.pdf"
SettingsFactory = Callable[..., Settings]
GROKKING = "Grokking: Generalization beyond overfitting on small algorithmic datasets"
FABRICATED = "Quantum gradient folding for sparse hyperbolic transformers"


def _record(key: str, title: str, authors: list[str], year: int, venue: str, **ids: str) -> Paper:
    """A published record as a source returns it (its own capitalisation and venue names)."""
    return Paper(
        paper_id=f"offline:{key}",
        title=title,
        authors=authors,
        year=year,
        venue=venue,
        ids=ids,
        bibtex=f"@misc{{{key},\n  title = {{{title}}}\n}}",
        citation_key=key,
        source="offline",
    )


PUBLISHED = [
    _record(
        "ho2020",
        "Denoising Diffusion Probabilistic Models",
        ["Jonathan Ho", "Ajay Jain", "P. Abbeel"],
        2020,
        "Neural Information Processing Systems",
        arxiv="2006.11239",
    ),
    _record(
        "power2022",
        "Grokking: Generalization Beyond Overfitting on Small Algorithmic Datasets",
        ["Alethea Power", "Yuri Burda", "Harrison Edwards"],
        2022,
        "arXiv.org",
        arxiv="2201.02177",
    ),
    _record(
        "vaswani2017",
        "Attention is All you Need",
        ["Ashish Vaswani", "Noam M. Shazeer", "Niki Parmar"],
        2017,
        "Neural Information Processing Systems",
        doi="10.5555/3295222.3295349",
    ),
    _record(
        "ba2016",
        "Layer Normalization",
        ["Jimmy Ba", "J. Kiros", "Geoffrey E. Hinton"],
        2016,
        "arXiv.org",
        arxiv="1607.06450",
    ),
    _record(
        "nanda2023",
        "Progress measures for grokking via mechanistic interpretability",
        ["Neel Nanda"],
        2023,
        "ICLR",
    ),
]


def _literature(**kwargs: Any) -> StaticLiterature:
    """Every query answers with all five records: each entry must pick its own."""
    return StaticLiterature(default=PUBLISHED, **kwargs)


# A numbered paper (thebibliography, as natbib's "numbers" style prints it); the injected
# version has a fabricated entry, a real one with a wrong year, a citation of [7] (the list
# has four) and a \cite with no entry ("[?]"); the clean twin has none of them.
def _numbered(injected: bool) -> str:
    year = "2012" if injected else "2017"
    fourth = (
        rf"John Doe and Jane Roe. {FABRICATED}. In \emph{{Advances in Neural Information "
        r"Processing Systems}, 2021."
        if injected
        else r"Jimmy~Lei Ba, Jamie~Ryan Kiros, and Geoffrey~E Hinton. Layer normalization. "
        r"\emph{arXiv preprint arXiv:1607.06450}, 2016."
    )
    dangling = r" and a later extension [7] \cite{nokey}" if injected else ""
    return rf"""
\section{{Introduction}}
Diffusion models \cite{{ho}} and grokking \cite{{power}} are studied with transformers
\cite{{vaswani}}{dangling}.
\newpage
\section{{Related work}}
Normalisation layers \cite{{fourth}} help as well \cite{{ho, power}}.
\begin{{thebibliography}}{{9}}
\bibitem{{ho}} Jonathan Ho, Ajay Jain, and Pieter Abbeel. Denoising diffusion probabilistic
models. In \emph{{Advances in Neural Information Processing Systems}}, volume~33, pages
6840--6851, 2020.
\bibitem{{power}} Alethea Power, Yuri Burda, Harri Edwards, Igor Babuschkin, and Vedant
Misra. {GROKKING}. \emph{{arXiv preprint arXiv:2201.02177}}, 2022.
\bibitem{{vaswani}} Ashish Vaswani, Noam Shazeer, Niki Parmar, Jakob Uszkoreit, Llion Jones,
Aidan~N Gomez, Lukasz Kaiser, and Illia Polosukhin. Attention is all you need. In
\emph{{Advances in Neural Information Processing Systems}}, {year}.
\bibitem{{fourth}} {fourth}
\end{{thebibliography}}
"""


# An author-year paper: the entries as plainnat/ICLR print them (no labels, the hanging
# indent lost in the text), citations written as \citet and \citep render them. The
# injected version cites "Smith et al. (2020)", whom the bibliography does not list, and
# "(?)" for a \citep whose key was missing.
def _author_year(injected: bool) -> str:
    extra = r" Smith et al. (2020) disagree, as does a study (?)." if injected else ""
    return rf"""
\section{{Introduction}}
Diffusion models were introduced by Ho et al. (2020); grokking was reported later (Power
et al., 2022; Ba et al., 2016).{extra}
\newpage
\makeatletter\renewcommand\@biblabel[1]{{}}\makeatother
\begin{{thebibliography}}{{}}
\bibitem{{ba}} Jimmy~Lei Ba, Jamie~Ryan Kiros, and Geoffrey~E Hinton. Layer normalization.
\emph{{arXiv preprint arXiv:1607.06450}}, 2016.
\bibitem{{ho}} Jonathan Ho, Ajay Jain, and Pieter Abbeel. Denoising diffusion probabilistic
models. In H.~Larochelle, M.~Ranzato, R.~Hadsell, M.F. Balcan, and H.~Lin (eds.),
\emph{{Advances in Neural Information Processing Systems}}, volume~33, pp.\ 6840--6851.
Curran Associates, Inc., 2020. URL
\texttt{{https://proceedings.neurips.cc/paper/2020/file/4c5bcfec8584af0d967f1ab10179ca4b-Paper.pdf}}.
\bibitem{{power}} Alethea Power, Yuri Burda, Harri Edwards, Igor Babuschkin, and Vedant
Misra. {GROKKING}. \emph{{arXiv preprint arXiv:2201.02177}}, 2022.
\end{{thebibliography}}
"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Page texts of the four compiled papers, by name."""
    bodies = {
        "numbered": _numbered(True),
        "numbered_clean": _numbered(False),
        "author_year": _author_year(True),
        "author_year_clean": _author_year(False),
    }
    root = tmp_path_factory.mktemp("papers")
    return {name: paper_from_latex(body, root / name).page_texts for name, body in bodies.items()}


def _statuses(checks: list[ReferenceCheck]) -> list[str]:
    return [c.status for c in checks]


# ----------------------------------------------------------------------------- parsing


def test_a_numbered_bibliography_gives_labels_fields_and_pages(pages: dict[str, list[str]]) -> None:
    entries = parse_bibliography(pages["numbered"])
    assert [e.label for e in entries] == ["1", "2", "3", "4"]
    assert [e.page for e in entries] == [2, 2, 2, 2]
    assert [e.title for e in entries] == [
        "Denoising diffusion probabilistic models",
        GROKKING,
        "Attention is all you need",
        FABRICATED,
    ]
    assert [e.year for e in entries] == [2020, 2022, 2012, 2021]
    assert [e.authors[0] for e in entries] == ["Ho", "Power", "Vaswani", "Doe"]
    assert entries[2].authors[-1] == "Polosukhin" and len(entries[2].authors) == 8
    assert entries[1].arxiv == "2201.02177" and entries[1].venue == "arXiv"
    assert entries[0].venue == "Advances in Neural Information Processing Systems"


def test_an_author_year_bibliography_splits_entries_without_labels(
    pages: dict[str, list[str]],
) -> None:
    entries = parse_bibliography(pages["author_year"])
    assert [(e.label, e.page, e.authors[0], e.year) for e in entries] == [
        (None, 2, "Ba", 2016),
        (None, 2, "Ho", 2020),
        (None, 2, "Power", 2022),
    ]
    assert entries[1].title == "Denoising diffusion probabilistic models"
    assert entries[1].venue == "Advances in Neural Information Processing Systems"  # eds. gone
    assert entries[2].title == GROKKING  # "Gen-/eralization" joined across the line break
    assert entries[0].arxiv == "1607.06450"


def test_the_sample_pdf_bibliography() -> None:
    """multi_style_adapter.pdf (natbib author-year, "REFERENCES" on page 10; the list runs on
    to page 11): every entry checked against the PDF's text by eye."""
    entries = parse_bibliography(read_paper(SAMPLE).page_texts)
    assert len(entries) == 8
    assert [e.page for e in entries] == [10] + [11] * 7
    first, _, ctrl, gpt4, adapters, radford, shen, vaswani = entries
    assert first.title == "Neural machine translation by jointly learning to align and translate"
    assert (first.authors, first.year, first.arxiv) == (
        ["Bahdanau", "Cho", "Bengio"],
        2014,
        "1409.0473",
    )
    assert ctrl.title == (
        "Ctrl: A conditional transformer language model for controllable generation"
    )
    assert ctrl.authors[0] == "Keskar" and ctrl.arxiv == "1909.05858"
    assert (gpt4.authors, gpt4.title, gpt4.year, gpt4.arxiv) == (
        ["OpenAI"],
        "Gpt-4 technical report",
        2024,
        "2303.08774",
    )
    assert adapters.authors[2] == "Rücklé"
    assert adapters.title == (
        "Adapterfusion: Non-destructive task composition for transfer learning"
    )
    assert radford.title == "Language models are unsupervised multitask learners"
    assert shen.title == "Style transfer from non-parallel text by cross-alignment"
    assert vaswani.title == "Attention is all you need" and vaswani.year == 2017


def test_the_sample_pdf_cites_nothing_that_is_missing() -> None:
    paper = read_paper(SAMPLE).page_texts
    assert citation_findings(paper, parse_bibliography(paper)) == []


@pytest.mark.parametrize(
    ("text", "authors", "title", "year", "venue"),
    [
        (  # ICML: inverted names with initials
            "Smith, J. K. and Lee, K. Deep nets for small data. In International Conference "
            "on Machine Learning, pp. 1-9, 2020.",
            ["Smith", "Lee"],
            "Deep nets for small data",
            2020,
            "International Conference on Machine Learning",
        ),
        (  # APA: the year after the authors
            "Janzing, D., Minorics, L., and Blöbaum, P. (2020). Feature relevance "
            "quantification in explainable AI: A causal problem. In AISTATS, pages 1-9. PMLR.",
            ["Janzing", "Minorics", "Blöbaum"],
            "Feature relevance quantification in explainable AI: A causal problem",
            2020,
            "AISTATS",
        ),
        (  # IEEE: the title in quotes
            'A. Smith, B. van der Berg, and C. Lee, "Deep nets for small data," in Proc. '
            "ICML, 2020, pp. 1-9.",
            ["Smith", "van der Berg", "Lee"],
            "Deep nets for small data",
            2020,
            "Proc. ICML",
        ),
        (  # a title with "vs." and a question mark, no venue
            "M. Tan. Independent vs. cooperative agents? 1993.",
            ["Tan"],
            "Independent vs. cooperative agents?",
            1993,
            None,
        ),
    ],
)
def test_fields_of_other_styles(
    text: str, authors: list[str], title: str, year: int, venue: str | None
) -> None:
    fields = parse_fields(text)
    assert (fields.authors, fields.title, fields.year, fields.venue) == (
        authors,
        title,
        year,
        venue,
    )


# ----------------------------------------------------------------------------- verdicts


def test_a_fabricated_entry_is_not_found_and_a_wrong_year_is_a_mismatch(
    pages: dict[str, list[str]],
) -> None:
    entries = parse_bibliography(pages["numbered"])
    literature = _literature()
    checks = verify_references(entries, literature, ChecksSettings())
    assert _statuses(checks) == ["verified", "verified", "mismatch", "not_found"]
    assert sorted(literature.queries) == sorted(e.title for e in entries)  # by title, in parallel
    ddpm, grokking, attention, fabricated = checks
    assert ddpm.match is not None and ddpm.match.url == "https://arxiv.org/abs/2006.11239"
    assert grokking.match is not None and grokking.match.paper_id == "offline:power2022"
    assert attention.differences == ["year: 2012 in the paper, 2017 found"]
    assert fabricated.answered_by == ["offline"] and fabricated.match is None
    findings = reference_findings(checks)
    assert [(f.kind, f.page) for f in findings] == [
        ("reference_mismatch", 2),
        ("reference_not_found", 2),
    ]
    assert "year: 2012 in the paper, 2017 found" in findings[0].message
    assert "https://doi.org/10.5555/3295222.3295349" in findings[0].evidence
    assert FABRICATED in findings[1].message and findings[1].evidence.startswith("[4] John Doe")


def test_the_clean_twins_have_no_finding(pages: dict[str, list[str]]) -> None:
    for name in ("numbered_clean", "author_year_clean"):
        entries = parse_bibliography(pages[name])
        checks = verify_references(entries, _literature(), ChecksSettings())
        assert set(_statuses(checks)) == {"verified"}, (name, checks)
        assert reference_findings(checks) == []
        assert citation_findings(pages[name], entries) == [], name


def test_when_no_source_answers_every_entry_is_unchecked(pages: dict[str, list[str]]) -> None:
    entries = parse_bibliography(pages["numbered"])
    down = verify_references(entries, _literature(answered=False), ChecksSettings())
    assert _statuses(down) == ["unchecked"] * 4
    assert all(c.reason and "offline: index missing" in c.reason for c in down)
    assert reference_findings(down) == []
    none = verify_references(entries, None, ChecksSettings())
    assert _statuses(none) == ["unchecked"] * 4
    assert none[0].reason and "no literature source" in none[0].reason


def test_entries_past_the_limit_or_without_a_title_are_not_looked_up() -> None:
    titled = BibEntry(index=0, raw=f"A. Author. {GROKKING}. 2022.", title=GROKKING, page=3)
    bare = BibEntry(index=1, raw="Anonymous. 2020.", year=2020, page=3)
    extra = titled.model_copy(update={"index": 2})
    literature = _literature()
    checks = verify_references([titled, bare, extra], literature, ChecksSettings(max_references=2))
    assert _statuses(checks) == ["verified", "unchecked", "unchecked"]
    assert checks[1].reason and "could not parse a title" in checks[1].reason
    assert checks[2].reason and "max_references" in checks[2].reason
    assert literature.queries == [GROKKING]


def test_an_entry_whose_names_were_not_recognised_matches_a_title_in_its_text() -> None:
    adam = _record(
        "kingma2015",
        "Adam: A Method for Stochastic Optimization",
        ["Diederik P. Kingma", "Jimmy Ba"],
        2015,
        "ICLR",
    )
    raw = "Kingma D P and Ba J 2014 Adam: a method for stochastic optimization. ICLR 2015."
    garbled = BibEntry(index=0, raw=raw, title="Kingma D P and Ba J 2014 Adam", year=2015, page=1)
    literature = StaticLiterature(default=[adam])
    assert _statuses(verify_references([garbled], literature, ChecksSettings())) == ["verified"]
    # With its authors recognised, the entry's title must match: a fabricated title that
    # quotes a real one is not that paper.
    quoting = BibEntry(
        index=0,
        raw=f"J. Doe. Beyond {adam.title} in hyperbolic space. 2015.",
        title=f"Beyond {adam.title} in hyperbolic space",
        authors=["Doe"],
        year=2015,
        page=1,
    )
    assert _statuses(verify_references([quoting], literature, ChecksSettings())) == ["not_found"]


def test_the_cited_title_wins_over_a_similar_one_that_would_hide_a_wrong_year() -> None:
    cited = BibEntry(
        index=0,
        raw="",
        title="Neural ordinary differential equations",
        authors=["Chen"],
        year=2014,  # the paper is from 2018
        page=4,
    )
    real = _record("chen2018", "Neural Ordinary Differential Equations", ["Ricky Chen"], 2018, "")
    # Another paper, by another Chen, from the year the entry (wrongly) gives: 0.93 similar.
    other = _record(
        "chen2014", "Stiff Neural Ordinary Differential Equations", ["Tian Chen"], 2014, ""
    )
    (check,) = verify_references([cited], StaticLiterature(default=[other, real]), ChecksSettings())
    assert check.status == "mismatch" and check.match and check.match.paper_id.endswith("2018")
    assert check.differences == ["year: 2014 in the paper, 2018 found"]


def test_year_author_and_venue_rules() -> None:
    entry = BibEntry(
        index=0,
        raw="",
        title="Attention is all you need",
        authors=["Vaswani"],
        year=2018,
        venue="Advances in Neural Information Processing Systems",
        page=1,
    )
    published = PUBLISHED[2]  # 2017, "Neural Information Processing Systems"
    assert differences(entry, published) == []  # a year apart, the same venue spelt otherwise
    moved = entry.model_copy(update={"year": 2019, "venue": "ICML", "authors": ["Shazeer"]})
    assert differences(moved, published) == [
        "year: 2019 in the paper, 2017 found",
        "first author: Shazeer in the paper, Ashish Vaswani found",
        "venue: ICML in the paper, Neural Information Processing Systems found",
    ]
    preprint = entry.model_copy(update={"venue": "arXiv"})
    assert differences(preprint, published) == []  # a preprint is never a different venue


def test_an_entry_may_carry_the_year_of_the_preprint_it_cites() -> None:
    """Loshchilov & Hutter, as the sample papers cite it: arXiv:1711.05101, 2017; the record
    is the ICLR 2019 paper."""
    iclr = _record(
        "loshchilov2019",
        "Decoupled Weight Decay Regularization",
        ["Ilya Loshchilov", "Frank Hutter"],
        2019,
        "International Conference on Learning Representations",
    )
    cited = BibEntry(
        index=0,
        raw="",
        title="Decoupled weight decay regularization",
        authors=["Loshchilov", "Hutter"],
        year=2017,
        venue="arXiv",
        arxiv="1711.05101",
        page=9,
    )
    assert arxiv_year("1711.05101") == 2017 and arxiv_year("cs/9912001") == 1999
    assert differences(cited, iclr) == []
    assert differences(cited.model_copy(update={"year": 2012}), iclr) == [
        "year: 2012 in the paper, 2019 found"
    ]
    # The other way round: the paper cites ICLR 2019, the source returns the 2017 preprint.
    published = cited.model_copy(update={"year": 2019, "venue": "ICLR", "arxiv": None})
    assert differences(published, iclr.model_copy(update={"year": 2017, "venue": "arXiv"})) == []
    assert differences(published, iclr.model_copy(update={"year": 2017, "venue": "ICML"})) == [
        "year: 2019 in the paper, 2017 found",
        "venue: ICLR in the paper, ICML found",
    ]


# ----------------------------------------------------------------------------- time


class _Ticking(StaticLiterature):
    """Each search moves the clock on by ``step`` seconds."""

    def __init__(self, clock: ManualClock, step: float) -> None:
        super().__init__(default=PUBLISHED)
        self.clock, self.step = clock, step

    def search(self, query: str, limit: int) -> SearchResult:
        self.clock.now += self.step
        return super().search(query, limit)


def test_entries_not_looked_up_within_the_time_budget_are_unchecked(
    pages: dict[str, list[str]],
) -> None:
    entries = parse_bibliography(pages["numbered_clean"])
    clock = ManualClock()
    literature = _Ticking(clock, step=10.0)
    settings = ChecksSettings(time_budget_s=25.0, lookup_workers=1)
    checks = verify_references(entries, literature, settings, clock=clock)
    assert _statuses(checks) == ["verified", "verified", "verified", "unchecked"]
    assert checks[3].reason == "checks.time_budget_s was spent before its turn came"
    assert len(literature.queries) == 3


class _Hanging(StaticLiterature):
    """A source that never answers until released."""

    def __init__(self) -> None:
        super().__init__(default=PUBLISHED)
        self.release = threading.Event()

    def search(self, query: str, limit: int) -> SearchResult:
        self.release.wait(30)
        return super().search(query, limit)


def test_lookups_still_running_when_the_budget_ends_are_abandoned_unchecked() -> None:
    entries = [BibEntry(index=i, raw=GROKKING, title=GROKKING, page=1) for i in range(3)]
    literature = _Hanging()
    try:
        checks = verify_references(
            entries, literature, ChecksSettings(time_budget_s=0.3, lookup_workers=2)
        )
    finally:
        literature.release.set()
    assert _statuses(checks) == ["unchecked"] * 3
    assert all(c.reason and "time_budget_s" in c.reason for c in checks)


# ----------------------------------------------------------------------------- the real cascade


@pytest.fixture
def cascade_settings(make_settings: SettingsFactory) -> Iterator[Callable[[str], Settings]]:
    def build(url: str) -> Settings:
        return make_settings(
            literature={
                "sources": ["semantic_scholar", "openalex"],
                "s2_api_url": url,
                "openalex_url": url,
                "openalex_mailto": "me@example.org",
                "s2_min_interval_s": 0,
                "openalex_min_interval_s": 0,
                "timeout_s": 30.0,
                "max_retries": 0,
                "backoff_s": 0.0,
                "cache_enabled": False,
            }
        )

    yield build


def test_through_the_real_cascade_down_is_unchecked_and_answered_is_judged(
    pages: dict[str, list[str]], cascade_settings: Callable[[str], Settings]
) -> None:
    entries = parse_bibliography(pages["numbered"])
    with fake_literature_server() as fake:
        fake.s2.default = fake.openalex.default = Act(kind="status", status=500)
        down = build_literature(cascade_settings(fake.url), http_client=httpx.Client())
        checks = verify_references(entries, down, ChecksSettings(lookup_workers=1))
        assert _statuses(checks) == ["unchecked"] * 4  # never not_found
        assert checks[0].reason and "500" in checks[0].reason
        assert fake.s2.requests and fake.openalex.requests

        fake.s2.default = fake.openalex.default = Act()
        up = build_literature(cascade_settings(fake.url), http_client=httpx.Client())
        checks = verify_references(entries, up, ChecksSettings(lookup_workers=2))
    # The fake knows two papers, Grokking among them: the rest is not found by the source
    # that answered.
    assert _statuses(checks) == ["not_found", "verified", "not_found", "not_found"]
    grokking = checks[1]
    assert grokking.answered_by == ["semantic_scholar"] and grokking.match is not None
    assert grokking.match.url == "https://arxiv.org/abs/2201.02177"
    assert checks[3].answered_by == ["semantic_scholar"]


# ----------------------------------------------------------------------------- citations


def test_numbered_citations_beyond_the_list_and_unresolved_ones_are_found(
    pages: dict[str, list[str]],
) -> None:
    findings = citation_findings(pages["numbered"], parse_bibliography(pages["numbered"]))
    assert [(f.kind, f.page) for f in findings] == [
        ("unresolved_reference", 1),
        ("dangling_citation", 1),
    ]
    unresolved, dangling = findings
    assert "[?]" in unresolved.evidence and unresolved.check == "citations"
    assert "Citation [7]" in dangling.message and "[1]–[4]" in dangling.message
    assert "later extension [7]" in dangling.evidence


def test_author_year_citations_of_no_entry_are_found(pages: dict[str, list[str]]) -> None:
    findings = citation_findings(pages["author_year"], parse_bibliography(pages["author_year"]))
    assert [(f.kind, f.page) for f in findings] == [
        ("unresolved_reference", 1),
        ("dangling_citation", 1),
    ]
    assert "Smith et al. (2020)" in findings[1].message
    assert "Smith et al. (2020) disagree" in findings[1].evidence


@pytest.mark.parametrize(
    "text",
    [
        "Values lie in [0, 1] and the sizes are [64, 128, 256].",  # intervals, lists of sizes
        "We draw x ∈ [2, 5] and sweep the range [1-400].",
        "The film Murder (1991) is no citation.",  # a lone capitalised word no entry names
        "As shown in [1, 2] and [1-2], see also (Ho et al., 2020).",
    ],
)
def test_what_is_no_dangling_citation(text: str) -> None:
    entries = [
        BibEntry(index=0, label="1", raw="[1] J. Ho. Denoising. 2020.", authors=["Ho"], page=2),
        BibEntry(index=1, label="2", raw="[2] A. Power. Grokking. 2022.", page=2),
    ]
    assert (
        citation_findings([text, "References\n" + "\n".join(e.raw for e in entries)], entries) == []
    )
