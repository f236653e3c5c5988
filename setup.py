"""Puts the shipped research templates and samples into the wheel.

They live at the top of the checkout (``templates/``, ``samples/``), where people edit them;
a wheel carries them as ``core/shipped/templates`` and ``core/shipped/samples``, which
``core.resources.shipped_path`` finds first. Everything else is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("templates", "samples")
# What a run or a baseline leaves in a template folder, and caches: never shipped.
LEFT_BEHIND = shutil.ignore_patterns("run_*", "logs", "*.png", "__pycache__", "*.pyc")


class BuildPyWithShippedData(build_py):
    """``build_py``, then a copy of the shipped folders into ``core/shipped``."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "core" / "shipped"
        shutil.rmtree(target, ignore_errors=True)  # no file of an earlier build survives
        for name in SHIPPED:
            source = Path(name)
            if source.is_dir() and not self.dry_run:
                shutil.copytree(source, target / name, ignore=LEFT_BEHIND, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithShippedData})
