"""A run job through the service's real ``pipeline_launcher``, on fast fakes.

Every other run-job test hands the worker a fake launcher; this one keeps the real one:
``service.jobs.pipeline_launcher`` imports ``scientist.runs.run`` and runs
``run_in_folder`` with its real deps. What is faked sits outside our code: the models are
the loopback OpenAI fake (``tests/provider_fakes.py``), Aider is a stand-in script that
reports its usage and edits nothing, and the literature is the offline index. The toy
template's experiment and plot run for real in the sandbox; weasyprint renders the paper.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.literature.factory import index_path
from core.literature.offline import build_index
from core.runstore import RunPaths
from gateway.types import LedgerEntry
from service.config import ServiceConfig
from service.jobs import RunHandler, default_handlers, pipeline_launcher
from tests.provider_fakes import ProviderFakes
from tests.service_support import TOKENS, finished, live_service, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TOY = str(ROOT / "tests" / "fixtures" / "template_toy")
CORPUS = ROOT / "samples" / "calibration" / "iclr_small.jsonl"
STAND_IN_AIDER = "#!/bin/sh\necho 'Tokens: 1.2k sent, 80 received. Cost: $0.01 message.'\n"


def _config(tmp_path: Path, fakes: ProviderFakes) -> ServiceConfig:
    aider = tmp_path / "aider"
    aider.write_text(STAND_IN_AIDER)
    aider.chmod(0o755)
    llm: dict[str, Any] = fakes.overrides("openai")["llm"]
    overrides: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "runs_dir": str(tmp_path / "runs"),
        "llm": {**llm, "cache_enabled": False},
        "literature": {"sources": ["offline"], "cache_enabled": False},
        "experiments": {"aider_bin": str(aider), "max_rounds": 1},
        "writing": {"pdf_engine": "weasyprint", "citation_rounds": 1, "fix_rounds": 0},
        "review": {"num_reviewers": 1, "num_reflections": 0, "num_fewshot": 0},
        "service": {"tokens": TOKENS, "poll_interval_s": 0.05, "lease_s": 60.0},
    }
    return ServiceConfig(preset="debug", overrides=overrides)


def test_the_default_run_handler_uses_the_real_launcher() -> None:
    handler = default_handlers()["run"]
    assert isinstance(handler, RunHandler) and handler.launcher is pipeline_launcher


def test_a_run_job_through_the_real_pipeline_launcher(
    provider_fakes: ProviderFakes, tmp_path: Path
) -> None:
    config = _config(tmp_path, provider_fakes)
    build_index([CORPUS], index_path(config.settings()))
    # No launcher given: the workers' run handler is the real pipeline_launcher.
    with live_service(config, templates=[TOY]) as live, live.client() as client:
        response = client.post("/v1/runs", json={"template": TOY})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        body = wait_for(client, f"/v1/runs/{job_id}", finished, timeout=600)
        assert body["status"] == "done", body["error"]
        [idea] = body["ideas"]
        assert idea["stage"] == "review: done" and idea["has_paper"] and idea["has_review"]
        paper = client.get(f"/v1/runs/{job_id}/ideas/{idea['name']}/paper.pdf")
        assert paper.status_code == 200 and paper.content.startswith(b"%PDF-")
        review = client.get(f"/v1/runs/{job_id}/ideas/{idea['name']}/review").json()
        assert review["decision"]["decision"] in ("accept", "reject")
        run_dir = Path(live.state.paths.run_dir(job_id))

    # The summary is the pipeline's own RunManifest, as the launcher returned it.
    summary = body["summary"]
    assert summary["status"] == "done" and summary["template"] == TOY
    assert [i["status"] for i in summary["ideas"]] == ["done"]
    run = RunPaths(run_dir)
    assert run.run_json.is_file() and run.checkpoints.is_file()
    assert run.idea(idea["name"]).paper_pdf.is_file()
    # Every model call went through litellm to the fake and is in the run's ledger, next to
    # the usage the stand-in Aider reported for its rounds.
    rows = [LedgerEntry.model_validate_json(line) for line in run.ledger.read_text().splitlines()]
    assert body["llm_calls"] == len(rows)
    coder = [r for r in rows if r.role == "coder"]
    assert coder and all(r.prompt_tokens == 1200 and r.completion_tokens == 80 for r in coder)
    assert len(rows) - len(coder) == len(provider_fakes.requests_to("openai")) > 0
    # The pipeline's events reached the job's progress through the launcher's on_event.
    job = live.store.get(job_id)
    assert job is not None and job.progress.get("events"), job.progress
