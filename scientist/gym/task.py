"""A template as a benchmark task: its ``task.json`` (which metric, which direction), its
``prompt.json`` text, and the arithmetic of "better" in the task's direction."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from scientist.experiments.models import GroupResult
from scientist.gym.errors import MetricError, TaskFileError
from scientist.gym.models import Direction, TaskSpec
from scientist.ideas.template import resolve_template

TASK_FILE = "task.json"
PROMPT_FILE = "prompt.json"
EXPERIMENT_FILE = "experiment.py"
TASK_EXAMPLE = (
    '{"name": "digits", "metric": ["digits_noisy", "means", "test_accuracy"], '
    '"direction": "higher", "description": "..."}'
)


class GymTask(BaseModel):
    """A benchmarkable template: its folder, its ``task.json`` and its task text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template_dir: Path
    spec: TaskSpec
    prompt: str

    @property
    def metric_label(self) -> str:
        """The metric's path as one dotted name, ``digits_noisy.means.test_accuracy``."""
        return ".".join(self.spec.metric)


def load_task(template: str | Path) -> GymTask:
    """The task of a template folder or shipped template name; a typed error when the
    template lacks ``experiment.py``, ``prompt.json`` or ``task.json``, or one is malformed."""
    folder = resolve_template(template)
    if not (folder / EXPERIMENT_FILE).is_file():
        raise TaskFileError(f"Template {folder} has no {EXPERIMENT_FILE}: nothing to run.")
    return GymTask(template_dir=folder, spec=read_spec(folder), prompt=_prompt_text(folder))


def read_spec(folder: Path) -> TaskSpec:
    """``folder/task.json`` validated."""
    path = folder / TASK_FILE
    if not path.is_file():
        raise TaskFileError(
            f"Template {folder.name} cannot be benchmarked: it has no {TASK_FILE}. Add "
            f"{path} naming the primary metric (a path into final_info.json) and whether "
            f"higher or lower is better, e.g. {TASK_EXAMPLE}"
        )
    try:
        return TaskSpec.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TaskFileError(f"{path} is not valid JSON ({exc}); fix the file.") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise TaskFileError(
            f"{path} is malformed ({problems}); it should read like {TASK_EXAMPLE}"
        ) from exc


def _prompt_text(folder: Path) -> str:
    path = folder / PROMPT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TaskFileError(f"{path} is missing or not valid JSON ({exc}); fix it.") from exc
    text = data.get("task_description") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise TaskFileError(f"{path} has no task_description text; add one.")
    return text.strip()


def metric_value(results: Mapping[str, GroupResult], spec: TaskSpec) -> float:
    """The number at ``spec.metric`` in a run's parsed ``final_info.json``."""
    node: object = {group: result.model_dump() for group, result in results.items()}
    for depth, key in enumerate(spec.metric):
        if not isinstance(node, dict) or key not in node:
            where = ".".join(spec.metric[:depth]) or "the top level"
            have = ", ".join(sorted(node)) if isinstance(node, dict) else type(node).__name__
            raise MetricError(
                f"final_info.json has no {key!r} under {where} (found: {have}); the task's "
                f"metric is {'.'.join(spec.metric)}, keep writing it."
            )
        node = node[key]
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        raise MetricError(f"final_info.json's {'.'.join(spec.metric)} is {node!r}, not a number.")
    return float(node)


def improvement(value: float, baseline: float, direction: Direction) -> float:
    """How much better ``value`` is than ``baseline`` (positive: better, in the task's
    direction): ``value - baseline`` when higher is better, ``baseline - value`` when lower."""
    return value - baseline if direction == "higher" else baseline - value


def best_of(values: Iterable[float | None], direction: Direction) -> float | None:
    """The best of the values that exist, in the task's direction; None when there are none."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return max(present) if direction == "higher" else min(present)
