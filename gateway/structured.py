"""Structured output: schemas a backend can enforce, and validation of what comes back.

Three modes, chosen per model in one place (``structured_mode``):
- ``llamacpp_schema``: llama.cpp's ``{"type": "json_object", "schema": ...}``, enforced by a
  grammar. The grammar ignores integer minimum/maximum, so bounded integers are sent as
  ``enum`` lists (pydantic still validates the bounds).
- ``json_schema``: OpenAI-style ``{"type": "json_schema", ...}`` for models litellm knows
  support it (OpenAI, Anthropic via tools, Gemini...).
- ``json_object``: JSON mode; the schema goes into the system message.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from gateway._litellm import load_litellm

StructuredMode = Literal["llamacpp_schema", "json_schema", "json_object"]
MAX_ENUM_SPAN = 101
# llama.cpp expands maxLength/maxItems into nested optional rules and refuses a repetition whose
# (rules x count) exceeds 2,000 ("exceeds sane defaults"), aborting the whole server: a string's
# char rule counts 2, so 800 parses and 1,200 aborted. Longer bounds are left to pydantic.
MAX_GRAMMAR_LENGTH = 800
MAX_GRAMMAR_ITEMS = 8
T = TypeVar("T", bound=BaseModel)


def structured_mode(model: str, overrides: dict[str, StructuredMode]) -> StructuredMode:
    """How to ask ``model`` for JSON that follows a schema."""
    if model in overrides:
        return overrides[model]
    if model == "local":
        return "llamacpp_schema"
    litellm = load_litellm()

    try:
        return "json_schema" if litellm.supports_response_schema(model=model) else "json_object"
    except Exception:  # litellm raises bare Exceptions for unmapped models
        return "json_object"


def grammar_safe(schema: Any) -> Any:
    """Copy of ``schema`` that llama.cpp's grammar can enforce and survive.

    Integers with a small [minimum, maximum] also carry an ``enum`` (the grammar ignores
    numeric bounds); string and array bounds too long for the grammar are dropped.
    """
    if isinstance(schema, list):
        return [grammar_safe(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: grammar_safe(value) for key, value in schema.items()}
    if isinstance(result.get("maxLength"), int) and result["maxLength"] > MAX_GRAMMAR_LENGTH:
        del result["maxLength"]
    if isinstance(result.get("maxItems"), int) and result["maxItems"] > MAX_GRAMMAR_ITEMS:
        del result["maxItems"]
    low, high = result.get("minimum"), result.get("maximum")
    if (
        result.get("type") == "integer"
        and isinstance(low, int)
        and isinstance(high, int)
        and 0 <= high - low < MAX_ENUM_SPAN
    ):
        result["enum"] = list(range(low, high + 1))
    return result


def json_schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    """The pydantic model's JSON schema."""
    return schema.model_json_schema()


def response_format(mode: StructuredMode, schema: type[BaseModel]) -> dict[str, Any]:
    """The ``response_format`` argument for ``mode``."""
    spec = json_schema_of(schema)
    if mode == "llamacpp_schema":
        return {"type": "json_object", "schema": grammar_safe(spec)}
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": spec, "strict": False},
        }
    return {"type": "json_object"}


def schema_text(schema: type[BaseModel]) -> str:
    """The schema as compact JSON text for a prompt."""
    return json.dumps(json_schema_of(schema), separators=(",", ":"))


class InvalidReply(ValueError):
    """A reply that is not valid JSON for the schema; ``errors`` is a model-readable list."""

    def __init__(self, errors: str) -> None:
        super().__init__(errors)
        self.errors = errors


def parse_reply(text: str, schema: type[T]) -> T:
    """Validate ``text`` as ``schema``; a fenced ```json block is unwrapped, nothing more.

    Raw control characters inside strings are accepted (llama.cpp's grammar lets a newline
    through where JSON wants ``\\n``); everything else must be one valid JSON value.
    """
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    try:
        data = json.loads(body, strict=False)
    except json.JSONDecodeError as exc:
        raise InvalidReply(
            f"- (root): not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InvalidReply(describe_error(exc)) from exc


def describe_error(exc: ValidationError) -> str:
    """A short, model-readable list of what failed validation."""
    lines = []
    for err in exc.errors()[:20]:
        where = ".".join(str(part) for part in err["loc"]) or "(root)"
        lines.append(f"- {where}: {err['msg']}")
    return "\n".join(lines)
