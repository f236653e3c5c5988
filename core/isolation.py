"""Bubblewrap around code an LLM wrote: what the box lets in, as one ``bwrap`` command line.

Inside the box a run sees a read-only system (``/usr``, ``/etc``), the interpreter it was
started with (its virtualenv and base install, read-only), a private ``/tmp``, its own
``/proc`` and ``/dev``, and one writable folder: the idea folder it runs in. It has no
network (a new, empty network namespace: not even the host's loopback), its own pid, IPC
and UTS namespaces, a new session, and it dies with the process that started it
(``--die-with-parent``); when its first process exits, the pid namespace takes every
other process with it, ``setsid`` or not.

Run as root, the box drops to ``nobody`` (uid 65534) before the run's own code starts, so
the process limit (``RLIMIT_NPROC``) applies: the kernel never counts root's processes.
The writable folder is lent to that uid for the run and given back afterwards. Run as any
other user, the box uses a user namespace and the user's own uid.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gateway.errors import EXIT_CONFIG, AutoscholarError

Isolation = Literal["bwrap", "none"]
NOBODY = 65534
SYSTEM_READ_ONLY = (Path("/usr"), Path("/etc"))
MERGED_DIRS = (Path("/bin"), Path("/sbin"), Path("/lib"), Path("/lib64"), Path("/lib32"))
INSIDE_TMP = Path("/tmp")
# The rlimit launcher every bounded child starts through (standard library only).
LAUNCHER = Path(__file__).with_name("_sandbox.py")
# The whole environment of a parser child: no key, no setting of ours.
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}


class IsolationUnavailableError(AutoscholarError):
    """bubblewrap is missing or cannot make namespaces on this machine."""

    exit_code = EXIT_CONFIG


class BoxSpec(BaseModel):
    """One box: the folder it may write, what it may read, and who it runs as."""

    model_config = ConfigDict(frozen=True)

    workdir: Path
    read_only: tuple[Path, ...] = ()
    drop_to_uid: int | None = None
    network: bool = False  # Aider must reach its model; experiments and TeX must not


def interpreter_paths(python: str) -> list[Path]:
    """What ``python`` needs to start: its virtualenv and its base install (read-only)."""
    program = Path(shutil.which(python) or python)
    found = [program.parent.parent, program.resolve().parent.parent]
    config = program.parent.parent / "pyvenv.cfg"
    if config.is_file():
        for line in config.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                found.append(Path(value.strip()).parent)
    if program.parent.parent == Path(sys.prefix):
        found.append(Path(sys.base_prefix))
    return _outermost(p for p in found if p.exists() and p != Path("/"))


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without duplicates and without any path inside another one."""
    unique = sorted({p.absolute() for p in paths}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return kept


def _system_mounts() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_READ_ONLY:
        args += ["--ro-bind", str(path), str(path)]
    for path in MERGED_DIRS:
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _parents(path: Path, made: set[Path]) -> list[str]:
    """``--dir`` for each missing ancestor, world-traversable (bwrap's own are 0700)."""
    args: list[str] = []
    for parent in reversed(path.parents):
        if parent in (Path("/"), INSIDE_TMP) or parent in made or parent in SYSTEM_READ_ONLY:
            continue
        made.add(parent)
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


def bwrap_command(spec: BoxSpec, command: list[str], bwrap: str = "bwrap") -> list[str]:
    """The ``bwrap`` command line that runs ``command`` inside ``spec``'s box."""
    args = [bwrap, "--die-with-parent", "--new-session"]
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-uts"]
    args += [] if spec.network else ["--unshare-net"]
    args += ["--unshare-cgroup-try"]
    if spec.drop_to_uid is None:
        args.append("--unshare-user")
    args += _system_mounts()
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", str(INSIDE_TMP)]
    made: set[Path] = set()
    for path in spec.read_only:
        args += [*_parents(path, made), "--ro-bind", str(path), str(path)]
    workdir = spec.workdir.absolute()
    args += [*_parents(workdir, made), "--bind", str(workdir), str(workdir)]
    args += ["--chdir", str(workdir)]
    if spec.drop_to_uid is not None:
        uid = str(spec.drop_to_uid)
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
        args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    else:
        args.append("--")
    return [*args, *command]


def box_for(
    workdir: Path, extra_read_only: Iterable[Path], python: str, *, network: bool = False
) -> BoxSpec:
    """The box of one run in ``workdir``; run as root, it drops to ``nobody``."""
    read_only = _outermost([*interpreter_paths(python), *extra_read_only])
    read_only = [p for p in read_only if workdir.absolute() not in [p, *p.parents]]
    uid = NOBODY if os.geteuid() == 0 else None
    return BoxSpec(workdir=workdir, read_only=tuple(read_only), drop_to_uid=uid, network=network)


@contextmanager
def lent_to(box: BoxSpec) -> Iterator[None]:
    """For the run, the writable folder belongs to the box's uid; afterwards everything in
    it (what the run wrote too) goes back to the folder's owner."""
    if box.drop_to_uid is None:
        yield
        return
    owner = box.workdir.stat()
    give_to(box.workdir, box.drop_to_uid, box.drop_to_uid)
    try:
        yield
    finally:
        give_to(box.workdir, owner.st_uid, owner.st_gid)


def give_to(folder: Path, uid: int, gid: int) -> None:
    """Make ``folder`` and everything in it belong to ``uid``:``gid``."""
    for root, dirs, files in os.walk(folder):
        os.chown(root, uid, gid)
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


@functools.cache
def check_bwrap() -> str:
    """The path of a working ``bwrap``; a clear error when it is missing or cannot run."""
    found = shutil.which("bwrap")
    advice = (
        "Install bubblewrap (`make setup` does: apt-get install bubblewrap), or set "
        "experiments.isolation=none to run LLM-written code with rlimits only (not "
        "recommended: it can then read and write whatever this user can)."
    )
    if found is None:
        raise IsolationUnavailableError(f"bubblewrap (bwrap) is not installed. {advice}")
    probe = bwrap_command(BoxSpec(workdir=Path(tempfile.gettempdir())), ["true"], found)
    done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise IsolationUnavailableError(
            f"bubblewrap cannot make its namespaces here ({done.stderr.strip()[:300]}). {advice}"
        )
    return found


def launcher_command(
    inner: list[str], limits: Mapping[str, object], python: str = sys.executable
) -> list[str]:
    """``inner`` started through the rlimit launcher: ``{"memory-mb": 512, "cpu-s": 20}``
    becomes ``--memory-mb 512 --cpu-s 20`` (see ``_sandbox.py`` for the names)."""
    flags = [part for name, value in limits.items() for part in (f"--{name}", str(value))]
    return [python, "-I", "-S", str(LAUNCHER), *flags, "--", *inner]


# A parser child that reaches its address-space bound exits at once with this code, without
# formatting a traceback under the same bound. (Measured here on Python 3.11 and 3.13: about one
# time in three glibc's malloc does not fail at the bound but keeps retrying mmap, and the child
# crawls on until its CPU-time bound or the parent's timeout stops it. Either way the parent
# refuses the PDF as too costly.)
OUT_OF_MEMORY_EXIT = 86


def exit_out_of_memory() -> None:
    """End a parser child that ran out of memory, with no traceback and no cleanup."""
    os._exit(OUT_OF_MEMORY_EXIT)


def parser_limits(memory_mb: int, cpu_s: int) -> dict[str, object]:
    """The limits of a PDF-parser child: memory and CPU as given, few files, no file output."""
    return {"memory-mb": memory_mb, "cpu-s": cpu_s, "nofile": 64, "fsize-mb": 1}
