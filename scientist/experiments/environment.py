"""A template's own virtualenv: made once from its ``requirements.txt``, cached, reused.

A template folder may hold ``requirements.txt`` (pip's format) and ``.python-version``
("3.11" or "3.11.7", the file pyenv and uv read). Such a template's baseline, experiment
rounds and plot.py run on a virtualenv of their own instead of autoscholar's interpreter,
so a template that needs torch does not need it in autoscholar's environment. A template
without ``requirements.txt`` runs on autoscholar's interpreter, as before.

The virtualenvs live under ``experiments.env_dir`` (default ``<data_dir>/envs``), one
folder per key: a hash of the Python version and the requirements text, so templates that
ask for the same thing share one. Making one is ``python -m venv`` then ``pip install -r
requirements.txt`` in a temporary folder beside it, renamed into place when complete: a
folder under its key is always whole. A lock file per key makes a second process wait for
the first instead of building the same virtualenv twice.

pip runs outside the box (it must reach the package index) with a scrubbed environment:
pip's own settings, proxies and certificates pass, API keys do not. Include lines (``-r``,
``-c``) are refused, since the key would not cover the files they name.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.metadata
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from core.settings import Settings
from scientist.experiments.errors import TemplateEnvError
from scientist.experiments.models import EnvironmentRecord
from scientist.experiments.requirements import (
    PYTHON_VERSION,
    REQUIREMENTS,
    check_requirements,
    declared_version,
    failing_requirement,
    normalize,
    requirement_lines,
    requirement_name,
    version_matches,
)

log = logging.getLogger(__name__)
MARKER = "autoscholar-env.json"
KEY_CHARS = 16
PIP_TAIL_LINES = 30
# What pip sees of our environment: its own settings, proxies and certificates; no keys.
PIP_ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TMPDIR",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        *(f"{name}_proxy" for name in ("http", "https", "no", "all")),
        *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "NO", "ALL")),
    }
)


@dataclass(frozen=True)
class CommandResult:
    """A finished command: its exit code (None: killed at the time limit) and its output."""

    returncode: int | None
    output: str
    seconds: float


CommandRun = Callable[[list[str], Path, float], CommandResult]


def run_command(argv: list[str], cwd: Path, timeout_s: float) -> CommandResult:
    """``argv`` in ``cwd`` with pip's part of our environment, stdout and stderr together;
    at ``timeout_s`` its whole process group is killed."""
    env = {k: v for k, v in os.environ.items() if k in PIP_ENV_NAMES or k.startswith("PIP_")}
    env["PYTHONNOUSERSITE"] = "1"
    start = time.monotonic()
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        code = None
    return CommandResult(code, output or "", time.monotonic() - start)


@functools.cache
def python_version(python: str) -> str:
    """``python``'s version, "3.11.7"."""
    probe = "import sys; print('.'.join(map(str, sys.version_info[:3])))"
    done = subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise TemplateEnvError(
            f"{python} does not run ({done.stderr.strip()[-300:]}); set experiments.env_python "
            "to a working Python interpreter."
        )
    return done.stdout.strip()


def env_python(record: EnvironmentRecord) -> str:
    """The interpreter inside a made environment."""
    return str(Path(record.path) / "bin" / "python")


def installed(env_root: Path) -> dict[str, str]:
    """Every distribution installed in the virtualenv at ``env_root`` → its version."""
    sites = [str(p) for p in sorted(env_root.glob("lib/python*/site-packages"))]
    found = {d.name: d.version for d in importlib.metadata.distributions(path=sites) if d.name}
    return dict(sorted(found.items(), key=lambda item: normalize(item[0])))


class EnvRequest(BaseModel):
    """What one template asks for: its requirements and the Python that makes its venv."""

    model_config = ConfigDict(frozen=True)

    template_dir: Path
    requirements: str
    python: str
    python_version: str

    @property
    def key(self) -> str:
        """Hash of the Python version and the requirements text: the venv's folder name."""
        text = f"python {self.python_version}\n{self.requirements}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_CHARS]

    @property
    def lines(self) -> list[str]:
        """The requirement lines."""
        return requirement_lines(self.requirements)

    @property
    def names(self) -> list[str]:
        """The project names the requirements list."""
        return [name for line in self.lines if (name := requirement_name(line))]


class EnvStore:
    """The template virtualenvs under one folder: find one, make one (once), say what is
    missing. ``run`` executes venv and pip (a seam for tests)."""

    def __init__(
        self,
        root: Path,
        python: str = sys.executable,
        *,
        install_timeout_s: float = 1800.0,
        run: CommandRun = run_command,
    ) -> None:
        self.root = root
        self.python = python
        self.install_timeout_s = install_timeout_s
        self.run = run

    @classmethod
    def from_settings(cls, settings: Settings) -> EnvStore | None:
        """The store ``settings.experiments`` configures; None when template_envs is off."""
        section = settings.experiments
        if not section.template_envs:
            return None
        root = Path(section.env_dir or settings.data_dir / "envs").expanduser().absolute()
        return cls(
            root,
            section.env_python or sys.executable,
            install_timeout_s=section.env_install_timeout_s,
        )

    def request_for(self, template_dir: Path) -> EnvRequest | None:
        """The template's request, or None when it has no ``requirements.txt``."""
        path = template_dir / REQUIREMENTS
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8")
        check_requirements(text, path)
        python, version = self._python_for(template_dir)
        return EnvRequest(
            template_dir=template_dir, requirements=text, python=python, python_version=version
        )

    def _python_for(self, template_dir: Path) -> tuple[str, str]:
        """The configured interpreter, or ``pythonX.Y`` from PATH when ``.python-version``
        asks for another version."""
        wanted = declared_version(template_dir)
        candidates = [self.python]
        if wanted is not None:
            candidates.append("python" + ".".join(wanted.split(".")[:2]))
        for candidate in candidates:
            found = shutil.which(candidate)
            if found is None:
                continue
            version = python_version(str(Path(found).absolute()))
            if wanted is None or version_matches(version, wanted):
                return str(Path(found).absolute()), version
        raise TemplateEnvError(
            f"{template_dir / PYTHON_VERSION} asks for Python {wanted}, but neither "
            f"{' nor '.join(candidates)} is that version: install Python {wanted}, set "
            "experiments.env_python to one, or remove .python-version."
        )

    def path_of(self, request: EnvRequest) -> Path:
        """Where the request's virtualenv lives (made or not)."""
        return self.root / request.key

    def find(self, request: EnvRequest) -> EnvironmentRecord | None:
        """The made virtualenv for ``request``, or None if there is none (or it is broken)."""
        path = self.path_of(request)
        try:
            made = EnvironmentRecord.model_validate_json((path / MARKER).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if made.key != request.key or not (path / "bin" / "python").exists():
            return None
        return made

    def missing(self, request: EnvRequest) -> list[str]:
        """Requested projects not installed in the virtualenv (all of them before it exists)."""
        made = self.find(request)
        have = {normalize(name) for name in (made.packages if made else {})}
        return [name for name in request.names if normalize(name) not in have]

    def commands(self, request: EnvRequest) -> list[list[str]]:
        """The commands that make the virtualenv (run in a temporary folder, then renamed)."""
        target = self.path_of(request)
        return [
            [request.python, "-m", "venv", str(target)],
            [str(target / "bin" / "python"), "-m", "pip", "install", "-r", REQUIREMENTS],
        ]

    def ensure(self, request: EnvRequest) -> EnvironmentRecord:
        """The request's virtualenv, made now unless it exists; one process makes it while
        others wait on its lock."""
        found = self.find(request)
        if found is not None:
            return found
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked(request):
            found = self.find(request)
            if found is not None:
                return found
            self._clear_leftovers(request)
            return self._make(request)

    @contextmanager
    def _locked(self, request: EnvRequest) -> Iterator[None]:
        lock = self.root / f".{request.key}.lock"
        deadline = time.monotonic() + self.install_timeout_s + 300
        with lock.open("a") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TemplateEnvError(
                            f"Another process has held {lock} for too long while making "
                            f"{self.path_of(request)}; stop it, or remove the lock file if "
                            "no process is making it, and run again."
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _clear_leftovers(self, request: EnvRequest) -> None:
        """Half-made folders of this key (a killed build) and a broken made one; the caller
        holds the key's lock, so no one else is building them."""
        target = self.path_of(request)
        if target.exists():
            target.rename(self.root / f".tmp-{request.key}-broken-{os.getpid()}")
        for leftover in self.root.glob(f".tmp-{request.key}-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _make(self, request: EnvRequest) -> EnvironmentRecord:
        start = time.monotonic()
        target = self.path_of(request)
        log.info("making %s's environment in %s", request.template_dir.name, target)
        work = Path(tempfile.mkdtemp(dir=self.root, prefix=f".tmp-{request.key}-"))
        try:
            self._venv(request, work)
            (work / REQUIREMENTS).write_text(request.requirements, encoding="utf-8")
            self._pip_install(request, work)
            relocate(work, target)
            made = EnvironmentRecord(
                key=request.key,
                path=str(target),
                python_version=request.python_version,
                requirements=request.lines,
                packages=installed(work),
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                build_seconds=round(time.monotonic() - start, 2),
            )
            (work / MARKER).write_text(made.model_dump_json(indent=1), encoding="utf-8")
            open_to_all(work)
            work.rename(target)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        log.info("made %s in %.1f s", target, made.build_seconds)
        return made

    def _venv(self, request: EnvRequest, work: Path) -> None:
        done = self.run([request.python, "-m", "venv", str(work)], self.root, 300.0)
        if done.returncode != 0:
            raise TemplateEnvError(
                f"`{request.python} -m venv` failed:\n{_tail(done.output)}\nInstall the venv "
                "module for that Python (Debian: apt-get install python3-venv) or set "
                "experiments.env_python to a Python that has it."
            )

    def _pip_install(self, request: EnvRequest, work: Path) -> None:
        pip = [str(work / "bin" / "python"), "-m", "pip", "install", "--no-input"]
        pip += ["--disable-pip-version-check", "--progress-bar", "off"]
        pip += ["-r", str(work / REQUIREMENTS)]
        done = self.run(pip, request.template_dir, self.install_timeout_s)
        if done.returncode == 0:
            return
        tail = _tail(done.output)
        failing = failing_requirement(done.output, request.lines)
        raise TemplateEnvError(
            _pip_message(request, failing, done, tail, self.install_timeout_s),
            requirement=failing,
            pip_tail=tail,
        )


def _pip_message(
    request: EnvRequest, failing: str | None, done: CommandResult, tail: str, timeout_s: float
) -> str:
    source = request.template_dir / REQUIREMENTS
    if done.returncode is None:
        what = f"did not finish within {timeout_s:g} s (experiments.env_install_timeout_s)"
    elif failing is None:
        what = f"failed (exit code {done.returncode}) without naming a requirement"
    elif failing in request.lines:
        number = request.lines.index(failing) + 1
        what = f"failed on requirement `{failing}` (requirement {number} of {source})"
    else:
        what = f"failed on `{failing}`, a dependency of the requirements in {source}"
    return (
        f"pip install for template {request.template_dir.name} {what}. pip's last lines:\n"
        f"{tail}\nFix {source} (each name and version must exist on the package index this "
        f"machine reaches), then run `scientist template check {request.template_dir}`."
    )


def _tail(output: str) -> str:
    return "\n".join(output.rstrip().splitlines()[-PIP_TAIL_LINES:])


def relocate(work: Path, target: Path) -> None:
    """Point the scripts of a virtualenv made in ``work`` at ``target``, where it will live:
    the interpreter finds its prefix by itself, but pip wrote ``work`` into every script's
    ``#!`` line and ``pyvenv.cfg``."""
    old, new = str(work).encode(), str(target).encode()
    for path in [*(work / "bin").iterdir(), work / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old in data:
            path.write_bytes(data.replace(old, new))


def open_to_all(root: Path) -> None:
    """Everyone may read the virtualenv (a boxed run drops to ``nobody``); ``mkdtemp`` made
    its top folder private."""
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, os.stat(folder).st_mode | 0o555)
        for name in files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                extra = 0o555 if mode & stat.S_IXUSR else 0o444
                os.chmod(path, mode | extra)


class TemplateEnv:
    """One template's environment for a runner: made on first use and remembered, a failure
    too (parallel ideas do not run pip again for a broken requirements.txt)."""

    def __init__(self, store: EnvStore, template_dir: Path) -> None:
        self.store = store
        self.template_dir = template_dir
        self._lock = threading.Lock()
        self._done = False
        self._made: EnvironmentRecord | None = None
        self._error: TemplateEnvError | None = None

    def ensure(self) -> EnvironmentRecord | None:
        """The made virtualenv; None when the template has no ``requirements.txt``."""
        with self._lock:
            if self._error is not None:
                raise self._error
            if not self._done:
                try:
                    request = self.store.request_for(self.template_dir)
                    self._made = None if request is None else self.store.ensure(request)
                except TemplateEnvError as exc:
                    self._error = exc
                    raise
                self._done = True
            return self._made

    @property
    def made(self) -> EnvironmentRecord | None:
        """The virtualenv, if it has been made (or found) already."""
        return self._made

    def key(self) -> str | None:
        """The virtualenv's key (see :attr:`EnvRequest.key`), without making it; None when
        the template has no ``requirements.txt``."""
        if self._made is not None:
            return self._made.key
        request = self.store.request_for(self.template_dir)
        return None if request is None else request.key
