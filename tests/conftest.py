"""Shared fixtures: isolated settings, the misbehaving fake server, the embedded model."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings, load_settings
from tests.fakes import FakeOpenAI, fake_openai_server
from tests.provider_fakes import ProviderFakes, serve_provider_fakes, set_dummy_env

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AUTOSCHOLAR_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("AUTOSCHOLAR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings with a private data dir and runs dir; keyword overrides merge in."""

    def build(preset: str = "default", **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"),
            "runs_dir": str(tmp_path / "runs"),
        }
        return load_settings(preset, {**base, **overrides})

    return build


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A local OpenAI-compatible server whose behaviour each test scripts."""
    with fake_openai_server() as fake:
        yield fake


@pytest.fixture(scope="session")
def embedded_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the real embedded model; the re-quantised file is shared across tests."""
    data = Path(os.environ.get("AUTOSCHOLAR_TEST_DATA_DIR", tmp_path_factory.mktemp("data")))
    return load_settings("debug", {"data_dir": str(data), "llm": {"cache_enabled": False}})


@pytest.fixture
def provider_fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderFakes]:
    """Loopback OpenAI, Anthropic and Gemini servers answering with real GPT-4o reviews."""
    set_dummy_env(monkeypatch.setenv)
    with serve_provider_fakes() as fakes:
        yield fakes
