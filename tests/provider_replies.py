"""What the fake providers answer: real GPT-4o reviews, schema-valid instances, plain prose.

A responder turns one request (:class:`Asked`, the same whichever wire protocol carried it)
into the reply text. :class:`GPT4oResponder` is the default: reviews, reflections and
meta-reviews come from ``tests/fixtures/gpt4o_reviews.jsonl`` (The AI Scientist's stored
GPT-4o reviews), any other JSON schema gets a valid instance built from the schema itself,
and free text gets a few plain sentences. :class:`ScriptedResponder` plays a test's own
replies first.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gpt4o_reviews.jsonl"
# The gateway's structured-output instruction (gateway/prompts/structured_instruction.j2) ends
# with this and then the exact pydantic schema, which providers may have rewritten on the
# wire (Anthropic drops length bounds): an instance built from the prompt's copy validates.
SCHEMA_MARKER = "JSON schema:"
REVIEW_KEYS = frozenset({"Summary", "Strengths", "Weaknesses", "Questions", "Overall"})
REFLECTION_KEYS = frozenset({"thought", "review", "done"})
META_KEYS = frozenset({"summary", "strengths", "weaknesses", "disagreements"})
# Values that end a loop when a schema offers them (reflections, novelty rounds).
PREFERRED_ENUM_VALUES = ("novel", "accept")
TRUE_FIELDS = frozenset({"done", "finished", "complete", "stop"})
PROSE = (
    "The proposed method reduces the validation loss relative to the baseline in every "
    "configuration we ran. We report means and standard errors over three seeds and discuss "
    "where the evidence is still thin. The gains are largest on the smallest datasets."
)
FILLER = "a clear and testable statement about the method, its setting and the evidence for it"

ReplyKind = Literal["review", "reflection", "meta_review", "schema", "prose"]


@dataclass(frozen=True)
class Asked:
    """One request as every provider's fake sees it: the turns in order and the schema."""

    provider: str
    model: str
    turns: tuple[tuple[str, str], ...]
    wire_schema: dict[str, Any] | None = None

    @property
    def prompt(self) -> str:
        """Every turn's text, in order."""
        return "\n\n".join(text for _, text in self.turns)

    @property
    def schema(self) -> dict[str, Any] | None:
        """The schema the reply must follow: the prompt's exact copy, else the wire's."""
        return schema_in_prompt(self.prompt) or self.wire_schema


class Responder(Protocol):
    """Decides the reply text of one request."""

    def __call__(self, asked: Asked) -> str:
        """The reply text (JSON text when the request asks for a schema)."""
        ...


def schema_in_prompt(prompt: str) -> dict[str, Any] | None:
    """The JSON schema after the last structured-output instruction in ``prompt``, if any."""
    at = prompt.rfind(SCHEMA_MARKER)
    start = prompt.find("{", at) if at >= 0 else -1
    if start < 0:
        return None
    try:
        found, _ = json.JSONDecoder().raw_decode(prompt[start:])
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def reply_kind(asked: Asked) -> ReplyKind:
    """Which kind of reply ``asked`` wants, from its schema's keys (or, free, its prompt)."""
    schema = asked.schema
    if schema is None:
        words = asked.prompt
        return "review" if all(key in words for key in REVIEW_KEYS) else "prose"
    keys = set(resolve(schema, schema).get("properties", {}))
    if keys >= REFLECTION_KEYS:
        return "reflection"
    if keys >= REVIEW_KEYS:
        return "review"
    if keys >= META_KEYS:
        return "meta_review"
    return "schema"


def load_reviews(path: Path = FIXTURE) -> list[dict[str, Any]]:
    """The fixture's reviews, in ReviewForm field names."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["review"] for line in lines if line.strip()]


@dataclass
class GPT4oResponder:
    """Real GPT-4o reviews for review-shaped requests, schema instances for the rest.

    Reviews are handed out in turn (three reviewers get three different reviews); a
    reflection keeps the reviewer's previous review and says it is done.
    """

    reviews: list[dict[str, Any]] = field(default_factory=load_reviews)
    _turn: Iterator[int] = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._turn = itertools.count()

    def __call__(self, asked: Asked) -> str:
        """The reply text for ``asked``."""
        kind = reply_kind(asked)
        if kind == "review":
            return json.dumps(self.next_review())
        if kind == "reflection":
            return json.dumps(self.reflection(asked))
        if kind == "meta_review":
            return json.dumps(self.meta_review())
        if kind == "schema" and asked.schema is not None:
            return json.dumps(instance_of(asked.schema))
        return PROSE

    def next_review(self) -> dict[str, Any]:
        """The next stored review, round robin."""
        with self._lock:
            return dict(self.reviews[next(self._turn) % len(self.reviews)])

    def reflection(self, asked: Asked) -> dict[str, Any]:
        """Keep the review the model gave last turn (or a stored one) and stop reflecting."""
        review = previous_review(asked) or self.next_review()
        thought = (
            "The review already covers the main weaknesses and the questions the authors "
            "should answer; no further change is needed."
        )
        return {"thought": thought, "review": review, "done": True}

    def meta_review(self) -> dict[str, Any]:
        """An area chair's summary stitched from three stored reviews."""
        picked = [self.next_review() for _ in range(3)]
        overall = sorted(r["Overall"] for r in picked)
        return {
            "summary": picked[0]["Summary"],
            "strengths": [r["Strengths"][0] for r in picked],
            "weaknesses": [w for r in picked for w in r["Weaknesses"][:2]],
            "disagreements": [
                f"Overall scores range from {overall[0]} to {overall[-1]}: reviewers weigh "
                "the empirical evidence differently."
            ],
        }


def previous_review(asked: Asked) -> dict[str, Any] | None:
    """The review in the last assistant turn, if that turn holds one."""
    for role, text in reversed(asked.turns):
        if role != "assistant":
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) and set(data) >= REVIEW_KEYS else None
    return None


@dataclass
class ScriptedResponder:
    """A test's replies in order (text, dicts or pydantic models), then ``fallback``."""

    replies: list[str | dict[str, Any] | BaseModel] = field(default_factory=list)
    fallback: Responder = field(default_factory=GPT4oResponder)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __call__(self, asked: Asked) -> str:
        """The next scripted reply, or the fallback's once the script is used up."""
        with self._lock:
            reply = self.replies.pop(0) if self.replies else None
        if reply is None:
            return self.fallback(asked)
        if isinstance(reply, BaseModel):
            return reply.model_dump_json()
        return reply if isinstance(reply, str) else json.dumps(reply)


# --- schema instances --------------------------------------------------------------------


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a local ``$ref`` followed (``#/$defs/X``, or ``/$defs/X`` as litellm
    rewrites it in an Anthropic tool's input schema)."""
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def instance_of(schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "") -> Any:
    """A value that validates against ``schema``, readable where it is text.

    Follows ``$ref``/``$defs``, takes the first non-null ``anyOf``/``oneOf`` option, meets
    ``required``, length, item and numeric bounds, and prefers values that end loops
    (``done: true``, ``decision: "novel"``).
    """
    root = schema if root is None else root
    schema = resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return pick_enum(schema["enum"])
    options = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if options:
        usable = [o for o in options if resolve(o, root).get("type") != "null"] or options
        return instance_of(usable[0], root, name)
    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, root)
    if kind == "array":
        return _array(schema, root, name)
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return name.lower() in TRUE_FIELDS
    if kind == "null":
        return None
    return text_for(name, schema)


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        return "object" if "properties" in schema else "string"
    return str(kind)


def pick_enum(values: Sequence[Any]) -> Any:
    """A loop-ending value when offered, else the first."""
    for preferred in PREFERRED_ENUM_VALUES:
        if preferred in values:
            return preferred
    return values[0]


def _object(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    return {key: instance_of(sub, root, key) for key, sub in properties.items()}


def _array(schema: dict[str, Any], root: dict[str, Any], name: str) -> list[Any]:
    low = int(schema.get("minItems", 0))
    high = int(schema.get("maxItems", max(low, 1)))
    count = min(max(low, 1), high)
    items = schema.get("items", {"type": "string"})
    made = [instance_of(items, root, name) for _ in range(count)]
    # Distinct strings read better and survive uniqueItems.
    return [f"{v} ({i + 1})" if isinstance(v, str) and i else v for i, v in enumerate(made)]


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
    high = schema.get("maximum", schema.get("exclusiveMaximum", low + 10))
    if "exclusiveMinimum" in schema and "minimum" not in schema:
        low += 1 if integer else 0.5
    if "exclusiveMaximum" in schema and "maximum" not in schema:
        high -= 1 if integer else 0.5
    middle = (low + high) / 2
    return int(middle) if integer else float(middle)


def text_for(name: str, schema: dict[str, Any]) -> str:
    """Readable, LaTeX-safe text within the schema's length bounds."""
    described = str(schema.get("description", ""))
    if "snake_case" in described or name in ("Name", "name"):
        text = "adaptive_feature_scaling"
    else:
        label = name.replace("_", " ").strip().capitalize() or "Answer"
        text = f"{label}: {FILLER}."
    low = int(schema.get("minLength", 0))
    while len(text) < low:
        text = f"{text} {FILLER}."
    high = schema.get("maxLength")
    if high is None:
        return text
    return text[: int(high)].rstrip() or "x"[: int(high)]
