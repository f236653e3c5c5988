"""How many known errors the reviewer's checks (and reviewers) catch, and how often they
flag a clean paper (issue #20).

Papers are ones the pipeline wrote (their LaTeX: ``<run>/<idea>/paper/``). For each, the
script makes variants by editing the LaTeX and rebuilding it with the write-up's own
compiler (latexmk: pdflatex + bibtex): fabricated references, a real reference with a wrong
year, an abstract number no table supports, a reference to a missing figure (see
``benchmarks/_inject.py``), and the clean twin (rebuilt unchanged). Every PDF is checked as
``reviewer check`` does (``extract_paper`` then ``run_checks``) against an offline index
built from the paper's own references.bib in a temporary data dir (``literature.sources =
["offline"]``: nothing reaches the network; the fabricated entries are in no index).

Detection per kind: fabricated: each injected entry is ``not_found`` with a
``reference_not_found`` finding; wrong year: a ``reference_mismatch`` naming the new year;
number: an ``unsupported_number`` whose evidence holds the changed number; missing figure: a
``missing_target`` for that figure. False positives: findings on the clean twins (share of
twins with any, findings per twin) and real references flagged in any variant; findings on
the twins are listed for a person to judge (the pipeline's papers may have real problems).

``--review N`` also runs the full review on the embedded model ("local", preset debug) on
N variants per kind and the clean twins, and counts reviews whose text mentions the error.

    .venv/bin/python benchmarks/injected_errors.py --papers runs/20261201-185311_digits
"""

from __future__ import annotations

import argparse
import datetime
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.table import Table
from rich.text import Text

from benchmarks._common import emit_json, fmt, make_console
from benchmarks._inject import make_variants
from benchmarks._judge import (
    GENERIC_TERMS,
    Built,
    Case,
    Checked,
    detection,
    false_positives,
    judge,
    pick_for_review,
    run_reviews,
    timing,
    unexpected,
)
from benchmarks._latex import KINDS, PaperSource, Variant, figure_count, table_cells
from core.literature.factory import build_literature, index_path
from core.literature.models import Literature
from core.literature.offline import build_index
from core.settings import Settings, load_settings
from reviewer.checks.bibliography import parse_bibliography
from reviewer.checks.citations import citation_findings
from reviewer.checks.crossrefs import cross_ref_findings
from reviewer.checks.numbers import number_findings
from reviewer.checks.prior_work import abstract_of, closest_prior_work
from reviewer.checks.references import verify_references
from reviewer.checks.run import run_checks
from reviewer.review.pdf_text import extract_paper
from scientist.writeup.compile import LatexmkCompiler, chosen_sources, missing_tools

ROOT = Path(__file__).resolve().parents[1]
MIN_CASES = 10
TEX = "paper.tex"
console = make_console()


# ----------------------------------------------------------------------------- papers


def find_papers(dirs: list[Path]) -> list[Path]:
    """Paper folders (holding paper.tex) given directly or inside run folders (or a runs/
    folder of run folders)."""
    found: list[Path] = []
    for folder in dirs:
        if (folder / TEX).is_file():
            found.append(folder)
            continue
        for pattern in (f"paper/{TEX}", f"*/paper/{TEX}", f"*/*/paper/{TEX}"):
            found += sorted(p.parent for p in folder.glob(pattern))
    return list(dict.fromkeys(p.resolve() for p in found))


def generate_paper(work: Path) -> list[Path]:
    """One paper written by the pipeline on the embedded model (as ``make demo`` does)."""
    console.print(
        "[yellow]No pipeline paper found: generating one with the embedded model "
        "(scientist run digits --preset debug; a few minutes)...[/yellow]"
    )
    scientist = Path(sys.executable).parent / "scientist"
    command = [str(scientist), "run", "digits", "--preset", "debug"]
    command += ["--set", f"runs_dir={work / 'runs'}", "--set", "llm.cache_enabled=false"]
    try:
        subprocess.run(command, cwd=work, timeout=1800, check=False, capture_output=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        console.print(f"[red]generation failed: {exc}[/red]")
    return find_papers([work / "runs"])


def load_source(folder: Path) -> PaperSource:
    """The paper's .tex and the .bib its \\bibliography names (references.bib by default)."""
    tex = (folder / TEX).read_text(encoding="utf-8")
    named = re.search(r"^\\bibliography\{([^},]+)", tex, re.M)
    bib_name = (named[1].strip() if named else "references") + ".bib"
    bib_path = folder / bib_name
    bib = bib_path.read_text(encoding="utf-8") if bib_path.is_file() else ""
    run, idea = folder.parent.parent.name, folder.parent.name
    return PaperSource(f"{run}/{idea[:28]}", str(folder), tex, bib_name, bib)


# ----------------------------------------------------------------------------- build, check


def build(
    variant: Variant, source: Path, bib_name: str, dest: Path, compiler: LatexmkCompiler
) -> Built:
    """The variant's sources in ``dest`` (the paper's figures and style files copied, its
    .tex and .bib replaced), compiled there with latexmk."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in chosen_sources(source, TEX):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, dest / name)
    (dest / TEX).write_text(variant.tex, encoding="utf-8")
    (dest / bib_name).write_text(variant.bib, encoding="utf-8")
    result = compiler.compile(dest, TEX, timeout_s=180)
    error = "; ".join(e.render() for e in result.errors[:3])
    return Built(variant, result.pdf, result.seconds, error)


def paper_settings(data_dir: Path, bib: str, bib_name: str) -> Settings:
    """Settings whose only literature source is an offline index of the paper's own .bib."""
    settings = load_settings(
        "default",
        {
            "data_dir": str(data_dir),
            "literature": {"sources": ["offline"], "cache_enabled": False},
        },
    )
    corpus = data_dir / bib_name
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text(bib, encoding="utf-8")
    build_index([corpus], index_path(settings))
    return settings


def check(built: Built, settings: Settings, literature: Literature) -> Checked:
    """``run_checks`` on the extracted pages (as the CLI), then each stage alone, timed."""
    assert built.pdf is not None
    timings: dict[str, float] = {}
    began = time.perf_counter()
    limits = settings.review
    paper = extract_paper(built.pdf, max_pages=limits.max_pages, max_mb=limits.max_pdf_mb)
    timings["extract text"] = time.perf_counter() - began
    began = time.perf_counter()
    report = run_checks(str(built.pdf), paper.title, paper.page_texts, literature, settings.checks)
    timings["run_checks (all)"] = time.perf_counter() - began
    timings |= stage_timings(paper.title, paper.page_texts, settings, literature)
    return Checked(built, report, paper.page_texts, timings)


def stage_timings(
    title: str, pages: list[str], settings: Settings, literature: Literature
) -> dict[str, float]:
    """Seconds of each check alone on the same pages."""
    entries = parse_bibliography(pages)
    stages: dict[str, Callable[[], object]] = {
        "bibliography": lambda: parse_bibliography(pages),
        "references (lookup)": lambda: verify_references(entries, literature, settings.checks),
        "citations": lambda: citation_findings(pages, entries),
        "numbers": lambda: number_findings(pages),
        "cross-references": lambda: cross_ref_findings(pages),
        "prior work": lambda: closest_prior_work(
            title, abstract_of(pages), literature, settings.checks.prior_work
        ),
    }
    timings = {}
    for name, stage in stages.items():
        began = time.perf_counter()
        stage()
        timings[name] = time.perf_counter() - began
    return timings


# ----------------------------------------------------------------------------- output


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def print_tables(figures: dict[str, Any], cases: list[Case]) -> None:
    papers = Table(
        title="Papers (pipeline LaTeX, recompiled with latexmk); detected: fabricated, wrong "
        "year, number, missing figure"
    )
    columns = ("paper", "pages", "refs", "figures", "table numbers", "variants", "detected")
    for column in (*columns, "not made"):
        papers.add_column(column)
    for p in figures["papers"]:
        detected = " ".join(f"{hits}/{n}" for hits, n in p["detected"].values())
        papers.add_row(
            p["name"],
            str(p["pages"]),
            str(p["references"]),
            str(p["figures"]),
            str(p["table_numbers"]),
            str(p["variants"]),
            detected,
            "; ".join(f"{k}: {v}" for k, v in p["skipped"].items()) or "-",
        )
    console.print(papers)
    table = Table(title="Detection by `reviewer check` (offline index of each paper's own .bib)")
    for column in ("error", "variants", "cases", "detected", "rate", "target", "verdict"):
        table.add_column(column)
    for kind, row in figures["detection"].items():
        target = f"≥ {pct(row['target'])}" if row["target"] is not None else "—"
        table.add_row(
            kind,
            str(row["variants"]),
            str(row["cases"]),
            str(row["detected"]),
            pct(row["rate"]),
            target,
            row["verdict"] or "—",
        )
    fp = figures["false_positives"]
    table.add_row(
        "clean twins with a finding",
        "",
        str(fp["clean_twins"]),
        str(fp["twins_with_findings"]),
        pct(fp["share"]),
        "≤ 5%",
        fp["verdict"],
    )
    table.add_row(
        "clean references flagged",
        "",
        str(fp["clean_references"]),
        str(fp["clean_references_flagged"]),
        pct(fp["share_references_flagged"]),
        "≤ 5%",
        fp["references_verdict"],
    )
    console.print(table)
    console.print(
        f"Findings per clean twin: {fmt(fp['findings_per_twin'], 2)}; clean "
        f"references unchecked: {fp['references_unchecked']}"
    )
    _print_list(
        "Findings on the clean twins (judge each: real or false?)",
        ("paper", "page", "kind", "message"),
        [(f["paper"], str(f["page"]), f["kind"], f["message"]) for f in fp["twin_findings"]],
    )
    _print_list(
        "Missed cases: what the check saw",
        ("error", "paper / variant", "injected", "saw"),
        [
            (c.kind, f"{c.paper} {c.variant}", c.injected[:60], c.saw[:300])
            for c in cases
            if not c.detected
        ],
    )
    _print_list(
        "Detected, with a remark",
        ("error", "paper / variant", "injected", "remark"),
        [
            (c.kind, f"{c.paper} {c.variant}", c.injected[:60], c.saw[:200])
            for c in cases
            if c.detected and c.saw
        ],
    )
    _print_list(
        "Real references flagged (in any variant)",
        ("variant", "status", "entry", "why"),
        [
            (r["variant"], r["status"], r["entry"][:100], r["why"][:120])
            for r in fp["flagged_references"]
        ],
    )
    extra = figures["unexpected_findings"]
    _print_list(
        "Findings on variants that are neither the injected error nor on the twin",
        ("variant", "kind", "message"),
        [(e["variant"], e["kind"], e["message"][:150]) for e in extra["examples"]],
    )
    times = Table(title="Time per stage over every checked PDF")
    for column in ("stage", "median ms", "p95 ms", "max ms"):
        times.add_column(column)
    for name, row in figures["timing"].items():
        times.add_row(name, fmt(row["median_ms"]), fmt(row["p95_ms"]), fmt(row["max_ms"]))
    console.print(times)
    _print_review(figures["review"])


def _print_list(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    if not rows:
        console.print(f"{title}: none.")
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # the paper's words, never markup
    console.print(table)


def _print_review(review: dict[str, Any]) -> None:
    if review.get("status") != "done":
        console.print(f"Full review: {review.get('status')} — {review.get('note', '')}")
        return
    table = Table(title=f"Full review ({review['model']}): does a reviewer's text mention it?")
    for column in ("error", "reviews", "mention the error", "rate", "any generic term"):
        table.add_column(column)
    for kind, row in review["per_kind"].items():
        mention = "—" if kind == "clean" else str(row["mentioned"])
        table.add_row(
            kind,
            str(row["reviews"]),
            mention,
            "—" if kind == "clean" else pct(row["rate"]),
            str(row["with_generic_terms"]),
        )
    console.print(table)
    console.print(
        f"{len(review['reviews'])} reviews in {review['seconds']:.0f} s. Generic terms: "
        f"{', '.join(GENERIC_TERMS)} (the clean row is the baseline)."
    )


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--papers",
        nargs="*",
        type=Path,
        default=None,
        help="paper folders, run folders or a runs/ folder (default: runs/)",
    )
    parser.add_argument(
        "--variants",
        type=int,
        default=None,
        help=f"variants per error kind per paper (default: enough for "
        f"{MIN_CASES} cases per kind in all)",
    )
    parser.add_argument("--fabricated", type=int, default=3, help="made-up entries per variant")
    parser.add_argument(
        "--review",
        type=int,
        default=2,
        help="variants per kind to review in full on the embedded model (0: none)",
    )
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="keep the variants' PDFs here")
    parser.add_argument(
        "--no-generate",
        action="store_true",
        help="fail instead of generating a paper when none is found",
    )
    return parser.parse_args(argv)


def no_papers_message(generated: bool) -> str:
    tried = (
        "The embedded model wrote no paper this time (the small model often proposes no new idea). "
        if generated
        else "No pipeline paper found (a run folder's <idea>/paper/paper.tex). "
    )
    return (
        f"{tried}Make one with `make demo` or `.venv/bin/scientist run digits --preset debug`, "
        "then pass its run folder with --papers runs/<run>."
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_tools(("latexmk", "pdflatex", "bibtex"))
    if missing:
        emit_json({"skipped": f"the LaTeX toolchain is missing: {', '.join(missing)}"})
        return 0
    with tempfile.TemporaryDirectory(prefix="injected-errors-") as tmp:
        work = Path(tmp)
        folders = find_papers(args.papers if args.papers else [ROOT / "runs"])
        generated = False
        if not folders and not args.papers and not args.no_generate:
            folders, generated = generate_paper(work), True
        if not folders:
            message = no_papers_message(generated)
            console.print(f"[red]{message}[/red]")
            if generated:  # as other benchmarks do without their inputs: `make bench` goes on
                emit_json({"skipped": message})
                return 0
            emit_json({"error": message})
            return 1
        figures = run(args, folders, work)
        figures["generated_paper"] = generated
        if args.out:
            keep_pdfs(work / "variants", args.out)
            if generated:  # the paper the embedded model just wrote, for a second look
                shutil.copytree(work / "runs", args.out / "generated_runs", dirs_exist_ok=True)
            figures["out"] = str(args.out)
    print_tables(figures, [Case(**c) for c in figures["cases"]])
    emit_json(figures)
    return 0


def keep_pdfs(variants: Path, out: Path) -> None:
    for pdf in variants.glob("*/*/paper.pdf"):
        target = out / pdf.parent.parent.name / f"{pdf.parent.name}.pdf"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pdf, target)
        tex = pdf.with_suffix(".tex")
        shutil.copyfile(tex, target.with_suffix(".tex"))


def each_kind(count: int) -> dict[str, int]:
    return {kind: count for kind in KINDS}


def variant_counts(
    sources: list[PaperSource], args: argparse.Namespace, this_year: int
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, str]]]:
    """Variants of each kind per paper: ``--variants`` each, else spread round-robin over the
    papers that can make that kind until there are ``MIN_CASES`` in all (as many as a paper
    can make); and, per paper, why it can make none of a kind."""
    if args.variants:
        return {s.name: each_kind(args.variants) for s in sources}, {s.name: {} for s in sources}
    probe = each_kind(MIN_CASES)
    plans = {
        s.name: make_variants(s, probe, args.fabricated, args.seed, this_year) for s in sources
    }
    counts = {s.name: each_kind(0) for s in sources}
    cannot: dict[str, dict[str, str]] = {s.name: {} for s in sources}
    for kind in KINDS:
        room = {name: sum(v.kind == kind for v in p.variants) for name, p in plans.items()}
        for name, plan in plans.items():
            if not room[name]:
                cannot[name][kind] = plan.skipped.get(kind, "none made").split(": ", 1)[-1]
        while sum(c[kind] for c in counts.values()) < MIN_CASES and any(room.values()):
            for name in (n for n in room if room[n]):
                counts[name][kind] += 1
                room[name] -= 1
    return counts, cannot


def run(args: argparse.Namespace, folders: list[Path], work: Path) -> dict[str, Any]:
    """Variants of every paper built, checked and judged; reviews on a few."""
    compiler = LatexmkCompiler(isolation="bwrap" if shutil.which("bwrap") else "none")
    this_year = datetime.date.today().year
    sources = [load_source(folder) for folder in folders]
    counts, cannot = variant_counts(sources, args, this_year)
    papers, checked, built_all, data_dirs = [], [], [], {}
    for n, (folder, source) in enumerate(zip(folders, sources, strict=True)):
        plan = make_variants(source, counts[source.name], args.fabricated, args.seed, this_year)
        slug = f"p{n}_" + re.sub(r"\W+", "_", source.name)[:48]
        data_dirs[source.name] = work / "data" / slug
        settings = paper_settings(data_dirs[source.name], source.bib, source.bib_name)
        literature = build_literature(settings)
        console.print(f"{source.name}: {len(plan.variants)} PDFs to build ...")
        built = [
            build(v, folder, source.bib_name, work / "variants" / slug / v.label, compiler)
            for v in plan.variants
        ]
        built_all += built
        checked += [check(item, settings, literature) for item in built if item.pdf is not None]
        twin = next((c for c in checked if c.built.variant == plan.variants[0]), None)
        papers.append(
            {
                "name": source.name,
                "folder": str(folder),
                "pages": len(twin.pages) if twin else None,
                "references": len(twin.report.references) if twin else None,
                "figures": figure_count(source.tex),
                "table_numbers": len(table_cells(source.tex)),
                "variants": len(plan.variants) - 1,
                "counts": counts[source.name],
                "skipped": plan.skipped | cannot[source.name],
                "compile_failures": [
                    f"{b.variant.label}: {b.error}" for b in built if b.pdf is None
                ],
            }
        )
    return figures_of(args, papers, checked, built_all, data_dirs)


def figures_of(
    args: argparse.Namespace,
    papers: list[dict[str, Any]],
    checked: list[Checked],
    built: list[Built],
    data_dirs: dict[str, Path],
) -> dict[str, Any]:
    twins = {c.built.variant.paper: c for c in checked if c.built.variant.kind == "clean"}
    cases: list[Case] = []
    extra: list[dict[str, Any]] = []
    for item in checked:
        cases += judge(item)
        if item.built.variant.kind != "clean":
            for f in unexpected(item, twins.get(item.built.variant.paper)):
                extra.append(
                    {
                        "variant": f"{item.built.variant.paper} {item.built.variant.label}",
                        "kind": f.kind,
                        "message": f.message,
                        "evidence": f.evidence[:200],
                    }
                )
    for paper in papers:
        mine = [c for c in cases if c.paper == paper["name"]]
        paper["detected"] = {
            kind: [
                sum(c.detected for c in mine if c.kind == kind),
                sum(c.kind == kind for c in mine),
            ]
            for kind in KINDS
        }
    found = detection(cases)
    fp = false_positives(checked)
    review = (
        run_reviews(pick_for_review(checked, args.review), data_dirs, console.print)
        if args.review > 0
        else {"status": "skipped", "note": "--review 0"}
    )
    verdicts = [row["verdict"] for row in found.values() if row["verdict"]] + [fp["verdict"]]
    return {
        "seed": args.seed,
        "variants_per_kind_per_paper": args.variants or f"auto (>= {MIN_CASES} per kind in all)",
        "fabricated_per_variant": args.fabricated,
        "papers": papers,
        "pdfs_built": sum(b.pdf is not None for b in built),
        "pdfs_failed": sum(b.pdf is None for b in built),
        "detection": found,
        "false_positives": fp,
        "unexpected_findings": {"count": len(extra), "examples": extra[:30]},
        "timing": timing(checked, built),
        "review": review,
        "pass": all(v == "PASS" for v in verdicts),
        "cases": [asdict(c) for c in cases],
    }


if __name__ == "__main__":
    raise SystemExit(main())
