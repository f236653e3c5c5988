"""Child-process entry: llama_cpp.server, exiting on its own if its parent process dies.

``python -m gateway._serve --parent-pid PID <llama_cpp.server arguments>``
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


def main() -> None:
    """Start the parent watchdog, then hand the remaining arguments to llama_cpp.server."""
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--parent-pid":
        parent = int(args[1])
        args = args[2:]
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    sys.argv = ["llama_cpp.server", *args]
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
