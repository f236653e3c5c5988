from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from gateway.structured import (
    InvalidReply,
    grammar_safe,
    parse_reply,
    response_format,
    structured_mode,
)


class Inner(BaseModel):
    score: int = Field(ge=1, le=4)
    big: int = Field(ge=0, le=10_000)
    free: int


class Outer(BaseModel):
    items: list[Inner]
    note: str = Field("", max_length=2000)
    short: str = Field("", max_length=20)
    longest: str = Field("", max_length=800)
    over: str = Field("", max_length=801)


def test_bounded_ints_become_enums_in_nested_defs() -> None:
    schema = grammar_safe(Outer.model_json_schema())
    props = schema["$defs"]["Inner"]["properties"]
    assert props["score"]["enum"] == [1, 2, 3, 4]
    assert "enum" not in props["big"]  # too wide to list
    assert "enum" not in props["free"]
    assert "enum" not in Outer.model_json_schema()["$defs"]["Inner"]["properties"]["score"]
    assert "maxLength" not in schema["properties"]["note"]  # would abort llama.cpp's parser
    assert schema["properties"]["short"]["maxLength"] == 20
    assert schema["properties"]["longest"]["maxLength"] == 800  # a review's Summary bound
    assert "maxLength" not in schema["properties"]["over"]


def test_response_format_per_mode() -> None:
    assert response_format("llamacpp_schema", Outer)["schema"]["$defs"]["Inner"]
    spec = response_format("json_schema", Outer)
    assert spec["type"] == "json_schema" and spec["json_schema"]["name"] == "Outer"
    assert response_format("json_object", Outer) == {"type": "json_object"}


def test_mode_detection_and_override() -> None:
    assert structured_mode("local", {}) == "llamacpp_schema"
    assert structured_mode("openai/gpt-4o", {}) == "json_schema"
    assert structured_mode("openai/my-vllm-model", {}) == "json_object"
    assert (
        structured_mode("openai/my-vllm-model", {"openai/my-vllm-model": "json_schema"})
        == "json_schema"
    )


def test_parse_reply_validates_and_reports_paths() -> None:
    assert parse_reply('{"items": []}', Outer) == Outer(items=[])
    with pytest.raises(InvalidReply) as info:
        parse_reply('{"items": [{"score": 9, "big": 1, "free": 2}]}', Outer)
    assert "- items.0.score: Input should be less than or equal to 4" in info.value.errors
    with pytest.raises(InvalidReply, match="not valid JSON"):
        parse_reply("Sure! Here is the JSON: {}", Outer)


def test_raw_newlines_inside_strings_are_accepted() -> None:
    assert parse_reply('{"items": [], "note": "two\nlines"}', Outer).note == "two\nlines"
