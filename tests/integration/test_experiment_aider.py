"""Real Aider (from .venv-aider) against the loopback fake OpenAI server: the wiring, exactly.

The fake replies with a scripted SEARCH/REPLACE block, so the edit is deterministic; what is
tested is our command line, environment, output bound and usage parsing around real Aider.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core.settings import Settings
from scientist.experiments.editor import CHECKOUT_AIDER, AiderCLI
from tests.fakes import Behaviour, FakeOpenAI

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHECKOUT_AIDER is None,
        reason="Aider is not installed at .venv-aider: run `make setup` (it creates .venv-aider).",
    ),
]

REPLY = """I will halve the learning rate.

experiment.py
```python
<<<<<<< SEARCH
LR = 0.1
=======
LR = 0.05
>>>>>>> REPLACE
```
"""


@pytest.mark.parametrize("coder", ["local", "openai/fake-coder"])
def test_real_aider_applies_the_scripted_edit(
    coder: str,
    tmp_path: Path,
    fake_openai: FakeOpenAI,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-key")
    fake_openai.default = Behaviour(content=REPLY, prompt_tokens=321, completion_tokens=45)
    cfg = make_settings(
        llm={"models": {"coder": coder}, "api_bases": {"openai/fake-coder": fake_openai.url}},
        experiments={"aider_round_timeout_s": 120},
        profiles={name: {"coder_max_tokens": 333} for name in ("compact", "full")},
    )
    (tmp_path / "experiment.py").write_text("LR = 0.1\nprint(LR)\n")
    (tmp_path / "notes.txt").write_text("# notes\n")
    editor = AiderCLI(cfg, local_base_url=lambda: fake_openai.url)
    result = editor.edit(
        tmp_path, ["experiment.py", "notes.txt"], "Halve the learning rate.", log_stem="round_1"
    )
    assert result.exit_code == 0, result.output_tail
    assert (tmp_path / "experiment.py").read_text() == "LR = 0.05\nprint(LR)\n"
    assert (result.tokens_sent, result.tokens_received) == (321, 45)
    assert "sk-test-secret-key" not in " ".join(result.command)
    body = fake_openai.requests[0]
    assert body["model"] == ("local" if coder == "local" else "fake-coder")
    assert body["max_tokens"] == 333
    prompt = " ".join(str(m.get("content")) for m in body["messages"])
    assert "Halve the learning rate." in prompt and "LR = 0.1" in prompt
    assert result.log_path is not None and (tmp_path / result.log_path).is_file()
