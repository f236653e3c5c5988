from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.errors import SettingsError
from gateway.settings import Settings, load_settings, parse_assignments, preset_names, read_preset


def test_shipped_presets_load_and_differ() -> None:
    assert preset_names() == ["debug", "default", "quality"]
    debug, quality = load_settings("debug"), load_settings("quality")
    assert debug.preset == "debug"
    assert debug.ideas.num_ideas < quality.ideas.num_ideas
    assert debug.review.num_reviewers < quality.review.num_reviewers
    assert quality.ideas.num_reflections == 5 and quality.review.num_reviewers == 5


def test_priority_override_over_env_over_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings("debug").review.num_reviewers == 2
    monkeypatch.setenv("AUTOSCHOLAR_REVIEW__NUM_REVIEWERS", "4")
    monkeypatch.setenv("AUTOSCHOLAR_LLM__MODELS__WRITER", "openai/gpt-4o")
    env = load_settings("debug")
    assert env.review.num_reviewers == 4
    assert env.llm.models.writer == "openai/gpt-4o"
    assert env.llm.models.reviewer == "local"
    assert env.ideas.num_ideas == 1  # untouched preset value survives the nested merge
    flagged = load_settings("debug", parse_assignments(["review.num_reviewers=7"]))
    assert flagged.review.num_reviewers == 7


def test_preset_from_environment_and_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOSCHOLAR_PRESET", "quality")
    assert load_settings().preset == "quality"
    custom = tmp_path / "mine.json"
    custom.write_text(json.dumps({"writing": {"page_limit": 4}}))
    assert load_settings(str(custom)).writing.page_limit == 4


def test_bad_presets_and_values_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="choose one of debug, default, quality"):
        read_preset("nope")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SettingsError, match="not valid JSON"):
        read_preset(str(broken))
    with pytest.raises(SettingsError, match=r"review\.num_reviewers"):
        load_settings("default", {"review": {"num_reviewers": 0}})
    with pytest.raises(SettingsError, match="Extra inputs"):
        load_settings("default", {"review": {"reviewers": 3}})
    with pytest.raises(SettingsError, match=r"section\.field=value"):
        parse_assignments(["no-equals-sign"])


def test_assignments_parse_json_values() -> None:
    parsed = parse_assignments(["a.b=3", "a.c=true", "d=openai/gpt-4o", "e=[1,2]"])
    assert parsed == {"a": {"b": 3, "c": True}, "d": "openai/gpt-4o", "e": [1, 2]}


def _undescribed(model: type[BaseModel], prefix: str = "") -> list[str]:
    missing = []
    for name, field in model.model_fields.items():
        if not field.description:
            missing.append(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            missing += _undescribed(annotation, f"{prefix}{name}.")
    return missing


def test_every_settings_field_is_described() -> None:
    assert _undescribed(Settings) == []


def test_secrets_are_masked_when_printed() -> None:
    settings = load_settings("default", {"literature": {"s2_api_key": "sk-very-secret"}})
    assert "sk-very-secret" not in settings.model_dump_json()
    assert settings.literature.s2_api_key is not None
    assert settings.literature.s2_api_key.get_secret_value() == "sk-very-secret"
