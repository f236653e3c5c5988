from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from core.settings import Settings, load_settings, parse_assignments, preset_names, read_preset
from gateway.errors import SettingsError
from gateway.profiles import COMPACT_PROFILE, FULL_PROFILE, OutputProfile, ProfileSettings


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


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"review": {"max_output_tokens": 4096}}, "review_max_tokens"),
        ({"llm": {"max_output_tokens": 2048}}, "default_max_tokens"),
        ({"experiments": {"aider_max_output_tokens": 512}}, "coder_max_tokens"),
        ({"ideas": {"abstract_chars": 100}}, "novelty_abstract_chars"),
    ],
)
def test_a_moved_output_cap_names_its_profile_place(old: dict[str, Any], new: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings("default", old)
    message = str(caught.value)
    assert f"profiles.compact.{new}" in message and f"profiles.full.{new}" in message


def test_a_partial_profile_override_keeps_the_other_defaults() -> None:
    settings = load_settings("default", {"profiles": {"compact": {"review_items": 3}}})
    compact = settings.profiles.compact
    assert compact.review_items == 3 and compact.name == "compact"
    assert compact.model_dump(exclude={"review_items"}) == {
        k: v for k, v in COMPACT_PROFILE.items() if k != "review_items"
    }
    assert settings.profiles.full == OutputProfile.model_validate(FULL_PROFILE)
    flagged = load_settings("default", parse_assignments(["profiles.full.citation_picks=12"]))
    assert flagged.profile("openai/gpt-4o").citation_picks == 12
    assert flagged.profile("openai/gpt-4o").review_items == FULL_PROFILE["review_items"]
    with pytest.raises(SettingsError, match=r"profiles\.full\.citation_picks"):
        load_settings("default", {"profiles": {"full": {"citation_picks": 0}}})


def test_the_debug_preset_only_shrinks_the_compact_profile() -> None:
    debug = load_settings("debug")
    assert debug.profiles.compact.section_max_tokens == 200
    assert debug.profiles.full == OutputProfile.model_validate(FULL_PROFILE)


def test_name_for_picks_exact_then_longest_prefix_then_local_default() -> None:
    profiles = ProfileSettings(
        models={
            "ollama/": "compact",
            "ollama/llama3.1:70b": "full",
            "openai/": "full",
            "openai/qwen/": "compact",
            "openai/qwen/qwen2.5-72b": "full",
            "local": "full",
        }
    )
    assert profiles.name_for("ollama/llama3.1:70b") == "full"  # exact beats a prefix
    assert profiles.name_for("ollama/qwen2.5:0.5b") == "compact"
    assert profiles.name_for("openai/qwen/qwen2.5-0.5b") == "compact"  # the longer prefix wins
    assert profiles.name_for("openai/qwen/qwen2.5-72b") == "full"
    assert profiles.name_for("openai/gpt-4o") == "full"
    assert profiles.name_for("local") == "full"  # listed, so not the default
    defaults = ProfileSettings()
    assert defaults.name_for("local") == "compact"
    assert defaults.name_for("ollama/llama3.1") == "full"
    assert defaults.name_for("anthropic/claude-sonnet-4-5") == "full"
    assert defaults.for_model("local") is defaults.compact
    assert defaults.for_model("openai/gpt-4o") is defaults.full
    assert ProfileSettings(models={"ollama": "compact"}).name_for("ollama/x") == "full"  # no '/'
