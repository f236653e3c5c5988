"""The layers of docs/ARCHITECTURE.md hold, and the check that guards them bites (issue #16)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docs.architecture_graph import paper_mermaid

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "gateway", "scientist", "reviewer", "graphs", "service")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _tree_copy(tmp_path: Path) -> Path:
    """The packages and pyproject.toml in a scratch folder (never the working tree)."""
    dest = tmp_path / "tree"
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (make setup)")
@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # A stage reaching up to graphs.
        (
            "scientist/ideas/nodes.py",
            "import graphs.paper",
            "scientist.ideas.nodes -> graphs.paper",
        ),
        # The reviewer importing the scientist.
        (
            "reviewer/review/form.py",
            "import scientist.ideas.models",
            "reviewer.review.form -> scientist.ideas.models",
        ),
        # The gateway (LLM access only) reaching up to the settings core.
        ("gateway/ledger.py", "import core.settings", "gateway.ledger -> core.settings"),
        # The service importing an entry point.
        ("service/app.py", "import scientist.cli", "service.app -> scientist.cli"),
    ],
)
def test_an_upward_import_breaks_the_lint(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    tree = _tree_copy(tmp_path)
    clean = _lint(tree)
    assert clean.returncode == 0, clean.stdout[-2000:]
    target = tree / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    dirty = _lint(tree)
    assert dirty.returncode != 0
    assert "BROKEN" in dirty.stdout and broken in dirty.stdout, dirty.stdout[-2000:]


def test_the_architecture_picture_is_the_compiled_graph() -> None:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = doc.split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    assert block.strip() == paper_mermaid()
