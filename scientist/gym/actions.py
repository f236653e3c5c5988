"""The env's commands: one JSON object per step, ``{"command": NAME, ...arguments}``.

Parsing never raises on an agent's input: :func:`parse_action` returns the action or an
:class:`ActionError` whose message the environment shows the agent as its observation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from scientist.gym.errors import CommandError

EXAMPLE = '{"command": "open", "path": "experiment.py", "start": 1, "end": 40}'


class Usage(BaseModel):
    """Tokens and cost an agent spent on the model call that chose this action."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cost_usd: float = Field(0.0, ge=0)


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    usage: Usage | None = Field(None, description="What choosing this action cost the agent.")


class OpenAction(_Action):
    """Show a file's lines ``start``..``end`` (1-based, inclusive), numbered."""

    command: Literal["open", "view"]
    path: str = Field(min_length=1)
    start: int = Field(1, ge=1)
    end: int | None = Field(None, ge=1, description="Default: start + the view window - 1.")


class SearchAction(_Action):
    """Lines matching a Python regular expression, in one file or under a folder."""

    command: Literal["search"]
    pattern: str = Field(min_length=1)
    path: str = Field(".", min_length=1)


class EditAction(_Action):
    """Replace lines ``start``..``end`` (1-based, inclusive) with ``text`` ("" deletes)."""

    command: Literal["edit"]
    path: str = Field(min_length=1)
    start: int = Field(ge=1)
    end: int = Field(ge=1)
    text: str


class InsertAction(_Action):
    """Insert ``text`` after line ``line`` (0: at the top)."""

    command: Literal["insert"]
    path: str = Field(min_length=1)
    line: int = Field(ge=0)
    text: str


class CreateAction(_Action):
    """Create a file, or replace a whole file, with ``text``."""

    command: Literal["create"]
    path: str = Field(min_length=1)
    text: str


class PythonAction(_Action):
    """Run a script of the workspace (``path`` and ``args``) or inline ``code`` in the box."""

    command: Literal["python"]
    path: str | None = Field(None, min_length=1)
    args: list[str] = Field(default_factory=list)
    code: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> PythonAction:
        if (self.path is None) == (self.code is None):
            raise ValueError("give exactly one of path (a script in the workspace) or code")
        if self.code is not None and self.args:
            raise ValueError("args go with path, not with code")
        return self


class BashAction(_Action):
    """Run a shell command line in the box, in the workspace."""

    command: Literal["bash"]
    cmd: str = Field(min_length=1)


class ValidateAction(_Action):
    """Run the experiment as a round runs it and report the metric; the episode goes on."""

    command: Literal["validate"]


class SubmitAction(_Action):
    """Run the experiment a last time; its metric is the submission and the episode ends."""

    command: Literal["submit"]


Action = Annotated[
    OpenAction
    | SearchAction
    | EditAction
    | InsertAction
    | CreateAction
    | PythonAction
    | BashAction
    | ValidateAction
    | SubmitAction,
    Field(discriminator="command"),
]
_ACTION: TypeAdapter[Action] = TypeAdapter(Action)
COMMANDS = (
    "open",
    "search",
    "edit",
    "insert",
    "create",
    "python",
    "bash",
    "validate",
    "submit",
)


class ActionError(CommandError):
    """The action is not JSON, names no known command, or has bad arguments."""


def parse_action(raw: str | Mapping[str, Any], max_chars: int) -> Action:
    """The action in ``raw`` (a JSON object as text, or already a mapping)."""
    data: object = raw
    if isinstance(raw, str):
        if len(raw) > max_chars:
            raise ActionError(f"The action is {len(raw)} characters; the limit is {max_chars}.")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ActionError(
                f"The action is not valid JSON ({exc.msg} at line {exc.lineno} column "
                f"{exc.colno}). Send one JSON object, e.g. {EXAMPLE}"
            ) from exc
    if not isinstance(data, Mapping):
        raise ActionError(f"The action must be a JSON object, e.g. {EXAMPLE}")
    if data.get("command") not in (*COMMANDS, "view"):
        raise ActionError(
            f"Unknown command {data.get('command')!r}: the commands are {', '.join(COMMANDS)}."
        )
    try:
        return _ACTION.validate_python(dict(data))
    except ValidationError as exc:
        raise ActionError(f"Bad arguments for {data['command']}: {_problems(exc)}") from exc


def _problems(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"][1:])  # [0] is the command's tag
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)
