"""The clock seam: code that measures or compares time takes a ``Clock`` (and, when it waits,
a ``Sleep``), so tests drive time with ``tests.clock.ManualClock`` instead of sleeping.

``time.monotonic`` for intervals, deadlines and rate limits; ``time.time`` where the value is
stored and read back by another process (job timestamps, cache ages, an idea's start time
kept in a checkpoint). The gateway, below this package, takes the same ``Callable[[], float]``.
"""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]
