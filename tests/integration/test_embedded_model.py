"""The gateway against the real embedded server over HTTP on 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, Field

from core.settings import Settings
from gateway import Gateway, ResponseCache
from gateway.local import LocalServer
from scientist.cli.demo import run_demo
from scientist.ideas.models import IdeaBatch

pytestmark = pytest.mark.integration


class Scores(BaseModel):
    novelty: int = Field(ge=1, le=10)
    feasibility: int = Field(ge=1, le=10)


class RatedIdea(BaseModel):
    name: str = Field(max_length=40)
    scores: Scores


class RatedIdeas(BaseModel):
    ideas: list[RatedIdea] = Field(min_length=2, max_length=3)


def test_nested_schema_comes_back_valid(
    embedded_settings: Settings, embedded_server: LocalServer
) -> None:
    gw = Gateway(embedded_settings, local_server=embedded_server)
    ask = [{"role": "user", "content": "List research ideas about grokking, with scores."}]
    result = gw.complete(ask, role="ideas", schema=RatedIdeas, max_tokens=300, temperature=0.0)
    assert 2 <= len(result.ideas) <= 3
    for idea in result.ideas:
        assert 1 <= idea.scores.novelty <= 10 and 1 <= idea.scores.feasibility <= 10
    (entry,) = gw.ledger.entries  # the grammar made the first reply valid: no re-ask needed
    assert entry.prompt_tokens > 50 and entry.completion_tokens > 10 and entry.cost_usd == 0.0


def test_plain_text_and_cache_over_real_http(
    embedded_settings: Settings, embedded_server: LocalServer, tmp_path: Path
) -> None:
    gw = Gateway(
        embedded_settings,
        local_server=embedded_server,
        cache=ResponseCache(tmp_path / "cache.sqlite"),
    )
    ask = [{"role": "user", "content": "Name one optimiser used to train neural networks."}]
    first = gw.complete(ask, role="writer", max_tokens=24, temperature=0.0)
    second = gw.complete(ask, role="writer", max_tokens=24, temperature=0.0)
    assert first and first == second
    assert [e.cache_hit for e in gw.ledger.entries] == [False, True]


def test_demo_writes_ideas_and_usage(
    embedded_settings: Settings, embedded_server: LocalServer, tmp_path: Path
) -> None:
    settings = embedded_settings.model_copy(update={"runs_dir": tmp_path / "runs"})
    result = run_demo(settings, count=2, gateway=Gateway(settings, local_server=embedded_server))
    stored = IdeaBatch.model_validate_json((result.run_dir / "ideas.json").read_text())
    assert stored == result.ideas and len(stored.ideas) >= 1
    assert result.totals.calls >= 1 and result.totals.completion_tokens > 0


def test_server_stops_by_pid(embedded_settings: Settings) -> None:
    server = LocalServer(embedded_settings.local, embedded_settings.data_dir)
    url = server.base_url()
    pid = server.pid
    assert pid is not None and httpx.get(f"{url}/models", timeout=5).status_code == 200
    server.stop()
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
