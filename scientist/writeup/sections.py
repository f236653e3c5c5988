"""The paper's sections: titles, template placeholders and what each is written after."""

from __future__ import annotations

from dataclasses import dataclass

from scientist.writeup.models import SectionName


@dataclass(frozen=True)
class SectionSpec:
    """One section of the paper and where it goes in the template."""

    name: SectionName
    title: str
    placeholders: tuple[str, ...]
    after: tuple[SectionName, ...] = ()
    # Length target in words for the compact profile (about 3,000 in all); the writer is asked
    # for this times its profile's section_words_scale (``writing.target_words``).
    words: int = 400


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "abstract",
        "Abstract",
        ("ABSTRACT HERE",),
        after=("introduction", "method", "results", "conclusion"),
        words=180,
    ),
    SectionSpec(
        "introduction",
        "Introduction",
        ("INTRO HERE", "INTRODUCTION HERE"),
        after=("method", "results"),
        words=500,
    ),
    SectionSpec("related_work", "Related Work", ("RELATED WORK HERE",), words=350),
    SectionSpec("background", "Background", ("BACKGROUND HERE",), words=350),
    SectionSpec("method", "Method", ("METHOD HERE",), words=500),
    SectionSpec(
        "experimental_setup",
        "Experimental Setup",
        ("EXPERIMENTAL SETUP HERE", "EXPERIMENTS HERE"),
        words=400,
    ),
    SectionSpec("results", "Results", ("RESULTS HERE",), words=450),
    SectionSpec(
        "conclusion",
        "Conclusions and Future Work",
        ("CONCLUSIONS HERE", "CONCLUSION HERE"),
        after=("introduction", "results"),
        words=250,
    ),
)
SECTION_BY_NAME: dict[str, SectionSpec] = {spec.name: spec for spec in SECTIONS}
SECTION_NAMES: tuple[SectionName, ...] = tuple(spec.name for spec in SECTIONS)


def ready_sections(written: set[str]) -> list[SectionSpec]:
    """Sections not yet written whose prerequisites all are: one concurrent wave."""
    return [
        spec
        for spec in SECTIONS
        if spec.name not in written and all(dep in written for dep in spec.after)
    ]


def _write_order() -> tuple[SectionName, ...]:
    order: list[SectionName] = []
    while len(order) < len(SECTIONS):
        order += [spec.name for spec in ready_sections(set(order))]
    return tuple(order)


WRITE_ORDER = _write_order()
"""Sections in the order their waves are written: earlier sections appear in later prompts in
this order, so each prompt extends the previous one's prefix (the embedded server's KV cache)."""
