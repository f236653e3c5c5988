"""The whole paper pipeline on the embedded model: what `make demo` runs (slow: ~10-15 min)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.settings import Settings
from scientist.runs.run import run_pipeline
from scientist.runs.wiring import RunRequest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (ROOT / ".venv-aider" / "bin" / "aider").exists(),
    reason="Aider's virtualenv is missing: run `make setup`",
)
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="no TeX toolchain: `make setup`")
def test_digits_end_to_end(embedded_settings: Settings, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scientist.cli import app

    data = f"data_dir={embedded_settings.data_dir}"
    index = CliRunner().invoke(
        app, ["literature", "index", str(ROOT / "samples/literature/references.bib"), "--set", data]
    )
    assert index.exit_code == 0, index.output
    request = RunRequest(
        template="digits", preset="debug", overrides=[data, f"runs_dir={tmp_path / 'runs'}"]
    )
    run, manifest = run_pipeline(request)
    assert manifest.status == "done"
    [idea] = manifest.ideas
    assert idea.status == "done", idea.reason
    assert Path(idea.paper_pdf or "").is_file() and Path(idea.review_json or "").is_file()
    assert run.ledger.is_file() and manifest.totals["calls"] > 0
