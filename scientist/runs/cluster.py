"""What a cluster run needs besides Ray: the run folder made before a task leaves, a
template's resource needs, and a run folder packed on a node and unpacked at home.

Nothing here imports Ray (``scientist.runs.ray_executor`` does), so it is tested and
used without the ``cluster`` extra.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.runstore import RunPaths
from core.settings import ClusterSettings
from gateway.errors import EXIT_CONFIG, AutoscholarError
from scientist.errors import TemplateError
from scientist.ideas.template import read_json, resolve_template
from scientist.runs.batch import BatchTask

RESOURCES_FILE = "resources.json"
# Files of a run folder that may name the folder itself (run.json, ideas, reviews, notes):
# rewritten when a folder made on a node is unpacked elsewhere.
TEXT_SUFFIXES = frozenset({".json", ".jsonl", ".md", ".html", ".txt", ".tex", ".bib"})
MAX_REWRITE_BYTES = 20 * 2**20


class ClusterError(AutoscholarError):
    """The Ray cluster cannot be reached or lost a run beyond its retries."""

    exit_code = EXIT_CONFIG


class RunLostError(AutoscholarError):
    """A run's worker process or node died more often than ``cluster.max_retries``."""

    retryable = True


class TemplateResources(BaseModel):
    """``resources.json`` in a template folder: what one paper run of it needs on a node
    (its experiments' needs: a GPU, more CPUs or memory). Each field given wins over the
    ``cluster`` settings; a custom resource pins the run to nodes that offer it."""

    model_config = ConfigDict(extra="forbid")

    num_cpus: float | None = Field(None, gt=0, description="CPUs per run.")
    num_gpus: float | None = Field(None, ge=0, description="GPUs per run (1: one whole GPU).")
    memory_mb: int | None = Field(None, ge=1, description="Memory reserved per run.")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources a node must offer, e.g. {'a100': 1} for nodes "
        "started with `ray start --resources '{\"a100\": 1}'`.",
    )


class TaskResources(BaseModel):
    """What one Ray task reserves: the cluster settings, overridden by the template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_cpus: float
    num_gpus: float
    memory_mb: int | None
    resources: dict[str, float] = Field(default_factory=dict)


def template_resources(template: str) -> TemplateResources:
    """The template's ``resources.json``, or no needs of its own when it has none."""
    path = resolve_template(template) / RESOURCES_FILE
    if not path.is_file():
        return TemplateResources()
    try:
        return TemplateResources.model_validate(read_json(path))
    except ValidationError as exc:
        raise TemplateError(
            f"{path} is not valid: {exc.errors()[0]['msg']} at "
            f"{'.'.join(map(str, exc.errors()[0]['loc']))}; allowed fields: num_cpus, "
            "num_gpus, memory_mb, resources."
        ) from exc


def task_resources(cluster: ClusterSettings, template: str) -> TaskResources:
    """The resources one run of ``template`` reserves."""
    own = template_resources(template)
    return TaskResources(
        num_cpus=own.num_cpus if own.num_cpus is not None else cluster.num_cpus,
        num_gpus=own.num_gpus if own.num_gpus is not None else cluster.num_gpus,
        memory_mb=own.memory_mb if own.memory_mb is not None else cluster.memory_mb,
        resources=own.resources,
    )


def portable_task(task: BatchTask) -> BatchTask:
    """The task with a template folder given as a relative path made absolute (a node's
    worker does not share this process's working directory)."""
    path = Path(task.template)
    if path.is_dir():
        return task.model_copy(update={"template": str(path.resolve())})
    return task


def scratch_folder(base: Path | None, run_root: str) -> Path:
    """Where a transfer-mode task works on its node: one folder per run of the driver (so a
    retry on the same node finds the checkpoints its first attempt left)."""
    root = base or Path(tempfile.gettempdir()) / "autoscholar-runs"
    tag = hashlib.sha256(run_root.encode()).hexdigest()[:12]
    return root / tag / Path(run_root).name


def idea_scratch(base: Path | None, run_root: str, idea_dir: str) -> Path:
    """Where a transfer-mode idea task works on its node: a run folder of its own (the
    run's ``ideas.json`` and this idea's folder), found again by a retry on the same node."""
    root = base or Path(tempfile.gettempdir()) / "autoscholar-runs"
    tag = hashlib.sha256(f"{run_root}\0{idea_dir}".encode()).hexdigest()[:12]
    return root / tag / Path(run_root).name


def pack_parts(root: Path, names: list[str]) -> bytes:
    """Those of ``names`` (files or folders in ``root``) that exist, as tar.gz bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for name in names:
            if (root / name).exists():
                tar.add(root / name, arcname=name)
    return buffer.getvalue()


def template_on_node(base: Path | None, archive: bytes, name: str) -> Path:
    """The template folder a task runs, unpacked on its node from the bytes the driver sent
    (once per node and template version): no node needs the driver's paths."""
    root = base or Path(tempfile.gettempdir()) / "autoscholar-runs"
    digest = hashlib.sha256(archive).hexdigest()[:16]
    target = root / "templates" / digest / name
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=_made(root / "templates")))
    unpack(archive, staging / name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # another task on this node unpacked it first
        (staging / name).rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def bring_idea_home(archive: bytes, work_root: str, run: RunPaths, idea_dir: str) -> None:
    """Unpack an idea folder a node sent back into the run folder here, naming this folder."""
    target = run.root / idea_dir
    unpack(archive, target)
    rewrite_paths(target, work_root, str(run.root))


def pack(folder: Path) -> bytes:
    """The folder as tar.gz bytes (paths relative to it)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def unpack(archive: bytes, folder: Path) -> None:
    """Extract ``pack``'s bytes into ``folder``; links or paths that leave it are refused
    (tarfile's ``data`` filter)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")


def rewrite_paths(folder: Path, old: str, new: str) -> None:
    """Replace the path ``old`` by ``new`` in the folder's text files: a run made in a
    node's scratch folder names that folder in ``run.json``, the reviews and the notes."""
    if old == new:
        return
    for path in folder.rglob("*"):
        if path.suffix not in TEXT_SUFFIXES or path.is_symlink() or not path.is_file():
            continue
        if path.stat().st_size > MAX_REWRITE_BYTES:
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        if old in text:
            path.write_text(text.replace(old, new), encoding="utf-8", errors="surrogateescape")


def bring_home(archive: bytes, work_root: str, run: RunPaths) -> None:
    """Unpack a folder a node sent back into the run folder here, naming this folder."""
    unpack(archive, run.root)
    rewrite_paths(run.root, work_root, str(run.root))
