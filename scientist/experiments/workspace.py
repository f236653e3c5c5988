"""The idea folder: a copy of the template, its baseline, file snapshots and ``notes.txt``."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from scientist.experiments.models import FigureNote, GroupResult, ProcessOutcome, RunOutcome
from scientist.experiments.runner import (
    FINAL_INFO,
    LOG_DIR,
    FinalInfoError,
    Runner,
    environment_key,
    parse_final_info,
)
from scientist.ideas.models import Idea

BASELINE = "run_0"
STAMP = "baseline.json"
NOTES = "notes.txt"
FIGURES_HEADING = "## Figures"
CODER_FILES = ("experiment.py", "plot.py", NOTES)
# What the stage itself creates in an idea folder; cleared when the stage starts afresh.
_GENERATED = re.compile(r"^(run_\d+|logs|__pycache__|.*\.png|\.aider.*|experiments\.json)$")


class BaselineStamp(BaseModel):
    """``run_0/baseline.json``: which experiment.py, in which environment, produced the
    baseline, and how it ran."""

    model_config = ConfigDict(extra="forbid")

    experiment_sha256: str
    environment_key: str | None = Field(
        None,
        description="Key of the template virtualenv the baseline ran in (a hash of "
        "requirements.txt and the Python version); None: autoscholar's own interpreter, as "
        "in every stamp written before templates had environments.",
    )
    created: str
    outcome: RunOutcome


class BaselineReport(BaseModel):
    """What ``scientist baseline`` did in a template folder."""

    model_config = ConfigDict(extra="forbid")

    outcome: RunOutcome
    plot: ProcessOutcome | None = None
    figures: list[str] = Field(default_factory=list)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clear_generated(folder: Path) -> None:
    """Remove run folders, logs, figures and Aider files left by an earlier attempt."""
    for entry in folder.iterdir():
        if _GENERATED.match(entry.name):
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def copy_template(template_dir: Path, idea_dir: Path) -> None:
    """Copy the template's files into ``idea_dir`` (not its runs, logs or figures)."""
    idea_dir.mkdir(parents=True, exist_ok=True)
    clear_generated(idea_dir)
    for entry in template_dir.iterdir():
        if _GENERATED.match(entry.name) or entry.name == NOTES:
            continue
        target = idea_dir / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, target)


def make_baseline(template_dir: Path, runner: Runner) -> BaselineReport:
    """Run the baseline (run_0) and plot.py in the template folder; stamp run_0 on success."""
    shutil.rmtree(template_dir / BASELINE, ignore_errors=True)
    for old in (template_dir / LOG_DIR).glob("*"):
        if old.name.startswith((f"{BASELINE}.", f"{BASELINE}-", "plot.", "plot-")):
            old.unlink()
    outcome = runner.run_experiment(template_dir, BASELINE)
    if outcome.status != "ok":
        return BaselineReport(outcome=outcome)
    stamp = BaselineStamp(
        experiment_sha256=sha256_file(template_dir / "experiment.py"),
        environment_key=environment_key(runner),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        outcome=outcome,
    )
    (template_dir / BASELINE / STAMP).write_text(stamp.model_dump_json(indent=1), encoding="utf-8")
    plot = runner.run_plot(template_dir)
    return BaselineReport(outcome=outcome, plot=plot, figures=figure_files(template_dir))


def reuse_baseline(template_dir: Path, idea_dir: Path, env_key: str | None) -> RunOutcome | None:
    """Copy the template's run_0 if it is valid and was made by this experiment.py in the
    environment runs use now (``env_key``: the template virtualenv's key, None for
    autoscholar's interpreter); a changed requirements.txt or Python makes it stale.

    A run_0 without our stamp (made by hand, The AI Scientist's way) is trusted as it is.
    """
    source = template_dir / BASELINE
    try:
        results = parse_final_info(source / FINAL_INFO)
    except FinalInfoError:
        return None
    stamp = _read_stamp(source / STAMP)
    if stamp is not None and not _stamp_matches(stamp, template_dir, env_key):
        return None
    shutil.copytree(source, idea_dir / BASELINE, dirs_exist_ok=True)
    if stamp is None:
        note = "reused the template's run_0 (made outside autoscholar)"
        return RunOutcome(
            run_name=BASELINE,
            status="ok",
            reason=note,
            seconds=0.0,
            results=results,
            stdout_path="",
            stderr_path="",
        )
    for log in (stamp.outcome.stdout_path, stamp.outcome.stderr_path):
        if log and (template_dir / log).is_file():
            (idea_dir / log).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(template_dir / log, idea_dir / log)
    return stamp.outcome.model_copy(update={"results": results})


def _stamp_matches(stamp: BaselineStamp, template_dir: Path, env_key: str | None) -> bool:
    """Same experiment.py and same environment. A stamp from before template environments
    reads as None: still good for a template without requirements, stale for one with."""
    same_code = stamp.experiment_sha256 == sha256_file(template_dir / "experiment.py")
    return same_code and stamp.environment_key == env_key


def _read_stamp(path: Path) -> BaselineStamp | None:
    try:
        return BaselineStamp.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def figure_files(folder: Path) -> list[str]:
    """PNG files in the folder root (what plot.py produced), sorted."""
    return sorted(p.name for p in folder.glob("*.png") if p.is_file())


def snapshot(folder: Path, names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The text of each named file ("" when absent), to diff before and after an edit."""
    texts = {}
    for name in names:
        path = folder / name
        texts[name] = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    return texts


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Names whose content differs (compared by SHA-256, as the record states)."""
    digest = {name: _sha(text) for name, text in before.items()}
    return [name for name, text in after.items() if _sha(text) != digest.get(name)]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def unified_diff(before: dict[str, str], after: dict[str, str]) -> str:
    """One unified diff over every file that changed."""
    parts = []
    for name in changed_files(before, after):
        lines = difflib.unified_diff(
            before[name].splitlines(keepends=True),
            after[name].splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
        parts.append("".join(lines))
    return "\n".join(parts)


def start_notes(idea_dir: Path, idea: Idea, baseline: RunOutcome) -> None:
    """notes.txt as The AI Scientist starts it: title, experiment, baseline results."""
    text = (
        f"# Title: {idea.Title}\n"
        f"# Experiment description: {idea.Experiment}\n"
        f"## Run 0: Baseline\n"
        f"Results: {compact_results(baseline.results)}\n"
        "Description: Baseline results.\n"
    )
    (idea_dir / NOTES).write_text(text, encoding="utf-8")


def append_run_notes(idea_dir: Path, run: RunOutcome) -> None:
    """Record a successful run's numbers in notes.txt (the coder adds its description)."""
    number = run.run_name.removeprefix("run_")
    block = (
        f"\n## Run {number} ({run.run_name})\n"
        f"Results: {compact_results(run.results)}\n"
        "Description: \n"
    )
    with (idea_dir / NOTES).open("a", encoding="utf-8") as notes:
        notes.write(block)


def compact_results(results: dict[str, GroupResult]) -> str:
    """``{"group": {"metric": "mean ± stderr"}}`` as one JSON line."""
    return json.dumps(
        {
            group: {m: _pm(v, result.stderrs.get(m)) for m, v in result.means.items()}
            for group, result in results.items()
        }
    )


def _pm(mean: float, stderr: float | None) -> str:
    return f"{mean:.4g}" if stderr is None else f"{mean:.4g} ± {stderr:.2g}"


def add_figures_section(idea_dir: Path, figures: list[str]) -> None:
    """Append a "## Figures" section with one line per figure for the coder to complete."""
    lines = "".join(f"- {name}: \n" for name in figures)
    with (idea_dir / NOTES).open("a", encoding="utf-8") as notes:
        notes.write(f"\n{FIGURES_HEADING}\n{lines}")


def figure_notes(notes: str, figures: list[str]) -> list[FigureNote]:
    """Each figure's description: its "- name.png: …" line (plus continuation lines)."""
    return [FigureNote(path=name, description=_describe(notes, name)) for name in figures]


def _describe(notes: str, name: str) -> str:
    lines = notes.splitlines()
    found = ""
    for i, line in enumerate(lines):
        stripped = line.strip().lstrip("-*").strip()
        if not stripped.startswith(name):
            continue
        text = [stripped[len(name) :].lstrip(" :-–")]
        for follow in lines[i + 1 :]:
            if not follow.strip() or follow.lstrip().startswith(("-", "*", "#")):
                break
            text.append(follow.strip())
        found = " ".join(t for t in text if t).strip() or found
    return found
