"""The whole paper pipeline, ``--preset default``, with every role on a provider fake.

Ideas on Gemini, the writer and citations on Anthropic, the coder (Aider, a CLI in its own
virtualenv) and the area chair on OpenAI, and one reviewer per provider: each through
litellm to the loopback fakes of ``tests/provider_fakes.py``, which speak the providers'
wire protocols. Real experiments, real ``latexmk``, the offline literature index; no
network. The fakes answer reviews with stored GPT-4o reviews, other schemas with valid
instances and free text with prose, so Aider finds no edit in its replies and its rounds
are recorded as ``no_change``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.types import LedgerEntry
from reviewer.review.form import ReviewReport
from scientist.experiments.models import ExperimentRecord
from scientist.runs.run import run_pipeline
from scientist.runs.wiring import RunRequest
from tests.provider_fakes import PROVIDERS, Provider, ProviderFakes
from tests.provider_replies import load_reviews

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
AIDER = ROOT / ".venv-aider" / "bin" / "aider"
# Roles off the default provider (OpenAI: coder, reviewer, meta-reviewer).
ROLES: dict[str, Provider] = {"ideas": "gemini", "writer": "anthropic", "citations": "anthropic"}


def as_assignments(overrides: dict[str, Any]) -> list[str]:
    """``--set`` pairs for nested overrides, one per field of a section (values as JSON)."""
    return [
        f"{section}.{name}={json.dumps(value)}"
        for section, fields in overrides.items()
        for name, value in fields.items()
    ]


@pytest.mark.skipif(not AIDER.exists(), reason="Aider's virtualenv is missing: run `make setup`")
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="no TeX toolchain: `make setup`")
def test_default_preset_on_provider_fakes_reaches_a_review(
    provider_fakes: ProviderFakes, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from scientist.cli import app

    fakes = provider_fakes
    data = f"data_dir={tmp_path / 'data'}"
    index = CliRunner().invoke(
        app, ["literature", "index", str(ROOT / "samples/literature/references.bib"), "--set", data]
    )
    assert index.exit_code == 0, index.output
    overrides = [
        data,
        f"runs_dir={tmp_path / 'runs'}",
        "llm.cache_enabled=false",
        'literature.sources=["offline"]',
        *as_assignments(fakes.overrides("openai", reviewers=PROVIDERS, **ROLES)),
    ]
    run, manifest = run_pipeline(
        RunRequest(template="digits", preset="default", overrides=overrides)
    )

    assert manifest.status == "done", manifest.reason
    [idea] = manifest.ideas
    assert idea.status == "done", idea.reason
    assert idea.stage == "review" and Path(idea.paper_pdf or "").is_file()
    report = ReviewReport.model_validate_json(Path(idea.review_json or "").read_text())
    assert report.failures == [] and report.meta_review is not None
    assert sorted(report.models) == sorted(fakes.model(p) for p in PROVIDERS)
    stored = load_reviews()
    assert len(report.reviewers) == 3
    for reviewer in report.reviewers:
        # A whole stored GPT-4o review (13-18 weaknesses, 14-16 questions), no list cut to
        # a compact bound, and each reviewer kept it on reflection.
        assert reviewer.final.model_dump() in stored
        assert len(reviewer.final.Weaknesses) >= 6 and len(reviewer.final.Questions) >= 6
        assert reviewer.stopped_early

    # Aider reached the OpenAI fake (its reported usage), found no edit in prose, and
    # tried no network: its weak model is the coder, priced from the metadata file.
    record = ExperimentRecord.model_validate_json(Path(idea.folder, "experiments.json").read_text())
    assert record.rounds and {r.status for r in record.rounds} == {"no_change"}
    assert all((r.tokens_sent or 0) > 0 for r in record.rounds)
    logs = sorted(Path(idea.folder, "logs").glob("*.aider.txt"))
    assert logs, "no Aider log"
    for log in logs:
        assert "AuthenticationError" not in log.read_text()
        assert "githubusercontent" not in log.read_text()

    rows = [LedgerEntry.model_validate_json(line) for line in run.ledger.read_text().splitlines()]
    for provider in PROVIDERS:
        priced = [r for r in rows if r.model == fakes.model(provider)]
        assert priced, f"no ledger row for {provider}"
        assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in priced)
        assert all(r.cost_usd > 0 for r in priced), provider
    placed: dict[str, Provider] = {**ROLES, "coder": "openai", "meta_reviewer": "openai"}
    for role, provider in placed.items():
        assert {r.model for r in rows if r.role == role} == {fakes.model(provider)}, role
    reviews = [r for r in rows if r.role == "reviewer"]
    assert {r.model for r in reviews if r.cached_prompt_tokens > 0} == {
        fakes.model(p) for p in PROVIDERS
    }
    assert all(fakes.requests_to(p) for p in PROVIDERS)
