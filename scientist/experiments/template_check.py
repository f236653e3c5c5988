"""``scientist template check``: a template's files, its baseline run and its plot, checked."""

from __future__ import annotations

import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scientist.errors import TemplateError
from scientist.experiments.environment import EnvStore
from scientist.experiments.errors import TemplateEnvError
from scientist.experiments.models import RunOutcome
from scientist.experiments.requirements import REQUIREMENTS, normalize
from scientist.experiments.runner import Runner
from scientist.ideas.models import Idea
from scientist.ideas.template import (
    REQUIRED_FILES,
    TemplatePrompt,
    as_list,
    missing_files,
    read_json,
    resolve_template,
)

ENV_CHECK = "environment (requirements.txt)"


class CheckItem(BaseModel):
    """One line of a template check: what was checked, whether it passed, and why."""

    model_config = ConfigDict(extra="forbid")

    name: str
    ok: bool
    detail: str = ""


class TemplateCheck(BaseModel):
    """``scientist template check``'s report."""

    model_config = ConfigDict(extra="forbid")

    template: str
    items: list[CheckItem] = Field(default_factory=list)
    baseline_seconds: float | None = None

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(item.ok for item in self.items)


def check_template(
    name_or_path: str | Path, runner: Runner | None = None, envs: EnvStore | None = None
) -> TemplateCheck:
    """Validate a template's files, JSON and seed ideas, and say what its own environment
    needs (``envs``: where template virtualenvs live); with a runner, also make that
    environment and run the baseline and plot.py in a temporary copy (the template folder
    is left untouched)."""
    path = resolve_template(name_or_path)
    report = TemplateCheck(template=str(path))
    missing = missing_files(path)
    report.items.append(
        CheckItem(name="files present", ok=not missing, detail=_missing_detail(missing))
    )
    report.items += _static_checks(path)
    env_item = _environment_item(path, envs)
    if env_item is not None:
        report.items.append(env_item)
    if runner is None or missing or (env_item is not None and not env_item.ok):
        return report
    if _make_environment(path, envs, report):
        _run_checks(path, runner, report)
    return report


def _missing_detail(missing: list[str]) -> str:
    return f"missing: {', '.join(missing)}" if missing else ", ".join(REQUIRED_FILES)


def _static_checks(path: Path) -> list[CheckItem]:
    checks = [
        _check("prompt.json valid", lambda: _prompt_detail(path)),
        _check("seed_ideas.json valid", lambda: _seeds_detail(path)),
        _check("experiment.py takes --out_dir", lambda: _experiment_detail(path)),
        _check("plot.py has a labels dict", lambda: _plot_detail(path)),
        _check("latex/template.tex usable", lambda: _latex_detail(path)),
    ]
    return checks


def _check(name: str, probe: Callable[[], str]) -> CheckItem:
    """Run ``probe``; a TemplateError or a missing file fails the check with its message."""
    try:
        return CheckItem(name=name, ok=True, detail=probe())
    except (TemplateError, TemplateEnvError, OSError) as exc:
        return CheckItem(name=name, ok=False, detail=str(exc))


def _environment_item(path: Path, envs: EnvStore | None) -> CheckItem | None:
    """What the template's requirements.txt asks for and whether its virtualenv exists."""
    if not (path / REQUIREMENTS).is_file():
        return None
    if envs is None:
        detail = "not used (experiments.template_envs=false): runs use autoscholar's interpreter"
        return CheckItem(name=ENV_CHECK, ok=True, detail=detail)
    return _check(ENV_CHECK, lambda: _environment_detail(path, envs))


def _environment_detail(path: Path, envs: EnvStore) -> str:
    request = envs.request_for(path)
    if request is None:
        return "no requirements.txt"
    made = envs.find(request)
    if made is not None:
        versions = {normalize(name): (name, v) for name, v in made.packages.items()}
        listed = [versions.get(normalize(n), (n, "missing")) for n in request.names]
        pins = ", ".join(f"{name} {version}" for name, version in listed)
        return f"ready: {made.path} (Python {made.python_version}; {pins})"
    wanted = ", ".join(envs.missing(request)) or "none named"
    commands = " && ".join(shlex.join(command) for command in envs.commands(request))
    return (
        f"not made yet; missing: {wanted}; will run: {commands} (Python "
        f"{request.python_version}; pip in the template folder; built in a temporary folder "
        "and renamed when complete)"
    )


def _make_environment(path: Path, envs: EnvStore | None, report: TemplateCheck) -> bool:
    """Make (or find) the template's virtualenv before its baseline; False when that failed."""
    request = None if envs is None else envs.request_for(path)
    if envs is None or request is None:
        return True
    existing, start = envs.find(request), time.monotonic()
    try:
        made = existing or envs.ensure(request)
    except TemplateEnvError as exc:
        report.items.append(CheckItem(name="environment made", ok=False, detail=str(exc)))
        return False
    how = "reused" if existing else f"made in {time.monotonic() - start:.1f} s"
    detail = f"{how}: {made.path} ({len(made.packages)} distributions)"
    report.items.append(CheckItem(name="environment made", ok=True, detail=detail))
    return True


def _prompt_detail(path: Path) -> str:
    try:
        prompt = TemplatePrompt.model_validate(read_json(path / "prompt.json"))
    except ValidationError as exc:
        raise TemplateError(_first_error(exc)) from exc
    return f"system {len(prompt.system)} chars, task {len(prompt.task_description)} chars"


def _seeds_detail(path: Path) -> str:
    items = as_list(read_json(path / "seed_ideas.json"))
    try:
        seeds = [Idea.model_validate(item) for item in items]
    except ValidationError as exc:
        raise TemplateError(_first_error(exc)) from exc
    if not seeds:
        raise TemplateError("seed_ideas.json holds no ideas; add one or two.")
    note = "" if len(seeds) <= 2 else " (the contract suggests 1-2)"
    return f"{len(seeds)} idea(s): {', '.join(s.Name for s in seeds)}{note}"


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def _experiment_detail(path: Path) -> str:
    code = (path / "experiment.py").read_text(encoding="utf-8")
    if "out_dir" not in code:
        raise TemplateError("experiment.py never mentions out_dir; it must accept --out_dir.")
    lines = len(code.splitlines())
    note = "" if lines <= 200 else "; long: the idea model sees the whole file"
    return f"{lines} lines{note}"


def _plot_detail(path: Path) -> str:
    code = (path / "plot.py").read_text(encoding="utf-8")
    if not re.search(r"^labels\s*=\s*\{", code, re.MULTILINE):
        raise TemplateError('plot.py needs a top-level `labels = {"run_0": "Baseline", ...}`.')
    return "labels found"


def _latex_detail(path: Path) -> str:
    tex = (path / "latex" / "template.tex").read_text(encoding="utf-8")
    for needed in (r"\begin{document}", r"\end{document}"):
        if needed not in tex:
            raise TemplateError(f"latex/template.tex lacks {needed}.")
    if r"\begin{filecontents}{references.bib}" in tex:
        return "embedded references.bib"
    if (path / "latex" / "references.bib").is_file():
        return "separate references.bib"
    raise TemplateError(
        "latex/template.tex has no embedded filecontents references.bib and "
        "latex/references.bib is missing."
    )


def _run_checks(path: Path, runner: Runner, report: TemplateCheck) -> None:
    """Baseline and plot.py in a temporary copy of the template."""
    with tempfile.TemporaryDirectory(prefix="autoscholar-check-") as tmp:
        work = Path(tmp) / path.name
        shutil.copytree(path, work, ignore=shutil.ignore_patterns("run_*", "logs", "*.png"))
        outcome = runner.run_experiment(work, "run_0")
        report.baseline_seconds = outcome.seconds
        report.items.append(_baseline_item(outcome))
        if outcome.status != "ok":
            return
        plot = runner.run_plot(work)
        pngs = sorted(p.name for p in work.glob("*.png"))
        ok = plot.status == "ok" and bool(pngs)
        detail = ", ".join(pngs) if ok else (plot.reason or "no .png files written")
        if plot.status != "ok" and plot.error_tail:
            detail += "\n" + plot.error_tail[-500:]
        report.items.append(CheckItem(name="plot.py runs", ok=ok, detail=detail))


def _baseline_item(outcome: RunOutcome) -> CheckItem:
    if outcome.status != "ok":
        detail = f"{outcome.status}: {outcome.reason}"
        if outcome.error_tail:
            detail += "\n" + outcome.error_tail[-500:]
        return CheckItem(name="baseline runs (sandbox)", ok=False, detail=detail)
    groups = ", ".join(
        f"{g} ({len(r.means)} metrics{'' if r.stderrs else ', no stderrs'})"
        for g, r in outcome.results.items()
    )
    return CheckItem(
        name="baseline runs (sandbox)", ok=True, detail=f"{outcome.seconds:.1f} s; {groups}"
    )
