"""Integration tests use the real embedded model server; one server per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import Settings
from gateway.local import LocalServer


@pytest.fixture(scope="session")
def embedded_server(embedded_settings: Settings) -> Iterator[LocalServer]:
    """The real llama.cpp server with SmolLM2-135M, started once and stopped at the end."""
    server = LocalServer(embedded_settings.local, embedded_settings.data_dir)
    server.base_url()
    yield server
    server.stop()
