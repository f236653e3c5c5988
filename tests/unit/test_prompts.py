"""Every prompt template renders with exactly its variables (StrictUndefined)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import UndefinedError

from gateway.prompts import GATEWAY_PROMPTS, render, template_variables

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "scientist", "reviewer", "service")
ALL_TEMPLATES = sorted(p for package in PACKAGES for p in (ROOT / package).glob("**/prompts/*.j2"))


def test_templates_exist() -> None:
    assert len(ALL_TEMPLATES) >= 30


@pytest.mark.parametrize("path", ALL_TEMPLATES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_template_renders_with_exactly_its_variables(path: Path) -> None:
    names = template_variables(path.parent, path.name)
    text = render(path.parent, path.name, **{name: f"<{name}>" for name in names})
    for name in names:
        assert f"<{name}>" in text
    if names:
        missing = sorted(names)[0]
        with pytest.raises(UndefinedError):
            render(path.parent, path.name, **{n: "x" for n in names if n != missing})
    with pytest.raises(TypeError, match="does not use"):
        render(path.parent, path.name, **{n: "x" for n in names}, unexpected="x")


def test_reask_lists_the_errors() -> None:
    text = render(GATEWAY_PROMPTS, "reask.j2", errors="- a: bad")
    assert "- a: bad" in text
