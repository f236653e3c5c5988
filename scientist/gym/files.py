"""The file commands (open, edit, insert, create) and the path rule they share: a path is
relative, has no ``..``, and resolves (symlinks followed) inside the workspace.

These run in the host process on text only; nothing here executes the agent's code.
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

from scientist.gym.errors import CommandError

MAX_FILE_BYTES = 2_000_000
CONTEXT_LINES = 3
# What the file list leaves out: caches, and the box's own scratch folders.
HIDDEN_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", "matplotlib"})


def inside(workspace: Path, relative: str) -> Path:
    """``workspace / relative``, refused unless it stays inside ``workspace``."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("~"):
        raise CommandError(f"{relative!r} is absolute; give a path relative to the workspace.")
    if ".." in pure.parts:
        raise CommandError(f"{relative!r} leaves the workspace ('..' is not allowed).")
    if "\x00" in relative:
        raise CommandError("Paths cannot contain NUL characters.")
    root = workspace.resolve()
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise CommandError(f"{relative!r} points outside the workspace (through a symlink).")
    return target


def _shown(workspace: Path, path: Path) -> str:
    return path.relative_to(workspace.resolve()).as_posix() or "."


def read_text(workspace: Path, relative: str) -> tuple[Path, list[str]]:
    """An existing text file's path and its lines (without line ends)."""
    path = inside(workspace, relative)
    if not path.exists():
        raise CommandError(f"{relative} does not exist; list the files with bash `ls`.")
    if not path.is_file():
        raise CommandError(f"{relative} is not a file.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CommandError(f"{relative} is {size} bytes; only files up to {MAX_FILE_BYTES} open.")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise CommandError(f"{relative} is a binary file ({size} bytes).")
    return path, data.decode("utf-8", errors="replace").splitlines()


def numbered(lines: list[str], first: int) -> str:
    """``lines`` with their 1-based numbers, ``first`` being the number of ``lines[0]``."""
    width = len(str(first + len(lines)))
    return "\n".join(f"{first + i:>{width}}| {line}" for i, line in enumerate(lines))


def view(workspace: Path, relative: str, start: int, end: int | None, window: int) -> str:
    """Lines ``start``..``end`` of a file, numbered, under a header saying which and of how
    many."""
    path, lines = read_text(workspace, relative)
    total = len(lines)
    if total == 0:
        return f"[{_shown(workspace, path)}: empty file]"
    if start > total:
        raise CommandError(f"{relative} has {total} lines; start {start} is past its end.")
    last = min(total, end if end is not None else start + window - 1)
    if last < start:
        raise CommandError(f"end ({end}) is before start ({start}).")
    header = f"[{_shown(workspace, path)}: lines {start}-{last} of {total}]"
    return f"{header}\n{numbered(lines[start - 1 : last], start)}"


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


def _new_lines(text: str) -> list[str]:
    return text.splitlines()


def _after_edit(workspace: Path, path: Path, lines: list[str], first: int, count: int) -> str:
    """The changed lines with a little context, and a warning if Python no longer parses."""
    low = max(1, first - CONTEXT_LINES)
    high = min(len(lines), first + count - 1 + CONTEXT_LINES)
    shown = numbered(lines[low - 1 : high], low) if lines else "(the file is now empty)"
    note = _syntax_warning(path, lines)
    name = _shown(workspace, path)
    return f"[{name}: lines {low}-{high} of {len(lines)} after the edit]\n{shown}{note}"


def _syntax_warning(path: Path, lines: list[str]) -> str:
    if path.suffix != ".py":
        return ""
    try:
        ast.parse("\n".join(lines))  # parses only: nothing of the agent's code runs here
    except SyntaxError as exc:
        return f"\nWarning: {path.name} no longer parses: line {exc.lineno}: {exc.msg}."
    return ""


def edit(workspace: Path, relative: str, start: int, end: int, text: str) -> str:
    """Replace lines ``start``..``end`` (1-based, inclusive) with ``text``."""
    path, lines = read_text(workspace, relative)
    if end < start:
        raise CommandError(f"end ({end}) is before start ({start}); use insert to add lines.")
    if end > len(lines):
        raise CommandError(f"{relative} has {len(lines)} lines; end {end} is past its end.")
    new = _new_lines(text)
    lines[start - 1 : end] = new
    _write(path, lines)
    summary = f"Replaced lines {start}-{end} of {relative} with {len(new)} lines."
    return f"{summary}\n{_after_edit(workspace, path, lines, start, max(1, len(new)))}"


def insert(workspace: Path, relative: str, line: int, text: str) -> str:
    """Insert ``text`` after line ``line`` (0: before the first line)."""
    path, lines = read_text(workspace, relative)
    if line > len(lines):
        raise CommandError(f"{relative} has {len(lines)} lines; cannot insert after {line}.")
    new = _new_lines(text)
    if not new:
        raise CommandError("text is empty: nothing to insert.")
    lines[line:line] = new
    _write(path, lines)
    summary = f"Inserted {len(new)} lines after line {line} of {relative}."
    return f"{summary}\n{_after_edit(workspace, path, lines, line + 1, len(new))}"


def create(workspace: Path, relative: str, text: str) -> str:
    """Write ``text`` as the whole file (made if absent, replaced if present)."""
    path = inside(workspace, relative)
    if path == workspace.resolve() or path.is_dir():
        raise CommandError(f"{relative} is a folder; give a file path.")
    existed = path.exists()
    if existed and not path.is_file():
        raise CommandError(f"{relative} is not a regular file.")
    lines = _new_lines(text)
    _write(path, lines)
    verb = "Replaced" if existed else "Created"
    return f"{verb} {relative} ({len(lines)} lines).{_syntax_warning(path, lines)}"


def file_list(workspace: Path) -> list[str]:
    """Every file of the workspace as ``path (N bytes)``, sorted, caches left out."""
    root = workspace.resolve()
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if HIDDEN_PARTS & set(relative.parts) or path.is_symlink() or not path.is_file():
            continue
        found.append(f"{relative.as_posix()} ({path.stat().st_size} bytes)")
    return found
