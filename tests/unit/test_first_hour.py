"""What a new user trips over in the first hour (#23): each fixed, each with a test."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from rich.console import Console

from gateway import Gateway
from gateway.errors import AuthenticationFailedError
from gateway.settings import Settings
from scientist.pipeline.copilot import terminal_copilot
from scientist.pipeline.models import CopilotRequest

SettingsFactory = Callable[..., Settings]


def test_the_copilot_prompt_shows_its_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a\n"))
    console = Console(record=True, width=120, force_terminal=False)
    request = CopilotRequest(stage="ideas", summary="2 ideas", editable="{}")
    reply = terminal_copilot(request, console)
    text = console.export_text()
    assert reply.action == "approve"
    assert "[a]pprove, [e]dit, or [f]eedback and redo" in text


@pytest.mark.parametrize("role", ["reviewer", "meta_reviewer", "writer"])
def test_the_missing_key_hint_names_the_role_that_failed(
    role: str, make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    gw = Gateway(make_settings(llm={"models": {role: "anthropic/claude-sonnet-4-5"}}))
    with pytest.raises(AuthenticationFailedError) as info:
        gw.complete([{"role": "user", "content": "Rate this."}], role=role)  # type: ignore[arg-type]
    message = str(info.value)
    assert "ANTHROPIC_API_KEY" in message
    assert f"AUTOSCHOLAR_LLM__MODELS__{role.upper()}=local" in message
    assert f"the {role} role" in message
