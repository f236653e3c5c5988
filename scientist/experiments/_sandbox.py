"""Apply resource limits to this process, then ``exec`` the sandboxed command.

Run by ``runner.py`` as ``python -I -S _sandbox.py --memory-mb M --cpus 0,1 -- CMD...``.
Limits are set here rather than in a ``preexec_fn``: code between ``fork`` and ``exec`` in
a threaded parent (LangGraph, HTTP clients) can deadlock, and a separate interpreter
cannot. ``exec`` keeps the pid, so the runner's process group and timeout still apply.
Standard library only: it runs before, and instead of, anything else in the sandbox.
"""

from __future__ import annotations

import os
import resource
import sys


def _parse(argv: list[str]) -> tuple[int, set[int], list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: _sandbox.py --memory-mb M --cpus 0,1 -- COMMAND...")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    values = dict(zip(options[::2], options[1::2], strict=True))
    cpus = {int(c) for c in values.get("--cpus", "").split(",") if c}
    return int(values.get("--memory-mb", "0")), cpus, command


def main(argv: list[str]) -> None:
    """Limit address space and CPUs, forbid core dumps, then become ``command``."""
    memory_mb, cpus, command = _parse(argv)
    if memory_mb > 0:
        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cpus:
        os.sched_setaffinity(0, cpus)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
