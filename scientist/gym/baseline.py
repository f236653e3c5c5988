"""The baseline an episode starts from: the template's own run_0 when it is current (made by
`scientist baseline`), else one made once per machine under ``<data_dir>/gym/baselines`` and
reused by every later episode (same experiment.py, same environment: the stamp says)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from scientist.experiments.errors import BaselineError
from scientist.experiments.models import RunOutcome
from scientist.experiments.runner import Runner, environment_key
from scientist.experiments.workspace import (
    BASELINE,
    STAMP,
    BaselineStamp,
    copy_template,
    reuse_baseline,
    sha256_file,
)
from scientist.gym.task import EXPERIMENT_FILE, GymTask

log = logging.getLogger(__name__)


def cache_dir(task: GymTask, cache_root: Path) -> Path:
    """Where this template's baseline is kept: one folder per experiment.py version."""
    digest = sha256_file(task.template_dir / EXPERIMENT_FILE)[:12]
    return cache_root / f"{task.spec.name}-{digest}"


def install_baseline(
    task: GymTask, workspace: Path, runner: Runner, cache_root: Path
) -> RunOutcome:
    """Put a valid run_0 into ``workspace`` and return its outcome: reused from the template
    or the cache, or run now (once) into the cache. Raises ``BaselineError`` if it fails."""
    key = environment_key(runner)
    reused = reuse_baseline(task.template_dir, workspace, key)
    if reused is not None:
        return reused
    cached = cache_dir(task, cache_root)
    reused = reuse_baseline(cached, workspace, key)
    if reused is not None:
        return reused
    _make_cache(task, cached, runner, key)
    reused = reuse_baseline(cached, workspace, key)
    if reused is None:  # a stamp we just wrote does not match: a bug, not a user error
        raise BaselineError(f"The baseline made in {cached} cannot be reused; remove the folder.")
    return reused


def _make_cache(task: GymTask, target: Path, runner: Runner, key: str | None) -> None:
    """Run the baseline in a fresh copy of the template beside ``target``, stamp it, and
    move it into place (a folder under its final name is always complete)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".tmp-{target.name}-"))
    try:
        copy_template(task.template_dir, work)
        log.info("running %s's baseline for the gym in %s", task.spec.name, work)
        outcome = runner.run_experiment(work, BASELINE)
        if outcome.status != "ok":
            raise BaselineError(
                f"The baseline of template {task.spec.name} failed ({outcome.status}: "
                f"{outcome.reason}), so there is nothing to compare an agent against. Fix the "
                f"template's experiment.py, or check it with `scientist baseline "
                f"{task.template_dir}`.\n{outcome.error_tail}"
            )
        _stamp(work, outcome, key)
        _move_into_place(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _stamp(folder: Path, outcome: RunOutcome, key: str | None) -> None:
    stamp = BaselineStamp(
        experiment_sha256=sha256_file(folder / EXPERIMENT_FILE),
        environment_key=key,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        outcome=outcome,
    )
    (folder / BASELINE / STAMP).write_text(stamp.model_dump_json(indent=1), encoding="utf-8")


def _move_into_place(work: Path, target: Path) -> None:
    """Replace a stale ``target`` by ``work``; when another process got there first, its
    (equally fresh) folder stays and ours is dropped."""
    if target.exists():
        stale = target.with_name(f".stale-{target.name}-{os.getpid()}")
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        work.rename(target)
    except OSError:
        log.info("another process made %s first; using its baseline", target)
