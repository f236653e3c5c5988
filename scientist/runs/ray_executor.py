"""Paper runs on a Ray cluster: ``scientist batch --executor ray`` and the service's run jobs.

A batch's runs are driven here, on the machine that started the batch: each run's own
stage (ideas, novelty checks) and its graph with its checkpoints stay on this machine, and
each of its idea pipelines (experiments, write-up, review) is one Ray task that reserves
the CPUs, GPUs and memory of ``cluster.*`` or of its template's ``resources.json``. The
template folder travels with the task (packed once per batch), so no node needs the
driver's paths. An idea task checkpoints in the idea's own ``checkpoints.sqlite``
(``scientist.runs.idea_task``):

- ``cluster.artefacts=shared``: runs_dir is a path every node mounts; the task works in the
  driver's idea folder. A retry after a worker or node died resumes from its checkpoints.
- ``transfer``: the task works in a scratch folder on its node (the run's ``ideas.json``
  and the idea's folder, sent with it), packs the idea folder as tar.gz bytes that travel
  back through Ray's object store, and the driver unpacks them into its run folder (the
  paths inside are rewritten to it). A retry on the same node resumes from the scratch
  folder; on another node (Ray may place a retry anywhere, and a dead node's scratch
  folder is gone) it starts over from the idea folder as it was sent.

A task whose worker process or node dies is retried ``cluster.max_retries`` times; a task
that fails for its own reasons is that idea's failure and is not retried (a template that
crashes in its experiments fails its own ideas, and the batch goes on). Each idea's calls
join its run's ledger when it ends, so ledgers, ``run.json`` totals and costs come out as
with the local executor. Ctrl-C cancels every idea task in flight (``ray.cancel``) and
marks each run interrupted: ``scientist resume RUN`` continues it, here, each idea from its
own checkpoints. Progress events travel from the tasks to the driver through a small
actor; each event and idea outcome names its node.
"""

from __future__ import annotations

import contextvars
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict

from core.runstore import RunPaths, safe_name
from core.settings import ClusterSettings, Settings
from scientist.ideas.models import Idea
from scientist.pipeline.deps import Copilot, PipelineDeps
from scientist.pipeline.models import IdeaOutcome, PipelineEvent, RunManifest
from scientist.runs.batch import BatchResult, BatchTask, TaskFn
from scientist.runs.cluster import (
    ClusterError,
    RunLostError,
    TaskResources,
    bring_home,
    bring_idea_home,
    pack,
    pack_parts,
    portable_task,
    task_resources,
)
from scientist.runs.idea_task import IdeaFn, job_for, run_idea_job
from scientist.runs.ray_node import (
    EventSinkActor,
    IdeaReply,
    JobRunner,
    TaskPlan,
    run_idea_task,
    run_job_task,
)
from scientist.runs.run import RunInterrupted, run_in_folder
from scientist.runs.wiring import IDEA_RUNNER, TASK_EVENTS


class TaskEvent(BaseModel):
    """A pipeline event of one run of the batch, with where that run is."""

    model_config = ConfigDict(extra="forbid")

    template: str
    run_dir: str
    node: str
    event: PipelineEvent


# ----------------------------------------------------------------------------- joining

_CONNECTING = threading.Lock()


def connect(cluster: ClusterSettings, runtime_env: dict[str, Any] | None = None) -> None:
    """Join ``cluster.address`` or start a private Ray instance here; once per process.
    Usage statistics stay off (no network); the workers' output stays in Ray's own log
    files, so ``--json`` keeps stdout to its one document."""
    with _CONNECTING:  # a service worker's job threads may all start at once
        if not ray.is_initialized():
            _init(cluster, runtime_env)


def _init(cluster: ClusterSettings, runtime_env: dict[str, Any] | None) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    common: dict[str, Any] = {
        "runtime_env": runtime_env,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    try:
        if cluster.address is None:
            ray.init(num_cpus=cluster.local_cpus, include_dashboard=False, **common)
        else:
            ray.init(address=cluster.address, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = cluster.address or "a private instance"
        raise ClusterError(
            f"Could not join the Ray cluster at {where} ({exc}). Start it with `ray start "
            "--head` (and `ray start --address HEAD:PORT` on the other machines), or fix "
            "cluster.address / --ray-address."
        ) from exc


def task_options(resources: TaskResources, max_retries: int) -> dict[str, Any]:
    """Ray options of one run's task: what it reserves, and retries for lost workers only."""
    options: dict[str, Any] = {
        "num_cpus": resources.num_cpus,
        "num_gpus": resources.num_gpus,
        "max_retries": max_retries,
        "retry_exceptions": False,
    }
    if resources.memory_mb is not None:
        options["memory"] = resources.memory_mb * 2**20
    if resources.resources:
        options["resources"] = dict(resources.resources)
    return options


# ----------------------------------------------------------------------------- the driver

STOP_WAIT_S = 60.0  # how long a stopped batch waits for its runs to record the stop
DRIVER = "driver"  # the node label of a run's own stage (its ideas), run on the driver


@dataclass
class Flight:
    """An idea task on its way: which run it belongs to, and its Ray reference."""

    template: str
    run_dir: str
    ref: Any = None


@dataclass
class _Shared:
    """What the driver's threads share with the loop that yields results: the idea tasks
    in flight (so Ctrl-C can cancel them), events to forward, finished results."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    flights: dict[int, Flight] = field(default_factory=dict)
    labels: dict[int, Flight] = field(default_factory=dict)  # every task's, for late events
    events: queue.Queue[TaskEvent] = field(default_factory=queue.Queue)
    results: queue.Queue[BatchResult] = field(default_factory=queue.Queue)
    stopping: threading.Event = field(default_factory=threading.Event)
    next_key: int = 0
    templates: dict[str, bytes] = field(default_factory=dict)

    def add(self, flight: Flight) -> int:
        with self.lock:
            self.next_key += 1
            self.flights[self.next_key] = self.labels[self.next_key] = flight
            return self.next_key

    def refs(self) -> list[Any]:
        with self.lock:
            return [f.ref for f in self.flights.values() if f.ref is not None]


class RayExecutor:
    """The batch ``Executor`` on Ray: each run's own stage (ideas) on this machine, each of
    its idea pipelines one Ray task; results as runs finish."""

    def __init__(
        self,
        cluster: ClusterSettings,
        *,
        on_event: Callable[[TaskEvent], None] | None = None,
        runtime_env: dict[str, Any] | None = None,
        poll_s: float = 0.5,
        idea_fn: IdeaFn = run_idea_job,
    ) -> None:
        self.cluster = cluster
        self.on_event = on_event
        self.runtime_env = runtime_env
        self.poll_s = poll_s
        self.idea_fn = idea_fn  # what runs on the node; tests pass one on the pipeline fakes
        self._sink: Any = None
        self._shared = _Shared()
        self._unfinished = 0

    def run(self, fn: TaskFn, tasks: Iterable[BatchTask]) -> Iterator[BatchResult]:
        """Drive every run here (one thread each) with its ideas sent to the cluster; yield
        results in completion order; Ctrl-C cancels every idea task in flight."""
        connect(self.cluster, self.runtime_env)
        self._shared = _Shared()
        self._sink = EventSinkActor.remote() if self.on_event else None
        drivers = [
            threading.Thread(
                target=self._drive, args=(fn, portable_task(task)), daemon=True, name="run"
            )
            for task in tasks
        ]
        for thread in drivers:
            thread.start()
        self._unfinished = len(drivers)
        try:
            yield from self._gather()
        except KeyboardInterrupt:
            yield from self._interrupt()
        finally:
            self._cancel_flights()  # the consumer stopped early (its own Ctrl-C, an error)
            _join(drivers, STOP_WAIT_S)  # their runs record how they stopped
            if self._sink is not None:
                ray.kill(self._sink)

    def _drive(self, fn: TaskFn, task: BatchTask) -> None:
        """One run on the driver: ``fn(task)`` with its ideas sent out as Ray tasks."""
        runner = RayIdeaRunner(self, task)
        label = task.template

        def local_event(event: PipelineEvent) -> None:
            self._shared.events.put(TaskEvent(template=label, run_dir="", node=DRIVER, event=event))

        context = contextvars.copy_context()
        context.run(IDEA_RUNNER.set, runner)
        context.run(TASK_EVENTS.set, local_event)
        start = time.monotonic()
        try:
            result = context.run(fn, task)
        except BaseException as exc:  # a driver thread never dies silently
            reason = f"{type(exc).__name__}: {exc}"
            result = BatchResult(
                task=task, status="failed", reason=reason, seconds=time.monotonic() - start
            )
        nodes = sorted({o.node for o in result.ideas if o.node})
        self._shared.results.put(result.model_copy(update={"node": ", ".join(nodes) or None}))

    @property
    def max_retries(self) -> int:
        """Retries of a task whose worker or node died."""
        return self.cluster.max_retries

    def _gather(self) -> Iterator[BatchResult]:
        """Each run's result as its driver thread ends; events forwarded meanwhile."""
        while self._unfinished > 0:
            try:
                result = self._shared.results.get(timeout=self.poll_s)
            except queue.Empty:
                self._forward_events()
                continue
            self._forward_events()
            self._unfinished -= 1
            yield result
        self._forward_events()

    def _forward_events(self) -> None:
        if self.on_event is None:
            return
        while not self._shared.events.empty():
            self.on_event(self._shared.events.get_nowait())
        if self._sink is None:
            return
        with self._shared.lock:
            flights = dict(self._shared.labels)
        for key, node, data in ray.get(self._sink.take.remote()):
            flight = flights.get(key)
            event = PipelineEvent.model_validate(data)
            self.on_event(
                TaskEvent(
                    template=flight.template if flight else f"task {key}",
                    run_dir=flight.run_dir if flight else "",
                    node=node,
                    event=event,
                )
            )

    def _interrupt(self) -> Iterator[BatchResult]:
        """Ctrl-C: cancel every idea task in flight; each run then stops at its idea tasks
        and is marked interrupted (a run still in its ideas stage stops when that ends; a
        second Ctrl-C stops waiting, and its folder resumes from its checkpoints)."""
        self._cancel_flights()
        yield from self._gather()

    def _cancel_flights(self) -> None:
        self._shared.stopping.set()
        refs = self._shared.refs()
        for ref in refs:
            ray.cancel(ref, force=True)
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=60)

    # the idea runner's side

    def template_archive(self, path: Path) -> bytes:
        """The template folder as bytes for the nodes (packed once per batch)."""
        key = str(path)
        with self._shared.lock:
            archive = self._shared.templates.get(key)
        if archive is None:
            archive = pack(path)
            with self._shared.lock:
                self._shared.templates[key] = archive
        return archive


class RayIdeaRunner:
    """Sends each idea pipeline of one run to the cluster as a Ray task and waits for it
    (the run's graph waits on several at once, ``cluster.ideas_in_flight``)."""

    def __init__(self, executor: RayExecutor, task: BatchTask) -> None:
        self.executor = executor
        self.task = task

    @property
    def parallel(self) -> int:
        """Ideas of one run in flight at once."""
        return self.executor.cluster.ideas_in_flight

    def __call__(self, idea: Idea, deps: PipelineDeps) -> IdeaOutcome:
        """Run ``idea``'s pipeline as a Ray task; its folder ends up in ``deps.run``."""
        shared, cluster = self.executor._shared, self.executor.cluster
        run = deps.run
        if shared.stopping.is_set():
            raise RunInterrupted(_interrupted_hint(run))
        options = task_options(
            task_resources(cluster, str(deps.template.path)), cluster.max_retries
        )
        idea_dir = safe_name(idea.Name)
        transfer = cluster.artefacts == "transfer"
        seed = pack_parts(run.root, ["ideas.json", idea_dir]) if transfer else None
        plan = TaskPlan(cluster.artefacts, cluster.scratch_dir, cluster.embedded_per_node)
        flight = Flight(template=self.task.template, run_dir=str(run.root))
        key = shared.add(flight)
        template = self.executor.template_archive(deps.template.path)
        job = job_for(idea, deps)
        try:
            flight.ref = run_idea_task.options(**options).remote(
                self.executor.idea_fn, job, plan, seed, template, self.executor._sink, key
            )
            if shared.stopping.is_set():
                ray.cancel(flight.ref, force=True)
            reply: IdeaReply = ray.get(flight.ref)
        except ray.exceptions.RayError as exc:
            # Cancelled by Ctrl-C: a force-cancelled task may also surface as its worker's
            # death, so any error while the batch is stopping is the run's interruption.
            if shared.stopping.is_set() or isinstance(exc, ray.exceptions.TaskCancelledError):
                raise RunInterrupted(_interrupted_hint(run)) from exc
            if isinstance(exc, ray.exceptions.RayTaskError):  # the task raised: its failure
                return _failed_idea(idea, run, _cause(exc))
            # The worker or node died more often than the retries allow.
            reason = f"{_cause(exc)} (after {cluster.max_retries} retries); {_resume_hint(run)}"
            return _failed_idea(idea, run, reason)
        finally:
            with shared.lock:
                shared.flights.pop(key, None)
        if reply.archive is None or reply.work_root is None:
            return reply.outcome
        bring_idea_home(reply.archive, reply.work_root, run, idea_dir)
        moved = reply.outcome.model_dump_json().replace(reply.work_root, str(run.root))
        return IdeaOutcome.model_validate_json(moved)


def _join(threads: list[threading.Thread], seconds: float) -> None:
    """Wait up to ``seconds`` in all for ``threads`` to end (a run still in its ideas
    stage may take longer: it stops at its next idea task, and resumes from its folder)."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _interrupted_hint(run: RunPaths) -> str:
    return f"interrupted; {_resume_hint(run)}"


def _failed_idea(idea: Idea, run: RunPaths, reason: str) -> IdeaOutcome:
    folder = str(run.idea(idea.Name).root)
    return IdeaOutcome(
        name=idea.Name, title=idea.Title, status="failed", reason=reason, folder=folder
    )


def _cause(exc: Exception) -> str:
    """What went wrong in a task, without Ray's wrapping."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause
        if cause is not None:
            return f"{type(cause).__name__}: {cause}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"


def _resume_hint(run: RunPaths) -> str:
    return f"`scientist resume {run.root}` continues it"


# ----------------------------------------------------------------------------- the service


class RayRunLauncher:
    """The service's run jobs on Ray (``cluster.service_runs``): the job's worker process
    submits one task and follows it; the job stays ``running`` while the task is queued or
    runs (its progress says which, and on which node), is done or failed with the task,
    and cancelling the job cancels the task. Review jobs stay in the local workers."""

    def __init__(
        self,
        cluster: ClusterSettings,
        *,
        runtime_env: dict[str, Any] | None = None,
        poll_s: float = 0.5,
        runner: JobRunner = run_in_folder,
    ) -> None:
        self.cluster = cluster
        self.runtime_env = runtime_env
        self.poll_s = poll_s
        self.runner = runner  # what runs on the node; tests pass one on the pipeline fakes

    def __call__(
        self,
        settings: Settings,
        template: str,
        run_paths: RunPaths,
        *,
        on_event: Callable[[Any], None] | None = None,
        copilot: Copilot | None = None,
    ) -> RunManifest:
        """Run (or resume) the job's pipeline on the cluster; its folder ends up here. A
        co-pilot run cannot go: its pauses wait for answers in the job's own worker."""
        if copilot is not None:
            raise ClusterError(
                "A co-pilot run cannot run on the Ray cluster (cluster.service_runs): its "
                "pauses wait in the worker. Submit it without copilot, or run the service "
                "with cluster.service_runs=false."
            )
        connect(self.cluster, self.runtime_env)
        options = task_options(task_resources(self.cluster, template), self.cluster.max_retries)
        seed = pack(run_paths.root) if self.cluster.artefacts == "transfer" else None
        plan = TaskPlan(
            self.cluster.artefacts, self.cluster.scratch_dir, self.cluster.embedded_per_node
        )
        sink: Any = EventSinkActor.remote() if on_event else None
        ref = run_job_task.options(**options).remote(
            self.runner, settings, template, str(run_paths.root), plan, seed, sink
        )
        try:
            manifest, archive, work_root = self._follow(ref, sink, on_event)
        finally:
            if sink is not None:
                ray.kill(sink)
        if archive is not None and work_root is not None:
            bring_home(archive, work_root, run_paths)
            return RunManifest.model_validate_json(run_paths.run_json.read_text("utf-8"))
        return manifest

    def _follow(
        self, ref: Any, sink: Any, on_event: Callable[[Any], None] | None
    ) -> tuple[RunManifest, bytes | None, str | None]:
        """Wait for the task, passing its events on; any error here (a cancelled job's
        progress report raises) cancels it."""
        try:
            if on_event is not None:
                on_event({"stage": "queued", "status": "on the Ray cluster"})
            while not ray.wait([ref], timeout=self.poll_s)[0]:
                _pass_on(sink, on_event)
            _pass_on(sink, on_event)
            result: tuple[RunManifest, bytes | None, str | None] = ray.get(ref)
            return result
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, Exception):
                raise exc.cause from None  # the pipeline's own error, as a local run raises it
            raise
        except ray.exceptions.RayError as exc:
            raise RunLostError(
                f"the run's Ray task was lost after {self.cluster.max_retries} retries "
                f"({_cause(exc)}); the job goes back to the queue if attempts remain"
            ) from exc
        except BaseException:
            ray.cancel(ref, force=True)
            raise


def _pass_on(sink: Any, on_event: Callable[[Any], None] | None) -> None:
    if sink is None or on_event is None:
        return
    for _, _, data in ray.get(sink.take.remote()):
        on_event(data)
