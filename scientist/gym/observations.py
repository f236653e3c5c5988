"""What the agent reads: text in the spaces' character set, cut to size with a note."""

from __future__ import annotations

from typing import Literal

from gymnasium import spaces

OBSERVATION_MAX_CHARS = 100_000
ACTION_MAX_CHARS = 200_000
REPLACEMENT = "\ufffd"
# Tab, newline, printable ASCII and the rest of Unicode's basic plane (no control characters,
# no surrogates); whatever else a command prints is shown as U+FFFD.
CHARSET = frozenset(
    "\t\n"
    + "".join(map(chr, range(0x20, 0x7F)))
    + "".join(map(chr, range(0xA0, 0xD800)))
    + "".join(map(chr, range(0xE000, 0xFFFE)))
)


def text_space(max_length: int) -> spaces.Text:
    """A Text space of up to ``max_length`` characters from :data:`CHARSET`."""
    return spaces.Text(max_length=max_length, min_length=1, charset=CHARSET)


def clean(text: str) -> str:
    """``text`` with Windows line ends made plain and characters outside the set replaced."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if all(c in CHARSET for c in text):
        return text
    return "".join(c if c in CHARSET else REPLACEMENT for c in text)


def truncate(text: str, limit: int, keep: Literal["head", "ends"] = "head") -> str:
    """``text`` cut to about ``limit`` characters with a note saying how many were cut:
    its head (a file, matches), or its head and tail (a program's output, whose errors come
    last)."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    if keep == "head":
        note = f"[... {cut} more characters cut; ask for less: a line range, a narrower pattern.]"
        return f"{text[:limit]}\n{note}"
    head, tail = text[: limit // 2], text[len(text) - (limit - limit // 2) :]
    return f"{head}\n[... {cut} characters cut from the middle of the output ...]\n{tail}"


def finish(text: str, limit: int = OBSERVATION_MAX_CHARS) -> str:
    """An observation the observation space contains: clean, non-empty, at most ``limit``."""
    text = clean(text) or "(no output)"
    if len(text) > limit:
        note = f"\n[... observation cut at {limit} characters]"
        text = text[: limit - len(note)] + note
    return text
