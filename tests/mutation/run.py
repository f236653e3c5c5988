"""Mutation testing of the core modules:
``make mutation [MODULES="reviewer/review/decision.py ..."]``.

Each module is mutated in a scratch copy of the tree of its own (``$TMPDIR/autoscholar-
mutation-*``), so engineers can run it side by side for different modules, or while
editing the tree, without sharing mutmut's ``mutants/`` state. Only the fast unit tests
mapped to the module in ``TARGETS`` run against its mutants.

Two ways of mutating, both with mutmut's mutation operators:

- ``mutmut run`` for modules the tests import: mutmut's trampolines switch one mutant on
  per forked test run, and only the tests that reach the mutated function run. Fast, but
  it mutates only undecorated functions and methods.
- ``on_disk=True``: each mutant is written into the copy and the module's tests run in a
  fresh pytest, ``--jobs`` copies side by side. Slower, but it reaches what trampolines
  cannot: a file the tests run in a child interpreter (the sandbox launcher, run as
  ``python -I -S _sandbox.py`` with an allow-listed environment) and declarative modules
  whose behaviour sits in class bodies (pydantic fields, bounds, ``extra="forbid"``).

Prints a table of mutation scores per module, then, as the last line of stdout, one JSON
object. Surviving mutants and their diffs go to ``runs/mutation/<module>.json``, and to
stdout with ``--survivors``. Exit status 1 when a module scores under ``--fail-under``.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import fnmatch
import glob
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT = Path(__file__).with_name("equivalent.toml")
TARGET_SCORE = 85.0
# Statuses as mutmut names them (mutmut.stats.status_by_exit_code). A mutant that crashes
# the test process or hangs it is caught; one no test reaches counts as a survivor.
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}
UNSCORED = {"skipped", "not checked"}
GATEWAY_TESTS = (
    "tests/unit/test_gateway_*.py",
    "tests/unit/test_structured.py",
    "tests/unit/test_ledger_scoped.py",
    "tests/unit/test_prompt_caching.py",
    "tests/unit/test_mutation_gateway*.py",
)
REVIEW_TESTS = ("tests/unit/test_review*.py", "tests/unit/test_mutation_review*.py")


@dataclass(frozen=True)
class Target:
    """One module under mutation and the unit tests that should catch its mutants."""

    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = field(default=())
    """``func`` or ``Class.method`` names to mutate; empty: every function in the file."""
    on_disk: bool = False
    """Mutate the file on disk, one fresh pytest per mutant (see the module docstring)."""

    @property
    def dotted(self) -> str:
        """The module's import name, as mutmut prefixes its mutants."""
        return self.path.removesuffix(".py").replace("/", ".")

    def mutant_globs(self) -> list[str]:
        """mutmut mutant-name patterns for ``functions`` (mutmut's mangling: ``xǁClsǁm``)."""
        globs = []
        for name in self.functions:
            cls, _, func = name.rpartition(".")
            mangled = f"xǁ{cls}ǁ{func}" if cls else f"x_{func}"
            globs.append(f"{self.dotted}.{mangled}__mutmut_*")
        return globs

    def test_files(self, tree: Path) -> list[str]:
        """The test files (or node ids) in ``tree`` that the patterns match, sorted."""
        found: set[str] = set()
        for pattern in self.tests:
            file_part, sep, node = pattern.partition("::")
            for match in glob.glob(file_part, root_dir=tree):
                found.add(f"{match}{sep}{node}")
        return sorted(found)


# The core modules of issue #24 and the unit tests mapped to each. Patterns, so a new
# tests/unit/test_mutation_<area>*.py joins its module's run without an edit here.
TARGETS: dict[str, Target] = {
    t.path: t
    for t in [
        Target("gateway/structured.py", (*GATEWAY_TESTS, "tests/unit/test_provider_replies.py")),
        Target("gateway/cache.py", GATEWAY_TESTS),
        Target("gateway/ledger.py", GATEWAY_TESTS),
        Target("gateway/retry.py", GATEWAY_TESTS),
        # The budget, cache and request paths of the gateway; routing to the embedded server
        # and provider-key checks are exercised by the integration layer.
        Target(
            "gateway/gateway.py",
            GATEWAY_TESTS,
            functions=(
                "Gateway.complete",
                "Gateway._complete_structured",
                "Gateway._call",
                "Gateway._request",
                "Gateway._variant",
                "Gateway._check_budget",
                "Gateway._record",
                "_truncation_note",
                "estimate_prompt_tokens",
                "_with_instruction",
            ),
        ),
        Target(
            "reviewer/review/decision.py", (*REVIEW_TESTS, "tests/unit/test_calibration_run.py")
        ),
        # On disk, one fresh pytest per mutant: only the form's own tests (the end-to-end review
        # tests and the renderers kill no mutant these do not; see docs/MUTATION.md). Sorted, the
        # fast test_mutation_review_form.py runs first. A renamed test fails the clean run.
        Target(
            "reviewer/review/form.py",
            (
                "tests/unit/test_mutation_review_form*.py",
                *(
                    f"tests/unit/test_review_decision_rules.py::{test}"
                    for test in (
                        "test_no_review_form_has_a_decision_field",
                        "test_every_review_form_refuses_an_extra_key",
                        "test_every_score_is_checked_against_its_range",
                        "test_empty_text_where_the_form_needs_some",
                        "test_each_profile_form_holds_replies_to_its_own_bounds",
                        "test_each_profile_bounds_the_reflection_and_the_meta_review",
                        "test_record_defaults_and_bounds",
                        "test_the_review_schemas_are_the_committed_ones",
                    )
                ),
            ),
            on_disk=True,  # pydantic models: the bounds and extra="forbid" sit in class bodies
        ),
        Target(
            "reviewer/review/injection.py",
            (
                "tests/unit/test_injection*.py",
                "tests/unit/test_reviewer_pdf.py",
                "tests/unit/test_mutation_injection*.py",
            ),
        ),
        Target("reviewer/calibration/fit.py", ("tests/unit/test_calibration_*.py",)),
        Target("reviewer/calibration/metrics.py", ("tests/unit/test_calibration_*.py",)),
        Target(
            "scientist/experiments/runner.py",
            ("tests/unit/test_runner*.py", "tests/unit/test_mutation_runner*.py"),
        ),
        Target(
            "core/_sandbox.py",
            (
                "tests/unit/test_runner*.py",
                "tests/unit/test_sandbox*.py",
                "tests/unit/test_mutation_runner*.py",
            ),
            on_disk=True,
        ),
        Target(
            "core/literature/cascade.py",
            ("tests/unit/test_literature*.py", "tests/unit/test_mutation_literature*.py"),
        ),
        Target(
            "service/store.py",
            ("tests/unit/test_service_store*.py", "tests/unit/test_mutation_service*.py"),
        ),
    ]
}


@dataclass
class Outcome:
    """What became of one module's mutants."""

    module: str
    statuses: dict[str, str]
    diffs: dict[str, str] = field(default_factory=dict)
    equivalent: dict[str, str] = field(default_factory=dict)
    """Survivors matched by ``equivalent.toml``: mutant name -> why it changes nothing."""
    seconds: float = 0.0
    error: str | None = None

    @property
    def counts(self) -> Counter[str]:
        return Counter(s for s in self.statuses.values() if s not in UNSCORED)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def caught(self) -> int:
        return sum(n for status, n in self.counts.items() if status in CAUGHT)

    @property
    def score(self) -> float:
        """Killed over non-equivalent mutants: the textbook mutation score."""
        scored = self.total - len(self.equivalent)
        return 100.0 * self.caught / scored if scored else 0.0

    @property
    def raw_score(self) -> float:
        """Killed over every mutant, equivalent ones included."""
        return 100.0 * self.caught / self.total if self.total else 0.0

    @property
    def survivors(self) -> list[str]:
        """Mutants no test caught, equivalent ones included."""
        scored = (n for n, s in self.statuses.items() if s not in UNSCORED | CAUGHT)
        return sorted(scored, key=_natural)

    def mark_equivalent(self, known: list[dict[str, str]]) -> None:
        """Match survivors to ``known`` entries by module and the mutated line."""
        for name in self.survivors:
            added = {
                line[1:].strip()
                for line in self.diffs.get(name, "").splitlines()
                if line.startswith("+") and not line.startswith("+++")
            }
            for entry in known:
                if entry["module"] == self.module and entry["line"].strip() in added:
                    self.equivalent[name] = entry["reason"]
                    break


def load_equivalent(path: Path = EQUIVALENT) -> list[dict[str, str]]:
    """The documented equivalent mutants (``[[equivalent]]`` module, line, reason)."""
    import tomllib

    if not path.is_file():
        return []
    entries: list[dict[str, str]] = tomllib.loads(path.read_text("utf-8")).get("equivalent", [])
    return entries


def _natural(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return (stem, int(number) if number.isdigit() else 0)


# ---------------------------------------------------------------- the scratch copy


def _ignorer(root: Path) -> Callable[[str, list[str]], set[str]]:
    """What a scratch copy of ``root`` leaves out: environments, caches, run outputs, git."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory).resolve()
        skipped = {n for n in names if n == "__pycache__" or n.endswith(("_cache", ".egg-info"))}
        if here == root:
            skipped |= {n for n in names if n.startswith((".venv", ".git", ".make"))}
            skipped |= {"runs", "mutants", "build"} & set(names)
        if here.parent == root / "templates":
            skipped |= {n for n in names if n.startswith("run_") or n == "logs"}
        return skipped

    return ignore


def scratch_copy(root: Path, parent: Path, target: Target, tests: list[str]) -> Path:
    """A copy of ``root`` whose ``[tool.mutmut]`` mutates only ``target``, with ``tests``."""
    tree = parent / target.dotted
    shutil.copytree(root, tree, ignore=_ignorer(root.resolve()))
    settings = {"only_mutate": [target.path], "pytest_add_cli_args_test_selection": tests}
    pyproject = tree / "pyproject.toml"
    pyproject.write_text(_with_mutmut_settings(pyproject.read_text("utf-8"), settings), "utf-8")
    # Tests find shared data at ../shared from the repository root: from the copy (on-disk
    # mode) and from mutmut's copy of it, ``mutants/``.
    shared = root.resolve().parent / "shared"
    if shared.is_dir():
        for link in (parent / "shared", tree / "shared"):
            if not link.exists():
                link.symlink_to(shared, target_is_directory=True)
    return tree


def _with_mutmut_settings(text: str, settings: Mapping[str, object]) -> str:
    """``text`` with ``settings`` added to its ``[tool.mutmut]`` table (JSON is valid TOML here)."""
    if "[tool.mutmut]" not in text.splitlines():  # an older tree: this checkout's table
        ours = (ROOT / "pyproject.toml").read_text("utf-8").splitlines()
        start = ours.index("[tool.mutmut]")
        end = next((i for i in range(start + 1, len(ours)) if ours[i].startswith("[")), None)
        text = "\n".join([text.rstrip("\n"), "", *ours[start:end]])
    lines = text.splitlines()
    start = lines.index("[tool.mutmut]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    table = [ln for ln in lines[start + 1 : end] if ln.split("=")[0].strip() not in settings]
    added = [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in settings.items()]
    return "\n".join([*lines[: start + 1], *table, *added, *lines[end:]]) + "\n"


def _pytest_args(tree: Path) -> list[str]:
    """The ``pytest_add_cli_args`` of the copy's ``[tool.mutmut]``."""
    import tomllib

    config = tomllib.loads((tree / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]
    return list(config.get("pytest_add_cli_args", []))


# ---------------------------------------------------------------- mutmut (imported modules)


def run_mutmut(target: Target, tree: Path, jobs: int, log: Path) -> Outcome:
    """``mutmut run`` in ``tree``; the statuses of ``target``'s mutants and survivors' diffs."""
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    globs = target.mutant_globs()
    with log.open("w") as out:
        done = subprocess.run(
            [mutmut, "run", "--max-children", str(jobs), *globs],
            cwd=tree,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        hint = ""
        if "Unable to force test failures" in log.read_text(errors="replace"):
            hint = (
                "mutmut's trampolines never ran: the module's code is decorated, runs at "
                "import, or sits in class bodies; mark the target on_disk=True. "
            )
        return Outcome(
            target.path, {}, error=f"{hint}mutmut run exited {done.returncode}: {_tail(log)}"
        )
    listing = subprocess.run(
        [mutmut, "results", "--all", "true"], cwd=tree, capture_output=True, text=True, check=True
    ).stdout
    statuses = {}
    for line in listing.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and (not globs or any(fnmatch.fnmatchcase(name, g) for g in globs)):
            statuses[name] = status
    outcome = Outcome(target.path, statuses)
    outcome.diffs = _mutmut_diffs(tree, outcome.survivors)
    return outcome


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
print(json.dumps({name: get_diff_for_mutant(name) for name in json.load(sys.stdin)}))
"""


def _mutmut_diffs(tree: Path, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    done = subprocess.run(
        [sys.executable, "-c", _DIFFS],
        cwd=tree,
        input=json.dumps(names),
        capture_output=True,
        text=True,
        check=True,
    )
    diffs: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    return diffs


def _tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------- on disk (fresh pytest each)


def disk_mutants(tree: Path, target: Target) -> list[tuple[str, str]]:
    """``(name, source)`` for each of mutmut's mutations of ``target``, one at a time.

    Module and class-level code is mutated too (named ``x_module__mutmut_N``).
    """
    import libcst as cst
    from mutmut.mutation.file_mutation import create_mutations, deep_replace

    source = (tree / target.path).read_text("utf-8")
    with contextlib.chdir(tree):  # mutmut reads [tool.mutmut] from the working directory
        module, mutations, _, _ = create_mutations(target.path, source)
    numbers: Counter[str] = Counter()
    mutants = []
    for mutation in mutations:
        # The enclosing top-level function or method; a class-body statement is "module".
        func = mutation.contained_by_top_level_function
        owner = func.name.value if isinstance(func, cst.FunctionDef) else "module"
        numbers[owner] += 1
        mutated = deep_replace(module, mutation.original_node, mutation.mutated_node)
        name = f"{target.dotted}.x_{owner}__mutmut_{numbers[owner]}"
        mutants.append((name, mutated.code))  # type: ignore[union-attr]
    return mutants


class DiskRunner:
    """Runs ``tests`` against one version of ``target`` at a time in each of ``copies``."""

    def __init__(self, target: Target, copies: list[Path], tests: list[str]) -> None:
        self.target = target
        self.original = (copies[0] / target.path).read_text("utf-8")
        self.free: queue.Queue[Path] = queue.Queue()
        for copy in copies:
            self.free.put(copy)
        self.command = [
            sys.executable, "-m", "pytest", "-x", "-q", "--rootdir=.", "-p", "no:randomly",
            *_pytest_args(copies[0]), *tests,
        ]  # fmt: skip
        # No bytecode: a mutant of the same size written in the same second as the last
        # would otherwise be run from the last one's stale .pyc.
        self.env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}
        self.timeout: float | None = None

    def run(self, source: str, log: Path | None = None) -> int:
        """The tests' exit status with ``source`` in place (-1: they outran the timeout)."""
        copy = self.free.get()
        path = copy / self.target.path
        try:
            path.write_text(source, "utf-8")
            with log.open("a") if log else open(os.devnull, "w") as out:
                return subprocess.run(
                    self.command,
                    cwd=copy,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=self.timeout,
                    check=False,
                ).returncode
        except subprocess.TimeoutExpired:
            return -1
        finally:
            path.write_text(self.original, "utf-8")
            self.free.put(copy)


def run_on_disk(target: Target, tree: Path, tests: list[str], log: Path, jobs: int) -> Outcome:
    """Write each mutant into a copy of ``tree`` and run the module's tests in a fresh pytest."""
    copies = [tree] + [
        Path(shutil.copytree(tree, tree.with_name(f"{tree.name}.{n}"), symlinks=True))
        for n in range(1, jobs)
    ]
    runner = DiskRunner(target, copies, tests)
    start = time.monotonic()
    if runner.run(runner.original, log) != 0:
        return Outcome(target.path, {}, error=f"the clean tests failed: {_tail(log)}")
    runner.timeout = (time.monotonic() - start) * 10 + 30
    # A planted bug must fail the tests, or they are not running the copy's file.
    planted = 'raise SystemExit("mutation self-check")\n' + runner.original
    if runner.run(planted, log) == 0:
        return Outcome(target.path, {}, error="a planted bug passed: the tests miss the copy")
    mutants = disk_mutants(tree, target)
    done = iter(range(1, len(mutants) + 1))

    def run_one(source: str) -> int:
        code = runner.run(source)
        count = next(done)  # a range iterator hands each number out once, across threads
        if count % 10 == 0 or count == len(mutants):
            print(f"· {target.path}: {count}/{len(mutants)} mutants", file=sys.stderr, flush=True)
        return code

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        codes = list(pool.map(run_one, [source for _, source in mutants]))
    outcome = Outcome(target.path, {})
    for (name, source), code in zip(mutants, codes, strict=True):
        outcome.statuses[name] = "survived" if code == 0 else "timeout" if code < 0 else "killed"
        if code == 0:
            outcome.diffs[name] = _diff(runner.original, source, target.path)
    return outcome


def _diff(before: str, after: str, path: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), path, path, n=1, lineterm=""
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- report


def mutate(target: Target, root: Path, parent: Path, jobs: int) -> Outcome:
    """Mutation-test one module of the tree ``root`` in a scratch copy under ``parent``."""
    start = time.monotonic()
    tests = target.test_files(root)
    if not tests:
        return Outcome(target.path, {}, error=f"no test file matches {list(target.tests)}")
    tree = scratch_copy(root, parent, target, tests)
    log = parent / f"{target.dotted}.log"
    print(f"· {target.path}: {len(tests)} test files; log {log}", file=sys.stderr, flush=True)
    if target.on_disk:
        outcome = run_on_disk(target, tree, tests, log, jobs)
    else:
        outcome = run_mutmut(target, tree, jobs, log)
    outcome.mark_equivalent(load_equivalent())
    outcome.seconds = time.monotonic() - start
    return outcome


def save(outcome: Outcome, tree: Path) -> Path:
    """Write the module's counts, survivors and their diffs to ``tree/runs/mutation/``."""
    reports = tree / "runs" / "mutation"
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / f"{outcome.module.removesuffix('.py').replace('/', '.')}.json"
    details = {"survivor_diffs": outcome.diffs, "equivalent": outcome.equivalent}
    path.write_text(json.dumps(_figures(outcome) | details, indent=2))
    return path


def _figures(outcome: Outcome, *, brief: bool = False) -> dict[str, object]:
    figures: dict[str, object] = {
        "score": round(outcome.score, 1),
        "raw_score": round(outcome.raw_score, 1),
        "mutants": outcome.total,
        "killed": outcome.caught,
        "equivalent": len(outcome.equivalent),
        "survived": len(outcome.survivors) - len(outcome.equivalent),
        "no_tests": outcome.counts["no tests"],
        "seconds": round(outcome.seconds),
        "error": outcome.error,
    }
    return figures if brief else figures | {"survivors": outcome.survivors}


def print_survivors(outcome: Outcome) -> None:
    for name in outcome.survivors:
        why = outcome.equivalent.get(name)
        status = f"equivalent: {why}" if why else outcome.statuses[name]
        print(f"\n# {name} ({status})\n{outcome.diffs.get(name, '')}")


def print_table(outcomes: list[Outcome], fail_under: float) -> None:
    """Per module: mutants, killed, equivalent, other survivors, score (and raw score)."""
    columns = ("mutants", "killed", "equiv.", "survived", "score", "raw")
    header = f"{'module':<36}" + "".join(f"{c:>9}" for c in columns)
    print(header)
    print("-" * len(header))
    for o in outcomes:
        if o.error:
            print(f"{o.module:<36} ERROR: {o.error.splitlines()[0]}")
            continue
        survived = len(o.survivors) - len(o.equivalent)
        counts = (o.total, o.caught, len(o.equivalent), survived)
        flag = "" if o.score >= fail_under else f"  < {fail_under:g}"
        scores = f"{o.score:>8.1f}%{o.raw_score:>8.1f}%"
        print(f"{o.module:<36}" + "".join(f"{n:>9}" for n in counts) + scores + flag)


def select(patterns: list[str]) -> list[Target]:
    """Targets by path, dotted name or glob (``gateway/*``); all of them for none."""
    if not patterns:
        return list(TARGETS.values())
    chosen = []
    for pattern in patterns:
        hits = [
            t
            for t in TARGETS.values()
            if fnmatch.fnmatch(t.path, pattern) or fnmatch.fnmatch(t.dotted, pattern)
        ]
        if not hits:
            raise SystemExit(f"{pattern!r} is none of the modules: {', '.join(TARGETS)}")
        chosen += [t for t in hits if t not in chosen]
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="paths or globs; default: every module")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="mutmut workers")
    parser.add_argument("--fail-under", type=float, default=TARGET_SCORE, metavar="PERCENT")
    parser.add_argument("--survivors", action="store_true", help="print survivors' diffs")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="the tree to mutate, e.g. a `git archive` export of an older commit; its "
        "reports go to TREE/runs/mutation",
    )
    args = parser.parse_args(argv)
    targets = select(args.modules)
    parent = Path(tempfile.mkdtemp(prefix="autoscholar-mutation-"))
    # A mutant can undo the runner's scrubbed environment, and then the experiment code of a
    # test sees the engineer's HOME: one such run deleted a home folder. Every process of the
    # run (mutmut, pytest, the mutants' children) gets a throwaway one instead.
    home = parent / "home"
    home.mkdir()
    os.environ["HOME"] = str(home)
    outcomes = []
    try:
        for target in targets:
            outcome = mutate(target, args.tree, parent, args.jobs)
            outcomes.append(outcome)
            report = save(outcome, args.tree)
            print(f"· {target.path}: {outcome.score:.1f}% ({report})", file=sys.stderr)
    finally:
        if args.keep:
            print(f"· scratch copies kept in {parent}", file=sys.stderr)
        else:
            shutil.rmtree(parent, ignore_errors=True)
    if args.survivors:
        for outcome in outcomes:
            print_survivors(outcome)
        print()
    print_table(outcomes, args.fail_under)
    sys.stdout.flush()
    print(json.dumps({o.module: _figures(o, brief=True) for o in outcomes}))
    if any(o.error for o in outcomes):
        return 2
    return 1 if any(o.score < args.fail_under for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
