"""Fabricated references for ``injected_errors.py``: titles from word lists that exist
nowhere (a seeded RNG picks the words), with realistic authors, venues, years and pages, each
cited once in the text. The offline index the benchmark builds from the paper's own .bib never
holds them, so every one should come back ``not_found``.
"""

from __future__ import annotations

import random
import re

from benchmarks._latex import (
    Injection,
    PaperSource,
    Variant,
    bib_entries,
    ensure_bibliography,
    insert_paragraphs,
    insert_points,
    uses_natbib,
)
from core.literature.bibtex import entry_text


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(sep))


_FIRST = _words(
    "James Maria Wei Anna David Sofia Rahul Elena Tomasz Yuki Carlos Priya Lukas Hannah "
    "Mohammed Chloe Daniel Ines Kenji Olga Samuel Laura Arjun Nadia Peter Mei Jonas Clara "
    "Ahmed Julia"
)
_FAMILY = _words(
    "Halvorsen Brandt Okafor Lindqvist Tanaka Moreau Castellano Novak Ramaswamy Keller "
    "Achterberg Delacroix Petrov Nakamura Vasquez Holmgren Ferreira Zhao Kowalczyk Mbeki "
    "Sandoval Whitfield Oyelaran Brunner Ishikawa Lefebvre Dimitriou Nyberg Carvalho "
    "Rosenthal Abernathy Volkov Sorensen Ueda Marchetti Quintero Haddad Engstrom Falk Rauch"
)
_ADJECTIVE = _words(
    "Sparse Adaptive Hierarchical Contrastive Robust Implicit Modular Equivariant Calibrated "
    "Recurrent Stochastic Curriculum-Guided Low-Rank Self-Supervised Scalable Compositional "
    "Structured Gated Federated Continual"
)
_NOUN = _words(
    "Representations Embeddings Attention Priors Ensembles Adapters Objectives Routers "
    "Memories Kernels Operators Tokenizers Gradients Regularizers Policies Encoders"
)
_TASK = _words(
    "Few-Shot Classification|Tabular Prediction|Handwritten Digit Recognition|Sequence "
    "Modelling|Out-of-Distribution Detection|Label-Noise Learning|Density Estimation|"
    "Algorithmic Reasoning|Image Denoising|Time-Series Forecasting|Active Learning|"
    "Model Compression|Anomaly Detection|Transfer Learning",
    "|",
)
_TECHNIQUE = _words(
    "Spectral Pruning|Optimal Transport|Orthogonal Updates|Score Matching|Weight Averaging|"
    "Mixture Routing|Dual Distillation|Feature Whitening|Path Regularisation|Noise "
    "Annealing|Gradient Surgery|Latent Replay|Stochastic Depth Schedules",
    "|",
)
_PROPERTY = _words(
    "Stability|Expressivity|Sample Complexity|Implicit Bias|Convergence|Calibration|"
    "Robustness|Generalisation Gap|Loss Landscape|Memorisation Dynamics",
    "|",
)
_SOURCE = _words(
    "Noisy Labels|Unlabelled Streams|Synthetic Curricula|Partial Views|Weak Signals", "|"
)
_SYLLABLES = _words("ra mo zi ke lu na vor tel qui sen dax pho rin gal")
_PATTERNS = (
    "{adj} {noun} for {task}",
    "{acronym}: {adj} {noun} with {technique}",
    "Towards {adj} {task} via {technique}",
    "On the {prop} of {adj} {noun}",
    "{technique} Improves {task} under {source}",
    "Learning {adj} {noun} from {source}",
    "Rethinking {noun} for {task} through {technique}",
)
_VENUES: tuple[tuple[str, str], ...] = (
    ("inproceedings", "Advances in Neural Information Processing Systems"),
    ("inproceedings", "International Conference on Machine Learning"),
    ("inproceedings", "International Conference on Learning Representations"),
    ("inproceedings", "Proceedings of the AAAI Conference on Artificial Intelligence"),
    ("inproceedings", "IEEE/CVF Conference on Computer Vision and Pattern Recognition"),
    ("inproceedings", "International Conference on Artificial Intelligence and Statistics"),
    ("article", "Journal of Machine Learning Research"),
    ("article", "Transactions on Machine Learning Research"),
    ("article", "IEEE Transactions on Pattern Analysis and Machine Intelligence"),
    ("article", "arXiv preprint"),
)
_CITE_SENTENCES = (
    "Related ideas have been explored in prior work~{cite}.",
    "A similar motivation underlies earlier studies~{cite}.",
    "This design choice follows established practice~{cite}.",
    "Comparable settings were considered before~{cite}.",
    "Such approaches are common in the literature~{cite}.",
)


def fabricated_title(rng: random.Random) -> str:
    """A plausible machine-learning title that exists nowhere."""
    acronym = "".join(rng.sample(_SYLLABLES, 3)).capitalize()
    return rng.choice(_PATTERNS).format(
        adj=rng.choice(_ADJECTIVE),
        noun=rng.choice(_NOUN),
        task=rng.choice(_TASK),
        technique=rng.choice(_TECHNIQUE),
        prop=rng.choice(_PROPERTY),
        source=rng.choice(_SOURCE),
        acronym=acronym,
    )


def fabricated_entry(rng: random.Random, key: str, title: str) -> str:
    """A BibTeX entry with realistic authors, venue, year and pages."""
    authors = [f"{rng.choice(_FAMILY)}, {rng.choice(_FIRST)}" for _ in range(rng.randint(2, 5))]
    year = rng.randint(2014, 2024)
    kind, venue = rng.choice(_VENUES)
    fields = [("title", title), ("author", " and ".join(authors)), ("year", str(year))]
    if kind == "inproceedings":
        fields += [("booktitle", venue), ("pages", _pages(rng))]
    elif venue == "arXiv preprint":
        serial = (
            f"{rng.randint(1000, 29999):05d}" if year >= 2015 else f"{rng.randint(100, 9999):04d}"
        )
        number = f"{year % 100:02d}{rng.randint(1, 12):02d}.{serial}"  # 5 digits from 2015
        fields += [("journal", f"arXiv preprint arXiv:{number}")]
    else:
        fields += [("journal", venue), ("volume", str(rng.randint(5, 45))), ("pages", _pages(rng))]
    return entry_text(kind, key, [(name, "{" + value + "}") for name, value in fields])


def _pages(rng: random.Random) -> str:
    first = rng.randint(1, 9000)
    return f"{first}--{first + rng.randint(8, 30)}"


def _new_key(title: str, entry: str, taken: set[str]) -> str:
    family = re.search(r"author = \{(\w+)", entry)
    year = re.search(r"year = \{(\d{4})", entry)
    word = re.sub(r"\W", "", title.split()[0]).lower()
    base = f"{family[1].lower() if family else 'anon'}{year[1] if year else ''}{word}"
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}{n}"
    taken.add(key)
    return key


def make_fabricated(
    paper: PaperSource, index: int, count: int, rng: random.Random
) -> Variant | None:
    """``count`` made-up entries added to the .bib, each cited once at its own place."""
    points = insert_points(paper.tex)
    if not points:
        return None
    taken = {e.key for e in bib_entries(paper)}
    titles, keys, entries = [], [], []
    for _ in range(count):
        title = fabricated_title(rng)
        while title in titles:
            title = fabricated_title(rng)
        draft = fabricated_entry(rng, "draft", title)
        key = _new_key(title, draft, taken)
        titles.append(title)
        keys.append(key)
        entries.append(draft.replace("{draft,", "{" + key + ",", 1))
    cite = "\\citep" if uses_natbib(paper.tex) else "\\cite"
    insertions = [
        (rng.choice(points), rng.choice(_CITE_SENTENCES).format(cite=f"{cite}{{{key}}}"))
        for key in keys
    ]
    tex = ensure_bibliography(insert_paragraphs(paper.tex, insertions), paper.bib_name)
    bib = paper.bib.rstrip() + "\n\n" + "\n\n".join(entries) + "\n"
    injection = Injection(
        kind="fabricated", titles=titles, keys=keys, note="; ".join(f"{t!r}" for t in titles)
    )
    return Variant(paper.name, "fabricated", index, tex, bib, injection)
