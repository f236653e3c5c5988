"""Co-pilot service runs on the pipeline fakes: the worker's launcher runs the real paper
graph (``run_in_folder``, with its real co-pilot pauses) on ``tests/pipeline_support.py``'s
fakes, and the operator settings keep each stage small."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.runstore import RunPaths
from core.settings import Settings, deep_merge, parse_assignments
from gateway.scripted import ScriptedLLM
from scientist.pipeline.deps import Copilot
from scientist.runs.run import run_in_folder
from service.config import ServiceConfig
from tests.pipeline_support import ROOT, fake_deps_factory, fast_overrides
from tests.service_support import service_config

TOY = str(ROOT / "tests" / "fixtures" / "template_toy")


def copilot_config(tmp_path: Path, *extra: str) -> ServiceConfig:
    """The test service's settings with the fast pipeline settings (and ``extra``) on top."""
    base = service_config(tmp_path)
    fast = parse_assignments([*fast_overrides(tmp_path), *extra])
    return ServiceConfig(base.preset, deep_merge(base.overrides, fast))


def fake_launcher(llm: ScriptedLLM) -> Callable[..., Any]:
    """The service's run launcher on the pipeline fakes; ``llm`` keeps every request."""

    def launch(
        settings: Settings,
        template: str,
        run_paths: RunPaths,
        *,
        on_event: Callable[[Any], None] | None = None,
        copilot: Copilot | None = None,
    ) -> Any:
        factory = fake_deps_factory(llm)
        return run_in_folder(
            settings, template, run_paths, on_event=on_event, copilot=copilot, deps_factory=factory
        )

    return launch
