"""`reviewer review` with a capable provider model: nothing a NeurIPS-length review holds is lost.

The loopback fakes (``tests/provider_fakes.py``) speak OpenAI's, Anthropic's and Gemini's real
wire protocols through litellm and answer with real GPT-4o reviews (6+ weaknesses, 8+
questions). The review runs through the real CLI, and every output format must show every item.
"""

from __future__ import annotations

import html as html_text
import json
import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from reviewer.cli import app
from tests.provider_fakes import MODELS, PROVIDERS, Provider, ProviderFakes

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "samples" / "papers" / "multi_style_adapter.pdf"
FIXTURE = ROOT / "tests" / "fixtures" / "gpt4o_reviews.jsonl"


def _written_reviews() -> list[dict[str, object]]:
    return [json.loads(line)["review"] for line in FIXTURE.read_text().splitlines()]


def _words(text: str) -> str:
    """Letters and digits only: PDF text breaks lines and hyphenates where HTML does not."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _review(
    fakes: ProviderFakes, provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    model = MODELS[provider]
    monkeypatch.setenv("AUTOSCHOLAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTOSCHOLAR_LLM__CACHE_ENABLED", "false")
    bases = json.dumps(fakes.overrides(provider)["llm"]["api_bases"])
    out = tmp_path / "review"
    result = CliRunner().invoke(
        app,
        [
            "review",
            str(PAPER),
            "--model",
            model,
            "--reviewers",
            "3",
            "--reflections",
            "1",
            "--out",
            str(out),
            "--set",
            f"llm.api_bases={bases}",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_capable_models_whole_review_reaches_every_output(
    provider: Provider,
    provider_fakes: ProviderFakes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _review(provider_fakes, provider, tmp_path, monkeypatch)
    report = json.loads((out / "review.json").read_text())
    assert report["failures"] == [] and len(report["reviewers"]) == 3
    assert report["meta_review"] is not None
    written = _written_reviews()
    finals = [r["rounds"][-1] for r in report["reviewers"]]
    for final in finals:
        # Exactly a review the model wrote, every item whole: nothing cut to a compact form.
        source = next(w for w in written if w["Summary"] == final["Summary"])
        assert final["Weaknesses"] == source["Weaknesses"]
        assert final["Questions"] == source["Questions"]
        assert len(final["Weaknesses"]) >= 6 and len(final["Questions"]) >= 8
    markdown = (out / "review.md").read_text()
    html = html_text.unescape((out / "review.html").read_text())
    pdf = _words(" ".join(page.extract_text() for page in PdfReader(out / "review.pdf").pages))
    for item in (i for final in finals for i in [*final["Weaknesses"], *final["Questions"]]):
        assert item in markdown
        assert _words(item) in _words(html)
        assert _words(item) in pdf, item
    # The provider's prices and its prompt cache reach the ledger and the report.
    rows = report["ledger"]
    assert rows and all(r["model"] == MODELS[provider] for r in rows)
    assert all(r["prompt_tokens"] > 0 and r["cost_usd"] > 0 for r in rows)
    assert report["usage"]["cached_prompt_tokens"] > 0
    requests = provider_fakes.requests_to(provider)
    assert len(requests) == len(rows) == 3 * 2 + 1  # 3 reviews, 3 reflections, 1 meta-review


def test_anthropic_reviewers_mark_the_shared_prefix_for_caching(
    provider_fakes: ProviderFakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _review(provider_fakes, "anthropic", tmp_path, monkeypatch)
    report = json.loads((out / "review.json").read_text())
    rows = [r for r in report["ledger"] if r["role"] == "reviewer"]
    # The first call to arrive writes the guidelines + paper prefix; every later reviewer call
    # reads it. The ledger is in completion order, and concurrent reviewers may finish in any.
    cold = [r for r in rows if r["cached_prompt_tokens"] == 0]
    assert len(cold) == 1 and cold[0]["cache_write_tokens"] > 0
    assert len(rows) == 6
    assert report["usage"]["cache_savings_usd"] > 0
