"""The cheap check of an uploaded PDF, with the reviewer's own errors and messages, never in
the API's own process.

An upload is accepted after the cheap checks: its signature, that it opens (decrypted with
the empty password if need be) and its page count within ``review.max_pages``. Text
extraction (0.7 s for an 11-page paper) is left to the job, which records any failure (a
scan without a text layer, say) on the job.

The check runs in a warm child (``python -m service.pdfcheck``, started through the rlimit
launcher with an address-space bound), one JSON line per request and per answer, so each
upload pays a few milliseconds, not an interpreter start. ``CheckerPool`` keeps
``service.pdf_check_workers`` of them. A child that passes ``service.pdf_check_timeout_s``
or dies (its memory bound) is killed and replaced, and the upload is refused as too costly
to parse: a PDF built to exhaust its parser costs the API nothing. A child exits when the
API closes its pipe, and is replaced after ``MAX_USES`` checks.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.isolation import CHILD_ENV, exit_out_of_memory, launcher_command, parser_limits
from reviewer.review.errors import (
    NotAPdfError,
    PdfTooCostlyError,
    ReviewInputError,
    TooManyPagesError,
    input_error_named,
)
from reviewer.review.pdf_text import SIGNATURE_WINDOW, open_pdf, page_count

MAX_USES = 200
# CPU seconds over a child's whole life: a child left behind by a dead API ends by itself.
CHILD_CPU_S = 600


def check_upload(path: Path, *, max_pages: int) -> None:
    """Raise the reviewer's ReviewInputError for a file it would refuse: no PDF signature,
    does not open, encrypted, or more than ``max_pages`` pages."""
    with path.open("rb") as handle:
        if b"%PDF-" not in handle.read(SIGNATURE_WINDOW):
            raise NotAPdfError(path)
    pages = page_count(open_pdf(path), path)
    if pages > max_pages:
        raise TooManyPagesError(path, f"{pages} pages, the limit is {max_pages}")


@dataclass
class _Child:
    """One warm checker process and how many checks it has answered."""

    process: subprocess.Popen[bytes]
    uses: int = 0
    pending: bytes = b""

    def ask(self, request: dict[str, object], timeout_s: float) -> dict[str, object]:
        """Send one request line; the answer line, or TimeoutError / EOFError."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout_s
        fd = self.process.stdout.fileno()
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no answer within {timeout_s:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError(f"the checker stopped (exit {self.process.poll()})")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        self.uses += 1
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise EOFError("the checker answered something other than a JSON object")
        return answer

    def kill(self) -> None:
        """Stop the child now and reap it."""
        self.process.kill()
        self.process.wait()


@dataclass
class CheckerPool:
    """Warm, bounded checker children shared by the API's request threads."""

    size: int
    memory_mb: int
    timeout_s: float
    _idle: queue.Queue[_Child | None] = field(default_factory=queue.Queue, repr=False)
    _all: list[_Child] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for _ in range(self.size):
            self._idle.put(None)  # started on first use: an idle API starts no process

    def check(self, path: Path, *, max_pages: int) -> None:
        """``check_upload`` in a child; the same errors, plus PdfTooCostlyError when the
        child passes the time bound or dies."""
        child = self._idle.get() or self._spawn()
        request = {"path": str(path.resolve()), "max_pages": max_pages}
        try:
            answer = child.ask(request, self.timeout_s)
        except (TimeoutError, EOFError, OSError, ValueError) as exc:
            self._retire(child)
            self._idle.put(None)
            raise PdfTooCostlyError(path, str(exc)) from exc
        if child.uses >= MAX_USES:
            self._retire(child)
            self._idle.put(None)
        else:
            self._idle.put(child)
        error = answer.get("error")
        if error is not None:
            raise input_error_named(str(error))(path, str(answer.get("detail", "")))

    def close(self) -> None:
        """Stop every child (the API is shutting down)."""
        with self._lock:
            children, self._all = self._all, []
        for child in children:
            child.kill()

    def _spawn(self) -> _Child:
        child = [sys.executable, "-m", "service.pdfcheck"]
        process = subprocess.Popen(
            launcher_command(child, parser_limits(self.memory_mb, CHILD_CPU_S)),
            cwd="/",
            env=CHILD_ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        spawned = _Child(process)
        with self._lock:
            self._all.append(spawned)
        return spawned

    def _retire(self, child: _Child) -> None:
        child.kill()
        with self._lock:
            if child in self._all:
                self._all.remove(child)


def serve() -> None:
    """The child: one request per stdin line, one JSON answer per stdout line, until EOF."""
    for raw in sys.stdin.buffer:
        request = json.loads(raw)
        path = Path(str(request["path"]))
        try:
            check_upload(path, max_pages=int(request["max_pages"]))
            answer: dict[str, object] = {"ok": True}
        except ReviewInputError as exc:
            answer = {"error": type(exc).__name__, "detail": exc.detail}
        except OSError as exc:
            answer = {"error": "PaperNotFoundError", "detail": str(exc)}
        except MemoryError:
            exit_out_of_memory()
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
