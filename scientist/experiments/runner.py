"""The sandboxed runner: one experiment or plot run in its own process group, bounded.

Each run gets its own session (so its own process group), the idea folder as working
directory, a wall-clock timeout, an address-space limit (``RLIMIT_AS``), a CPU set
(``sched_setaffinity`` plus the BLAS/OpenMP thread variables) and an environment built
from an allow-list, so API keys and ``AUTOSCHOLAR_*`` settings never reach it.
stdout/stderr go to ``logs/`` in the idea folder. On timeout the whole group gets
SIGTERM, then SIGKILL; after a normal exit it is killed too, so forked children do not
outlive the run.

Memory: a run that hits the limit usually dies with ``MemoryError`` (numpy's
``_ArrayMemoryError``: "Unable to allocate …"), ``std::bad_alloc`` or "Cannot allocate
memory" in its stderr; a run killed by SIGKILL that we did not send (the kernel's OOM
killer) counts as memory too. Both are reported as status ``memory``. Known limits: a
child that calls ``setsid`` leaves the group and is not cleaned up (that needs cgroups);
RLIMIT_AS bounds virtual, not resident, memory.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from core.isolation import (
    INSIDE_TMP,
    Isolation,
    box_for,
    bwrap_command,
    check_bwrap,
    launcher_command,
    lent_to,
)
from core.settings import ExperimentsSettings, Settings
from scientist.experiments.environment import EnvStore, TemplateEnv, env_python
from scientist.experiments.errors import ExperimentError
from scientist.experiments.models import (
    EnvironmentRecord,
    GroupResult,
    ProcessOutcome,
    RunOutcome,
    RunStatus,
)

log = logging.getLogger(__name__)
LOG_DIR = "logs"
FINAL_INFO = "final_info.json"
TERM_GRACE_S = 2.0
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
MEMORY_MARKERS = ("MemoryError", "Unable to allocate", "bad_alloc", "Cannot allocate memory")
_RESULTS = TypeAdapter(dict[str, GroupResult])
ProcessStatus = Literal["ok", "failed", "timeout", "memory"]


class SandboxLimits(BaseModel):
    """What one sandboxed run may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(gt=0, description="Wall-clock limit of an experiment run.")
    plot_timeout_s: float = Field(300.0, gt=0, description="Wall-clock limit of plot.py.")
    memory_mb: int = Field(ge=64, description="Address-space limit (RLIMIT_AS).")
    cpus: int = Field(ge=1, description="CPUs the run is pinned to; also its thread count.")
    tail_lines: int = Field(40, ge=1, description="Lines of stderr kept as the error tail.")
    max_processes: int = Field(256, ge=1, description="Processes a run may add (RLIMIT_NPROC).")
    max_file_mb: int = Field(2048, ge=1, description="Largest file a run may write (RLIMIT_FSIZE).")
    max_open_files: int = Field(1024, ge=16, description="Open files (RLIMIT_NOFILE).")
    max_cpu_s: float | None = Field(None, gt=0, description="CPU seconds (RLIMIT_CPU).")

    @classmethod
    def from_settings(cls, settings: ExperimentsSettings) -> SandboxLimits:
        """The limits configured in ``settings.experiments``."""
        return cls(
            timeout_s=settings.run_timeout_s,
            plot_timeout_s=settings.plot_timeout_s,
            memory_mb=settings.memory_limit_mb,
            cpus=settings.cpu_limit,
            tail_lines=settings.error_tail_lines,
            max_processes=settings.max_processes,
            max_file_mb=settings.max_file_mb,
            max_open_files=settings.max_open_files,
            max_cpu_s=settings.max_cpu_s,
        )

    def cpu_seconds(self, timeout_s: float) -> int:
        """CPU time a run may burn (RLIMIT_CPU): ``max_cpu_s``, else every pinned CPU busy
        for the whole timeout."""
        if self.max_cpu_s is not None:
            return math.ceil(self.max_cpu_s)
        return math.ceil(timeout_s * self.cpus) + 1


class Runner(Protocol):
    """Executes a template's scripts in an idea folder; tests may swap in a double."""

    def run_experiment(self, workdir: Path, run_name: str) -> RunOutcome:
        """``python experiment.py --out_dir=<run_name>`` in ``workdir``, results validated."""
        ...

    def run_plot(self, workdir: Path) -> ProcessOutcome:
        """``python plot.py`` in ``workdir``."""
        ...


class FinalInfoError(ExperimentError):
    """``final_info.json`` is missing or does not follow the template contract."""


def parse_final_info(path: Path) -> dict[str, GroupResult]:
    """``{group: {"means": {metric: number}, "stderrs": {...}}}`` from ``path``, validated."""
    if not path.is_file():
        raise FinalInfoError(f"{path.parent.name}/{FINAL_INFO} was not written")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FinalInfoError(f"{path.parent.name}/{FINAL_INFO} is not valid JSON ({exc})") from exc
    try:
        results = _RESULTS.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FinalInfoError(
            f"{path.parent.name}/{FINAL_INFO} does not match "
            '{group: {"means": {metric: number}, "stderrs": {...}}}: '
            f"{where}: {first['msg']}"
        ) from exc
    _check_results(results, path)
    return results


def _check_results(results: dict[str, GroupResult], path: Path) -> None:
    name = f"{path.parent.name}/{FINAL_INFO}"
    if not results:
        raise FinalInfoError(f"{name} holds no groups")
    for group, result in results.items():
        if not result.means:
            raise FinalInfoError(f"{name}: group {group!r} has no means")
        values = {**result.means, **{f"stderr {k}": v for k, v in result.stderrs.items()}}
        for metric, value in values.items():
            if not math.isfinite(value):
                raise FinalInfoError(f"{name}: group {group!r} metric {metric!r} is {value}")


def sandbox_env(home: Path, cpus: int, python: str = sys.executable) -> dict[str, str]:
    """The whole environment of a sandboxed run: an allow-list, nothing inherited."""
    threads = str(cpus)
    env = {
        "PATH": f"{Path(python).parent}:{SYSTEM_PATH}",
        "HOME": str(home),
        "TMPDIR": str(home),
        "MPLCONFIGDIR": str(home / "matplotlib"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    env |= dict.fromkeys(THREAD_VARIABLES, threads)
    return env


def cpu_set(count: int) -> set[int]:
    """The first ``count`` CPUs this process may use."""
    allowed = sorted(os.sched_getaffinity(0))
    return set(allowed[: max(1, count)])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid`` (Linux ``/proc``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def kill_group(pgid: int, grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM the group ``pgid``, wait up to ``grace_s``, then SIGKILL what is left."""
    if not group_members(pgid):
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return


@dataclass(frozen=True)
class _Exit:
    code: int
    timed_out: bool
    seconds: float


class SandboxRunner:
    """The local sandbox: a process group per run, limits, a scrubbed environment.

    Runs use ``python``, or the template's own virtualenv when ``environment`` is given and
    the template has a ``requirements.txt`` (made on the first run, then reused).
    """

    def __init__(
        self,
        limits: SandboxLimits,
        *,
        isolation: Isolation = "none",
        python: str = sys.executable,
        home: Path | None = None,
        environment: TemplateEnv | None = None,
    ) -> None:
        self.limits = limits
        self.isolation: Isolation = isolation
        self.python = python
        self.environment = environment
        self._home = home
        self._bwrap = check_bwrap() if isolation == "bwrap" else None

    @classmethod
    def from_settings(
        cls, settings: ExperimentsSettings, environment: TemplateEnv | None = None
    ) -> SandboxRunner:
        """A runner with the limits and the isolation configured in ``settings`` (bwrap unless
        ``experiments.isolation=none``, which logs a warning)."""
        if settings.isolation == "none":
            log.warning(
                "experiments.isolation=none: LLM-written experiments run with rlimits only and "
                "can read and write whatever this user can"
            )
        return cls(
            SandboxLimits.from_settings(settings),
            isolation=settings.isolation,
            environment=environment,
        )

    @classmethod
    def for_template(cls, settings: Settings, template_dir: Path) -> SandboxRunner:
        """:meth:`from_settings`, running on the template's own virtualenv when it has a
        ``requirements.txt`` and ``experiments.template_envs`` is on."""
        store = EnvStore.from_settings(settings)
        environment = None if store is None else TemplateEnv(store, Path(template_dir))
        return cls.from_settings(settings.experiments, environment)

    def interpreter(self) -> str:
        """The Python runs use: the template's virtualenv (made now if needed), else
        ``python``. Raises ``TemplateEnvError`` when the virtualenv cannot be made."""
        made = self.environment.ensure() if self.environment is not None else None
        return self.python if made is None else env_python(made)

    def run_experiment(self, workdir: Path, run_name: str) -> RunOutcome:
        """Run ``experiment.py --out_dir=<run_name>`` and validate its ``final_info.json``."""
        if not re.fullmatch(r"run_\d+", run_name):
            raise ExperimentError(f"Run names look like run_1, not {run_name!r}.")
        command = [self.interpreter(), "experiment.py", f"--out_dir={run_name}"]
        outcome = self.execute(command, workdir, run_name, self.limits.timeout_s)
        results: dict[str, GroupResult] = {}
        status: RunStatus = outcome.status
        reason = outcome.reason
        if status == "ok":
            try:
                results = parse_final_info(workdir / run_name / FINAL_INFO)
            except FinalInfoError as exc:
                status, reason = "invalid_output", str(exc)
        return RunOutcome(
            run_name=run_name,
            status=status,
            reason=reason,
            exit_code=outcome.exit_code,
            seconds=outcome.seconds,
            results=results,
            stdout_path=outcome.stdout_path,
            stderr_path=outcome.stderr_path,
            error_tail=outcome.error_tail,
        )

    def run_plot(self, workdir: Path) -> ProcessOutcome:
        """Run ``plot.py`` (no arguments) in ``workdir``."""
        command = [self.interpreter(), "plot.py"]
        return self.execute(command, workdir, "plot", self.limits.plot_timeout_s)

    def execute(
        self, command: list[str], workdir: Path, log_stem: str, timeout_s: float
    ) -> ProcessOutcome:
        """Run ``command`` in ``workdir`` under the limits; logs in ``workdir/logs``."""
        stdout_path, stderr_path = _log_paths(workdir, log_stem)
        home = self._sandbox_home()
        try:
            with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
                finished = self._launch_and_wait(command, workdir, home, out, err, timeout_s)
        finally:
            if self._home is None:
                shutil.rmtree(home, ignore_errors=True)
        removed = unlink_escaping_links(workdir)
        if removed:
            log.warning("%s: removed links out of the folder: %s", workdir, ", ".join(removed))
        tail = _tail(stderr_path, self.limits.tail_lines) or _tail(stdout_path, 10)
        status, reason = _classify(finished, tail, self.limits, timeout_s)
        return ProcessOutcome(
            status=status,
            reason=reason,
            exit_code=None if finished.timed_out else finished.code,
            seconds=round(finished.seconds, 3),
            stdout_path=str(stdout_path.relative_to(workdir)),
            stderr_path=str(stderr_path.relative_to(workdir)),
            error_tail="" if status == "ok" else tail,
        )

    def _launch_and_wait(
        self,
        command: list[str],
        workdir: Path,
        home: Path,
        out: IO[bytes],
        err: IO[bytes],
        timeout_s: float,
    ) -> _Exit:
        # command[0] is the run's interpreter: ours, or the template's virtualenv (the box
        # mounts it, and its base install, read-only).
        program = shutil.which(command[0]) or command[0]
        inner, env = [program, *command[1:]], sandbox_env(home, self.limits.cpus, program)
        if self._bwrap is None:
            log.warning("%s: running LLM-written code without the box (isolation=none)", workdir)
            launcher = self._launcher(inner, os.getuid(), timeout_s)
            return self._wait(launcher, workdir, env, out, err, timeout_s)
        box = box_for(workdir, [Path(program).parent], program)
        uid = box.drop_to_uid if box.drop_to_uid is not None else os.getuid()
        launcher = self._launcher(bwrap_command(box, inner, self._bwrap), uid, timeout_s)
        env = sandbox_env(INSIDE_TMP, self.limits.cpus, program)
        with lent_to(box):
            return self._wait(launcher, workdir, env, out, err, timeout_s)

    def _launcher(self, inner: list[str], nproc_uid: int, timeout_s: float) -> list[str]:
        """``_sandbox.py`` with this run's limits, then ``inner``."""
        limits = self.limits
        return launcher_command(
            inner,
            {
                "memory-mb": limits.memory_mb,
                "cpus": ",".join(str(c) for c in sorted(cpu_set(limits.cpus))),
                "nproc": limits.max_processes,
                "fsize-mb": limits.max_file_mb,
                "nofile": limits.max_open_files,
                "cpu-s": limits.cpu_seconds(timeout_s),
                "nproc-uid": nproc_uid,
            },
            self.python,
        )

    @staticmethod
    def _wait(
        launcher: list[str],
        workdir: Path,
        env: dict[str, str],
        out: IO[bytes],
        err: IO[bytes],
        timeout_s: float,
    ) -> _Exit:
        start = time.monotonic()
        process = subprocess.Popen(
            launcher,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(process.pid)
            process.wait()
        seconds = time.monotonic() - start
        # The leader is gone; its forked children may not be. The group id stays reserved
        # while any member lives, so this kills only what this run started.
        kill_group(process.pid, grace_s=0.5)
        return _Exit(code=process.returncode, timed_out=timed_out, seconds=seconds)

    def _sandbox_home(self) -> Path:
        if self._home is not None:
            self._home.mkdir(parents=True, exist_ok=True)
            return self._home
        return Path(tempfile.mkdtemp(prefix="autoscholar-sandbox-"))


def environment_of(runner: Runner) -> EnvironmentRecord | None:
    """The template virtualenv ``runner`` has run in, if any (only the sandbox runner has
    one; a test double runs on whatever it likes)."""
    if isinstance(runner, SandboxRunner) and runner.environment is not None:
        return runner.environment.made
    return None


def prepare_environment(runner: Runner) -> EnvironmentRecord | None:
    """Make (or find) the template virtualenv ``runner`` will run in now, not at its first
    run: a paper run calls this before any model call, so a broken ``requirements.txt``
    fails before ideas are paid for. None when it runs on no template virtualenv; raises
    ``TemplateEnvError`` when the virtualenv cannot be made."""
    if isinstance(runner, SandboxRunner) and runner.environment is not None:
        return runner.environment.ensure()
    return None


def environment_key(runner: Runner) -> str | None:
    """The key of the template virtualenv ``runner`` runs in (its requirements and Python
    version), worked out without making it; None when it runs on no template virtualenv."""
    if isinstance(runner, SandboxRunner) and runner.environment is not None:
        return runner.environment.key()
    return None


def _classify(
    finished: _Exit, tail: str, limits: SandboxLimits, timeout_s: float
) -> tuple[ProcessStatus, str | None]:
    """(status, reason) of a finished process."""
    if finished.timed_out:
        return "timeout", f"ran past the {timeout_s:g} s limit and was killed"
    if finished.code == 0:
        return "ok", None
    memory_hint = f"ran out of memory (limit {limits.memory_mb} MB)"
    if any(marker in tail for marker in MEMORY_MARKERS):
        return "memory", f"{memory_hint}: {_last_line(tail)}"
    if finished.code == -signal.SIGKILL:
        return "memory", f"{memory_hint}: killed by SIGKILL (the kernel's out-of-memory killer)"
    if finished.code < 0:
        return "failed", f"killed by {signal.Signals(-finished.code).name}"
    return "failed", f"exit code {finished.code}: {_last_line(tail) or 'no error output'}"


def unlink_escaping_links(workdir: Path) -> list[str]:
    """Remove every symlink under ``workdir`` that points outside it (or nowhere); their
    paths, relative. Run after the box has exited: code in the box may leave a link to a host
    file where the host later reads as itself (a log, final_info.json, notes, a figure)."""
    root = workdir.resolve()
    removed: list[str] = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            if not path.is_symlink():
                continue
            target = path.resolve()
            if not target.exists() or not target.is_relative_to(root):
                path.unlink()
                removed.append(str(path.relative_to(root)))
    return removed


def _log_paths(workdir: Path, stem: str) -> tuple[Path, Path]:
    """Fresh ``logs/<stem>[-k].stdout.txt`` / ``.stderr.txt`` paths (earlier logs are kept)."""
    logs = workdir / LOG_DIR
    if logs.is_symlink() or (logs.exists() and not logs.is_dir()):
        logs.unlink()  # an earlier run's code may leave a link where the host writes as itself
    logs.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        name = stem if attempt == 1 else f"{stem}-{attempt}"
        stdout, stderr = logs / f"{name}.stdout.txt", logs / f"{name}.stderr.txt"
        if not stdout.exists() and not stderr.exists():
            return stdout, stderr
    raise ExperimentError(f"{logs} holds 999 logs of {stem}; clear old ones.")


def _tail(path: Path, lines: int) -> str:
    try:  # never through a link: the box's code could have swapped one in
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])[-6000:]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
