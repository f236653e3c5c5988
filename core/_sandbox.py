"""Apply resource limits to this process, then ``exec`` the sandboxed command.

Run by ``runner.py`` as ``python -I -S _sandbox.py --memory-mb M --cpus 0,1 --nproc N
--fsize-mb F --nofile K --cpu-s S [--nproc-uid U] -- CMD...`` (CMD is ``bwrap ...`` when the
run is isolated). Limits are set here rather than in a ``preexec_fn``: code between
``fork`` and ``exec`` in a threaded parent (LangGraph, HTTP clients) can deadlock, and a
separate interpreter cannot. ``exec`` keeps the pid, so the runner's process group and
timeout still apply. Standard library only: it runs before, and instead of, anything else
in the sandbox.

``RLIMIT_NPROC`` counts every process of a uid, so the limit given is added to what that
uid (``--nproc-uid``, else this process's own) already runs; the kernel never applies it to
root, which is why an isolated run drops to ``nobody``.
"""

from __future__ import annotations

import os
import resource
import sys

OPTIONS = ("--memory-mb", "--cpus", "--nproc", "--fsize-mb", "--nofile", "--cpu-s", "--nproc-uid")


def _parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: _sandbox.py --memory-mb M --cpus 0,1 -- COMMAND...")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    values = dict(zip(options[::2], options[1::2], strict=True))
    unknown = set(values) - set(OPTIONS)
    if unknown:
        raise SystemExit(f"_sandbox.py: unknown options {sorted(unknown)}")
    return values, command


def processes_of(uid: int) -> int:
    """How many processes ``uid`` runs now (``/proc``)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                continue
    return count


def _limit(kind: int, value: int) -> None:
    resource.setrlimit(kind, (value, value))


def main(argv: list[str]) -> None:
    """Limit memory, processes, file size, open files, CPU time and CPUs; no core dumps;
    then become ``command``."""
    values, command = _parse(argv)
    memory_mb = int(values.get("--memory-mb", "0"))
    if memory_mb > 0:
        _limit(resource.RLIMIT_AS, memory_mb * 2**20)
    if "--nproc" in values:
        uid = int(values.get("--nproc-uid", str(os.getuid())))
        _limit(resource.RLIMIT_NPROC, processes_of(uid) + int(values["--nproc"]))
    if "--fsize-mb" in values:
        _limit(resource.RLIMIT_FSIZE, int(values["--fsize-mb"]) * 2**20)
    if "--nofile" in values:
        _limit(resource.RLIMIT_NOFILE, int(values["--nofile"]))
    if "--cpu-s" in values:
        _limit(resource.RLIMIT_CPU, int(values["--cpu-s"]))
    _limit(resource.RLIMIT_CORE, 0)
    cpus = {int(c) for c in values.get("--cpus", "").split(",") if c}
    if cpus:
        os.sched_setaffinity(0, cpus)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
