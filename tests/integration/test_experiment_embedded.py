"""The whole experiment stage with the embedded model through real Aider, on the digits template.

SmolLM2-135M rarely writes a usable SEARCH/REPLACE block, so the rounds are often no-change
rounds; the test proves that every round runs, is bounded and is recorded, whatever the edits
are worth.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from core.settings import Settings
from gateway.local import LocalServer
from graphs.experiments import run_experiments
from scientist.experiments.editor import CHECKOUT_AIDER, AiderCLI
from scientist.experiments.models import ExperimentRecord
from scientist.experiments.rounds import ExperimentDeps
from scientist.experiments.runner import SandboxRunner
from scientist.ideas.models import Idea
from scientist.ideas.template import SHIPPED_TEMPLATES, load_template

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHECKOUT_AIDER is None,
        reason="Aider is not installed at .venv-aider: run `make setup` (it creates .venv-aider).",
    ),
]

IDEA = Idea(
    Name="smaller_learning_rate",
    Title="A Smaller Learning Rate for Noisy Digit Labels",
    Experiment="Change LR from 0.05 to 0.02 in experiment.py and compare test accuracy.",
    Interestingness=3,
    Feasibility=10,
    Novelty=2,
)


def test_embedded_model_drives_every_round(
    embedded_settings: Settings, embedded_server: LocalServer, tmp_path: Path
) -> None:
    template_dir = tmp_path / "digits"
    shutil.copytree(
        SHIPPED_TEMPLATES / "digits", template_dir, ignore=shutil.ignore_patterns("run_*", "logs")
    )
    experiments = embedded_settings.experiments.model_copy(
        update={
            "max_rounds": 1,
            "aider_round_timeout_s": 150.0,
            "run_timeout_s": 120.0,
            "plot_attempts": 1,
        }
    )
    profiles = embedded_settings.profiles.model_copy(
        update={
            "compact": embedded_settings.profiles.compact.model_copy(
                update={"coder_max_tokens": 64}
            )
        }
    )
    cfg = embedded_settings.model_copy(update={"experiments": experiments, "profiles": profiles})
    deps = ExperimentDeps(
        settings=cfg,
        editor=AiderCLI(cfg, local_base_url=embedded_server.base_url),
        runner=SandboxRunner.from_settings(experiments),
    )
    start = time.monotonic()
    record = run_experiments(IDEA, tmp_path / "run" / IDEA.Name, load_template(template_dir), deps)
    wall = time.monotonic() - start
    print(f"embedded experiment stage: {wall:.0f} s")
    for r in record.rounds:
        print(
            r.kind,
            r.status,
            f"{r.seconds:.0f} s",
            r.tokens_sent,
            r.tokens_received,
            r.changed_files,
        )
    assert record.status == "ok"
    assert record.baseline.status == "ok"
    kinds = [r.kind for r in record.rounds]
    assert kinds[0] == "experiment" and "plot" in kinds
    for r in record.rounds:
        assert r.status in {"ok", "run_failed", "no_change", "editor_failed", "timeout"}
        assert r.command[0].endswith("aider") and "--message-file" in r.command
        assert r.seconds <= 150 + 130  # the edit's bound plus a run's
    saved = (tmp_path / "run" / IDEA.Name / "experiments.json").read_text()
    assert ExperimentRecord.model_validate_json(saved) == record
    assert wall < 900
