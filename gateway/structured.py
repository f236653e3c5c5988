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

StructuredMode = Literal["llamacpp_schema", "json_schema", "json_object"]
MAX_ENUM_SPAN = 101
T = TypeVar("T", bound=BaseModel)


def structured_mode(model: str, overrides: dict[str, StructuredMode]) -> StructuredMode:
    """How to ask ``model`` for JSON that follows a schema."""
    if model in overrides:
        return overrides[model]
    if model == "local":
        return "llamacpp_schema"
    import litellm

    try:
        return "json_schema" if litellm.supports_response_schema(model=model) else "json_object"
    except Exception:  # litellm raises bare Exceptions for unmapped models
        return "json_object"


def bounded_ints_as_enums(schema: Any) -> Any:
    """Copy of ``schema`` where integers with a small [minimum, maximum] also carry an enum."""
    if isinstance(schema, list):
        return [bounded_ints_as_enums(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: bounded_ints_as_enums(value) for key, value in schema.items()}
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
        return {"type": "json_object", "schema": bounded_ints_as_enums(spec)}
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": spec, "strict": False},
        }
    return {"type": "json_object"}


def schema_text(schema: type[BaseModel]) -> str:
    """The schema as compact JSON text for a prompt."""
    return json.dumps(json_schema_of(schema), separators=(",", ":"))


def parse_reply(text: str, schema: type[T]) -> T:
    """Validate ``text`` as ``schema``; a fenced ```json block is unwrapped, nothing more."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return schema.model_validate_json(body)


def describe_error(exc: ValidationError) -> str:
    """A short, model-readable list of what failed validation."""
    lines = []
    for err in exc.errors()[:20]:
        where = ".".join(str(part) for part in err["loc"]) or "(root)"
        lines.append(f"- {where}: {err['msg']}")
    return "\n".join(lines)
