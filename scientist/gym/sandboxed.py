"""The commands that execute something (python, bash, search): always in the experiment
sandbox (``SandboxRunner.execute``: the bubblewrap box with the experiment limits), never in
the host process. Their output is read back from the run's logs.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Protocol

from scientist.experiments.models import ProcessOutcome, RunOutcome
from scientist.experiments.runner import SYSTEM_PATH, Runner
from scientist.gym.errors import CommandError
from scientist.gym.files import inside

SEARCH_PROGRAM = Path(__file__).with_name("_search.py").read_text(encoding="utf-8")
# The shell is started by the run's interpreter: the box mounts that interpreter (and its
# virtualenv) and puts its folder first on PATH, so `python` in the shell is the one
# experiments run on. The shell itself is the host's, read-only in the box (/usr, /bin).
SHELL_SHIM = "import os, sys; os.execv(sys.argv[1], [sys.argv[1], '-c', sys.argv[2]])"


class GymRunner(Runner, Protocol):
    """A runner that can also execute any command in the box (the sandbox runner can)."""

    def execute(
        self, command: list[str], workdir: Path, log_stem: str, timeout_s: float
    ) -> ProcessOutcome:
        """``command`` in ``workdir`` under the limits; logs in ``workdir/logs``."""
        ...

    def interpreter(self) -> str:
        """The Python that experiments run on."""
        ...


def python_command(
    interpreter: str, workspace: Path, path: str | None, args: list[str], code: str | None
) -> list[str]:
    """``python SCRIPT ARGS`` (the script checked to be inside the workspace) or
    ``python -c CODE``."""
    if code is not None:
        return [interpreter, "-c", code]
    assert path is not None  # the action's validator demands one of the two
    script = inside(workspace, path)
    if not script.is_file():
        raise CommandError(f"{path} is not a file of the workspace.")
    return [interpreter, script.relative_to(workspace.resolve()).as_posix(), *args]


def bash_command(interpreter: str, cmd: str) -> list[str]:
    """``bash -c CMD`` (``sh`` where there is no bash), started through the interpreter (see
    ``SHELL_SHIM``)."""
    shell = shutil.which("bash", path=SYSTEM_PATH) or "/bin/sh"
    return [interpreter, "-c", SHELL_SHIM, shell, cmd]


def search_command(
    interpreter: str, workspace: Path, pattern: str, path: str, limit: int
) -> list[str]:
    """The search program's command line; the pattern is compiled here first, so a bad one
    is reported plainly (compiling does not backtrack; matching, in the box, may)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise CommandError(f"The pattern is not a valid Python regular expression: {exc}.") from exc
    target = inside(workspace, path)
    if not target.exists():
        raise CommandError(f"{path} does not exist.")
    relative = target.relative_to(workspace.resolve()).as_posix() or "."
    return [interpreter, "-I", "-c", SEARCH_PROGRAM, pattern, relative, str(limit)]


def read_log(workspace: Path, relative: str) -> str:
    """A run's log file as text ("" when absent). The run could have replaced its log by a
    link to a file of the host while it ran; such a link is not followed."""
    if not relative:
        return ""
    try:
        path = inside(workspace, relative)
    except CommandError:
        return f"[{relative} was replaced by a link out of the workspace; not shown]"
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def log_tail(workspace: Path, stdout_path: str, stderr_path: str, lines: int = 40) -> str:
    """The last lines of a run's stderr, else of its stdout (read as :func:`read_log` does,
    never through the runner's own tail, which follows links)."""
    for relative in (stderr_path, stdout_path):
        text = read_log(workspace, relative).rstrip()
        if text:
            return "\n".join(text.splitlines()[-lines:])
    return ""


def logs_intact(workspace: Path, *relative: str) -> bool:
    """Whether each log still lies inside the workspace (no link out)."""
    try:
        for path in relative:
            if path:
                inside(workspace, path)
    except CommandError:
        return False
    return True


def safe_reason(workspace: Path, outcome: ProcessOutcome | RunOutcome) -> str | None:
    """The runner's reason, unless the run linked its logs out of the workspace: the runner
    quotes the last line of stderr, read through such a link."""
    if logs_intact(workspace, outcome.stdout_path, outcome.stderr_path):
        return outcome.reason
    return f"exit code {outcome.exit_code}; its logs were replaced by links out of the workspace"


def process_report(outcome: ProcessOutcome, workspace: Path) -> str:
    """Exit status, seconds, stdout and stderr of a finished command."""
    reason = safe_reason(workspace, outcome)
    status = "exit code 0" if outcome.status == "ok" else f"{outcome.status}: {reason}"
    parts = [f"[{status}; {outcome.seconds:.1f} s]"]
    stdout = read_log(workspace, outcome.stdout_path).rstrip()
    stderr = read_log(workspace, outcome.stderr_path).rstrip()
    if stdout:
        parts.append(f"--- stdout ---\n{stdout}")
    if stderr:
        parts.append(f"--- stderr ---\n{stderr}")
    if not stdout and not stderr:
        parts.append("(no output)")
    return "\n".join(parts)


def search_report(outcome: ProcessOutcome, workspace: Path, pattern: str, limit: int) -> str:
    """The search program's matches, with how many there were and how many are shown."""
    if outcome.status != "ok":
        tail = log_tail(workspace, outcome.stdout_path, outcome.stderr_path)
        return f"search failed ({outcome.status}: {safe_reason(workspace, outcome)})\n{tail}"
    lines = read_log(workspace, outcome.stdout_path).rstrip("\n").splitlines()
    found = re.fullmatch(r"#matches (\d+) files (\d+)", lines[-1]) if lines else None
    if found is None:
        return "search printed no summary:\n" + "\n".join(lines[-20:])
    matches, files = int(found[1]), int(found[2])
    shown = [line for line in lines[:-1] if line]
    if matches == 0:
        return f"No line matches {pattern!r}."
    more = f" (first {limit} shown; narrow the pattern or the path)" if matches > limit else ""
    return f"{matches} matches in {files} files{more}:\n" + "\n".join(shown)
