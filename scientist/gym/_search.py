"""Search the workspace with a Python regular expression; run inside the box.

Started as ``python -I -c <this file's text> PATTERN PATH LIMIT`` in the workspace, so an
agent's pattern (which may backtrack for ever) runs under the box's time and memory limits,
never in the host process. Standard library only. Prints ``path:line: text`` per match, then
``#matches N files M`` as its last line.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator

LINE_CHARS = 200
MAX_BYTES = 2_000_000
SKIP = {"__pycache__", ".mypy_cache", ".pytest_cache", "matplotlib", "logs"}  # logs: our own output


def files_under(path: str) -> Iterator[str]:
    if os.path.isfile(path):
        yield path
        return
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        for name in sorted(names):
            yield os.path.join(folder, name)


def text_lines(path: str) -> list[str]:
    if os.path.islink(path) or os.path.getsize(path) > MAX_BYTES:
        return []
    with open(path, "rb") as handle:
        data = handle.read()
    if b"\x00" in data[:8192]:
        return []
    return data.decode("utf-8", errors="replace").splitlines()


def main(pattern: str, path: str, limit: int) -> None:
    regex = re.compile(pattern)
    shown: list[str] = []
    matches = files = 0
    for name in files_under(path):
        hit = False
        for number, line in enumerate(text_lines(name), 1):
            if regex.search(line):
                matches, hit = matches + 1, True
                if len(shown) < limit:
                    shown.append(f"{os.path.normpath(name)}:{number}: {line[:LINE_CHARS]}")
        files += hit
    print("\n".join(shown))
    print(f"#matches {matches} files {files}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
