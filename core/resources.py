"""Where the data that ships with autoscholar lies: in the installed wheel, or in a checkout.

A wheel carries the research templates and the samples as ``core/shipped/`` (setup.py copies
them there); a source checkout (an editable install, the tests) has them at its top level.
"""

from __future__ import annotations

from pathlib import Path

PACKAGED = Path(__file__).resolve().with_name("shipped")
CHECKOUT = Path(__file__).resolve().parents[1]


def shipped_path(*parts: str) -> Path:
    """``templates/...`` or ``samples/...``: the installed copy, else the checkout's."""
    packaged = PACKAGED.joinpath(*parts)
    return packaged if packaged.exists() else CHECKOUT.joinpath(*parts)


def in_checkout(*parts: str) -> Path | None:
    """A path at the top of the source checkout (``.venv-aider``, ``../shared``), if any.

    None in an installed wheel: its site-packages is no checkout.
    """
    if PACKAGED.exists():
        return None
    path = CHECKOUT.joinpath(*parts)
    return path if path.exists() else None
