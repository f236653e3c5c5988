"""The Aider CLI editor without running Aider: command line, environment, usage parsing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from core.settings import Settings
from scientist.experiments.editor import (
    AiderCLI,
    aider_model,
    parse_usage,
    resolve_aider_bin,
)
from scientist.experiments.errors import AiderNotFoundError


@pytest.fixture
def fake_aider(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "aider"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_command_is_non_interactive_bounded_and_secret_free(
    tmp_path: Path,
    fake_aider: Path,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-secret")
    monkeypatch.setenv("AUTOSCHOLAR_LLM__TEMPERATURE", "0.1")
    cfg = make_settings(
        experiments={"aider_bin": str(fake_aider)}, profiles={"compact": {"coder_max_tokens": 99}}
    )
    editor = AiderCLI(cfg, local_base_url=lambda: "http://127.0.0.1:9/v1")
    work = tmp_path / "idea"
    (work / "logs").mkdir(parents=True)
    command = editor.command(work, ["experiment.py", "plot.py"], "Do it.", "round_1")
    for flag in (
        "--no-git",
        "--yes-always",
        "--no-check-update",
        "--analytics-disable",
        "--no-show-model-warnings",
        "--no-stream",
        "--no-pretty",
        "--no-auto-commits",
        "--no-suggest-shell-commands",
        "--no-show-release-notes",
    ):
        assert flag in command
    assert command[command.index("--model") + 1] == "openai/local"
    assert command[command.index("--openai-api-base") + 1] == "http://127.0.0.1:9/v1"
    assert command[command.index("--edit-format") + 1] == "diff"
    assert [command[i + 1] for i, a in enumerate(command) if a == "--file"] == [
        "experiment.py",
        "plot.py",
    ]
    assert "sk-live-secret" not in " ".join(command)
    message = Path(command[command.index("--message-file") + 1])
    assert message.read_text() == "Do it."
    metadata = json.loads(Path(command[command.index("--model-metadata-file") + 1]).read_text())
    assert metadata["openai/local"]["max_input_tokens"] == cfg.local.n_ctx
    assert metadata["openai/local"]["input_cost_per_token"] == 0.0
    model_settings = json.loads(
        Path(command[command.index("--model-settings-file") + 1]).read_text()
    )
    assert model_settings == [{"name": "aider/extra_params", "extra_params": {"max_tokens": 99}}]
    env = editor._env()
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["OPENAI_API_KEY"] == "local"  # the embedded server gets no real key
    assert not any(k.startswith("AUTOSCHOLAR_") for k in env)


def test_a_provider_model_keeps_the_users_key_in_the_environment_only(
    fake_aider: Path, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    cfg = make_settings(
        llm={"models": {"coder": "anthropic/claude-sonnet-4-5"}},
        experiments={"aider_bin": str(fake_aider)},
    )
    editor = AiderCLI(cfg)
    model = editor.model()
    assert model.name == "anthropic/claude-sonnet-4-5"
    assert model.api_base is None
    assert model.metadata.get("max_input_tokens")
    assert editor._env()["ANTHROPIC_API_KEY"] == "sk-ant-secret"


def test_a_custom_server_gets_its_base_url(make_settings: Callable[..., Settings]) -> None:
    cfg = make_settings(
        llm={
            "models": {"coder": "openai/qwen-coder"},
            "api_bases": {"openai/qwen-coder": "http://127.0.0.1:8001/v1"},
        }
    )
    model = aider_model(cfg)
    assert model.api_base == "http://127.0.0.1:8001/v1"
    assert model.metadata["max_input_tokens"] > 0


def test_missing_aider_names_make_setup(tmp_path: Path) -> None:
    with pytest.raises(AiderNotFoundError, match="make setup"):
        resolve_aider_bin(tmp_path / "nope" / "aider")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Tokens: 321 sent, 45 received.", (321, 45, None)),
        (
            "Tokens: 3.1k sent, 145 received. Cost: $0.01 message, $0.03 session.",
            (3100, 145, 0.03),
        ),
        (
            "Tokens: 12k sent, 1.2k cache write, 2.0k cache hit, 1.5k received.\n"
            "Tokens: 2.0k sent, 100 received.",
            (14000, 1600, None),
        ),
        ("no usage line at all", (None, None, None)),
        (
            "Model openai/local has hit a token limit!\nInput tokens: ~3,698 of 8,192\n"
            "Output tokens: ~241 of 256 -- possibly exceeded output limit!",
            (3698, 241, None),
        ),
    ],
)
def test_usage_is_parsed_from_aiders_output(
    output: str, expected: tuple[int | None, int | None, float | None]
) -> None:
    assert parse_usage(output) == expected


def test_an_editor_run_is_bounded_by_the_round_timeout(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    slow = tmp_path / "aider"
    slow.write_text("#!/bin/sh\necho 'Tokens: 5 sent, 1 received.'\nsleep 30 &\nsleep 30\n")
    slow.chmod(0o755)
    cfg = make_settings(experiments={"aider_bin": str(slow), "aider_round_timeout_s": 1})
    editor = AiderCLI(cfg, local_base_url=lambda: "http://127.0.0.1:9/v1")
    work = tmp_path / "idea"
    work.mkdir()
    result = editor.edit(work, ["experiment.py"], "x", log_stem="round_1")
    assert result.timed_out and result.exit_code is None
    assert result.seconds < 10
    assert result.tokens_sent == 5


@pytest.mark.parametrize(
    ("coder", "cap"),
    [
        ("local", 1024),  # the compact profile's cap
        ("openai/gpt-4o", 8192),  # the full profile's cap, under the model's 16,384
        ("openai/gpt-4-turbo", 4096),  # the model's own output limit, under the profile's cap
        ("openai/my-vllm-model", 8192),  # unknown to litellm: the profile's cap
    ],
)
def test_the_coder_cap_is_the_profiles_within_the_models_limit(
    fake_aider: Path, make_settings: Callable[..., Settings], coder: str, cap: int, tmp_path: Path
) -> None:
    cfg = make_settings(
        llm={"models": {"coder": coder}}, experiments={"aider_bin": str(fake_aider)}
    )
    editor = AiderCLI(cfg, local_base_url=lambda: "http://127.0.0.1:9/v1")
    assert editor.model().max_tokens == cap
    (tmp_path / "logs").mkdir()
    command = editor.command(tmp_path, ["experiment.py"], "Do it.", "round_1")
    settings_file = Path(command[command.index("--model-settings-file") + 1])
    assert json.loads(settings_file.read_text())[0]["extra_params"] == {"max_tokens": cap}


def test_a_keyless_openai_compatible_coder_gets_a_placeholder_key_and_one_model(
    tmp_path: Path,
    fake_aider: Path,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    base = {"openai/qwen2.5-7b": "http://127.0.0.1:9/v1"}
    cfg = make_settings(
        experiments={"aider_bin": str(fake_aider)},
        llm={"models": {"coder": "openai/qwen2.5-7b"}, "api_bases": base},
    )
    model = aider_model(cfg)
    assert model.env == {"OPENAI_API_KEY": "sk-no-key-required"}
    work = tmp_path / "idea"
    (work / "logs").mkdir(parents=True)
    command = AiderCLI(cfg).command(work, ["experiment.py"], "Do it.", "round_1")
    # Aider's weak model would otherwise be another model, whose price list it downloads.
    assert command[command.index("--weak-model") + 1] == "openai/qwen2.5-7b"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    assert aider_model(cfg).env == {}  # a real key is never replaced
