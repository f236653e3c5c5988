"""Child-process entry: llama_cpp.server, exiting on its own if its parent process dies.

``python -m gateway._serve --parent-pid PID [--grammar-last] <llama_cpp.server arguments>``
"""

from __future__ import annotations

import os
import sys
import threading
import time


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def _own_options(args: list[str]) -> tuple[int | None, bool, list[str]]:
    """(parent pid, grammar-last, the rest for llama_cpp.server) from the leading options."""
    parent, grammar_last = None, False
    while args and args[0] in ("--parent-pid", "--grammar-last"):
        if args[0] == "--grammar-last":
            grammar_last, args = True, args[1:]
        else:
            parent, args = int(args[1]), args[2:]
    return parent, grammar_last, args


def main() -> None:
    """Start the parent watchdog, then hand the remaining arguments to llama_cpp.server."""
    parent, grammar_last, args = _own_options(sys.argv[1:])
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if grammar_last:
        # Lazy: _sampling loads llama_cpp, the optional embedded-model dependency.
        from gateway._sampling import install

        install()
    sys.argv = ["llama_cpp.server", *args]
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
