"""What runs on a Ray node: one idea pipeline of a batch's run or one service run job, in
the driver's folder (shared storage) or in a scratch folder packed for the trip home; the
node's one embedded model server; the sink that carries progress events to the driver.
``scientist.runs.ray_executor`` submits these.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from core.runstore import RunPaths, safe_name
from core.settings import LocalModelSettings, Settings
from gateway.local import shared_server, use_remote_server
from scientist.pipeline.models import IdeaOutcome, PipelineEvent, RunManifest
from scientist.runs.cluster import idea_scratch, pack, scratch_folder, template_on_node, unpack
from scientist.runs.idea_task import IdeaFn, IdeaJob
from scientist.runs.wiring import TASK_EVENTS

NAMESPACE = "autoscholar"


@dataclass(frozen=True)
class TaskPlan:
    """How a task treats its run folder on the node (sent with the task)."""

    artefacts: Literal["shared", "transfer"]
    scratch_dir: Path | None
    embedded_per_node: bool


@dataclass
class IdeaReply:
    """What an idea task sends back: the idea's outcome, where it ran and, in transfer
    mode, its idea folder packed (and the node's run folder, to rewrite paths)."""

    outcome: IdeaOutcome
    node: str
    archive: bytes | None = None
    work_root: str | None = None


def node_label() -> str:
    """This worker's node, as shown in results and the live table: address and id."""
    node_id = ray.get_runtime_context().get_node_id()
    return f"{ray.util.get_node_ip_address()}/{node_id[:8]}"


class NodeModel:
    """The embedded model server of one node: started by its first user, then shared by
    every task on the node (one llama.cpp process per node, not one per worker)."""

    def base_url(self, settings: LocalModelSettings, data_dir: str) -> str:
        """The server's URL, starting it if it is not running."""
        return shared_server(settings, Path(data_dir)).base_url()

    def pid(self, settings: LocalModelSettings, data_dir: str) -> int | None:
        """The server's process id while it runs."""
        return shared_server(settings, Path(data_dir)).pid


# Ray pickles a remote function or actor class by value unless the module holds the plain
# one under its own name: the plain definitions stay importable, their remote forms are
# bound to other names.
NodeModelActor = ray.remote(num_cpus=0)(NodeModel)


@functools.cache
def node_model(node_id: str) -> Any:
    """The node's ``NodeModel`` actor (detached: it outlives the batch that started it)."""
    return NodeModelActor.options(
        name=f"autoscholar-model-{node_id}",
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        max_concurrency=32,  # every task of the node asks for the URL at once
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote()


def share_node_model(settings: Settings) -> None:
    """Point this worker's embedded model at its node's one server (asked for, and the
    actor made, only when a call needs the embedded model)."""
    node_id = ray.get_runtime_context().get_node_id()
    local, data_dir = settings.local, str(settings.data_dir)

    def resolve() -> str:
        url: str = ray.get(node_model(node_id).base_url.remote(local, data_dir))
        return url

    use_remote_server(local, settings.data_dir, resolve)


class EventSink:
    """Collects the tasks' progress events until the driver takes them."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str, dict[str, Any]]] = []

    def put(self, key: int, node: str, event: dict[str, Any]) -> None:
        """One event of task ``key``."""
        self.items.append((key, node, event))

    def take(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Every event since the last take."""
        items, self.items = self.items, []
        return items

    def sync(self) -> None:
        """Nothing; a task waits for it, so its own earlier events are in before it ends
        (one caller's calls to an actor run in order)."""


EventSinkActor = ray.remote(num_cpus=0)(EventSink)


def _flush(sink: Any) -> None:
    if sink is not None:
        ray.get(sink.sync.remote())


def _forwarder(sink: Any, key: int, node: str) -> Callable[[PipelineEvent], None]:
    def forward(event: PipelineEvent) -> None:
        sink.put.remote(key, node, event.model_dump(mode="json"))

    return forward


def _on_node(
    run_dir: str, plan: TaskPlan, seed: bytes | None, settings: Settings
) -> tuple[str, Path | None]:
    """The run folder a service job works in here, and its scratch folder in transfer mode
    (made from ``seed`` unless an earlier attempt on this node left its checkpoints there)."""
    if plan.embedded_per_node:
        share_node_model(settings)
    if plan.artefacts != "transfer":
        return run_dir, None
    work = scratch_folder(plan.scratch_dir, run_dir)
    if not (work / "checkpoints.sqlite").is_file() or not (work / "run.json").is_file():
        shutil.rmtree(work, ignore_errors=True)
        unpack(seed or b"", work)
    return str(work), work


def _idea_folder_on_node(job: IdeaJob, plan: TaskPlan, seed: bytes | None) -> Path | None:
    """Transfer mode: the node's run folder for this idea (``ideas.json`` and the idea's
    folder, from ``seed`` unless an earlier attempt here left its checkpoints); shared: None."""
    if plan.artefacts != "transfer":
        return None
    idea_dir = safe_name(job.idea.Name)
    work = idea_scratch(plan.scratch_dir, job.run_dir, idea_dir)
    if not (work / idea_dir / "checkpoints.sqlite").is_file():
        shutil.rmtree(work, ignore_errors=True)
        unpack(seed or b"", work)
    return work


def idea_task(
    fn: IdeaFn,
    job: IdeaJob,
    plan: TaskPlan,
    seed: bytes | None,
    template: bytes,
    sink: Any,
    key: int,
) -> IdeaReply:
    """One idea's pipeline on a worker: the template unpacked here, the idea's folder in the
    driver's run folder (shared) or a scratch copy packed for the trip home (transfer)."""
    node = node_label()
    if plan.embedded_per_node:
        share_node_model(job.settings)
    template_dir = template_on_node(plan.scratch_dir, template, Path(job.template).name)
    work = _idea_folder_on_node(job, plan, seed)
    local = job.model_copy(
        update={"template": str(template_dir), "run_dir": str(work or job.run_dir)}
    )
    token = TASK_EVENTS.set(_forwarder(sink, key, node) if sink is not None else None)
    try:
        outcome = fn(local).model_copy(update={"node": node})
    finally:
        TASK_EVENTS.reset(token)
        _flush(sink)
    if work is None:
        return IdeaReply(outcome=outcome, node=node)
    archive = pack(work / safe_name(job.idea.Name))
    shutil.rmtree(work, ignore_errors=True)
    return IdeaReply(outcome=outcome, node=node, archive=archive, work_root=str(work))


run_idea_task = ray.remote(idea_task)


JobRunner = Callable[..., RunManifest]


def job_task(
    runner: JobRunner,
    settings: Settings,
    template: str,
    run_dir: str,
    plan: TaskPlan,
    seed: bytes | None,
    sink: Any,
) -> tuple[RunManifest, bytes | None, str | None]:
    """A service run job on a worker: ``runner`` (``run_in_folder``: start the run, or
    resume it from its checkpoints) in the job's folder or its scratch copy."""
    node = node_label()
    folder, work = _on_node(run_dir, plan, seed, settings)
    if sink is not None:
        sink.put.remote(0, node, {"stage": "placed", "status": "running", "node": node})
    forward = _forwarder(sink, 0, node) if sink is not None else None
    try:
        manifest: RunManifest = runner(settings, template, RunPaths(Path(folder)), on_event=forward)
    finally:
        _flush(sink)
    if work is None:
        return manifest, None, None
    archive = pack(work)
    shutil.rmtree(work, ignore_errors=True)
    return manifest, archive, str(work)


run_job_task = ray.remote(job_task)
