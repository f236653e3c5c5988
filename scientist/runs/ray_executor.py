"""Paper runs on a Ray cluster: ``scientist batch --executor ray`` and the service's run jobs.

Each run of a batch (a ``BatchTask``) is one Ray task that reserves the CPUs, GPUs and
memory of ``cluster.*`` or of its template's ``resources.json``. The folder of each run is
made here, on the driver, before its task is submitted (``run.json`` and empty
checkpoints), and the task continues that folder with ``resume_pipeline``:

- ``cluster.artefacts=shared``: runs_dir is a path every node mounts; the task works in the
  driver's folder. A retry after a worker or node died resumes from its checkpoints.
- ``transfer``: the task works in a scratch folder on its node, packs it as tar.gz bytes
  that travel back through Ray's object store, and the driver unpacks them into its folder
  (the paths inside are rewritten to it). A retry on the same node resumes from the
  scratch folder; on another node (Ray may place a retry anywhere, and a dead node's
  scratch folder is gone) it starts the run over from the folder as it was submitted.

A task whose worker process or node dies is retried ``cluster.max_retries`` times; a task
that fails for its own reasons (a template that crashes) is that run's failure and is not
retried. Ctrl-C cancels every unfinished task (``ray.cancel``) and marks its ``run.json``
interrupted: ``scientist resume RUN`` continues it. Progress events travel from the tasks
to the driver through a small actor; each result and event names the node.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict

from core.runstore import RunPaths
from core.settings import ClusterSettings, Settings
from gateway.errors import AutoscholarError
from scientist.pipeline.models import PipelineEvent, RunManifest
from scientist.runs.batch import BatchResult, BatchTask, TaskFn
from scientist.runs.cluster import (
    ClusterError,
    RunLostError,
    TaskResources,
    bring_home,
    manifest_ideas,
    mark_interrupted,
    pack,
    portable_task,
    prepare_run,
    task_resources,
)
from scientist.runs.ray_node import (
    EventSinkActor,
    JobRunner,
    TaskPlan,
    TaskReply,
    run_batch_task,
    run_job_task,
)
from scientist.runs.run import run_in_folder


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


@dataclass
class Submitted:
    """A task on its way: what it runs and the folder it fills."""

    key: int
    task: BatchTask
    run: RunPaths
    started: float = field(default_factory=time.monotonic)


class RayExecutor:
    """The batch ``Executor`` on Ray: one task per run, results as they finish."""

    def __init__(
        self,
        cluster: ClusterSettings,
        *,
        on_event: Callable[[TaskEvent], None] | None = None,
        runtime_env: dict[str, Any] | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.cluster = cluster
        self.on_event = on_event
        self.runtime_env = runtime_env
        self.poll_s = poll_s
        self._sink: Any = None
        self._pending: dict[Any, Submitted] = {}

    def run(self, fn: TaskFn, tasks: Iterable[BatchTask]) -> Iterator[BatchResult]:
        """Submit every task; yield results in completion order; Ctrl-C cancels the rest."""
        connect(self.cluster, self.runtime_env)
        self._sink = EventSinkActor.remote() if self.on_event else None
        try:
            for key, task in enumerate(tasks):
                failed = self._submit(fn, portable_task(task), key)
                if failed is not None:
                    yield failed
            yield from self._gather()
        except KeyboardInterrupt:
            yield from self._interrupt()
        finally:
            self._cancel_all()  # the consumer stopped early (its own Ctrl-C, an error)
            if self._sink is not None:
                ray.kill(self._sink)

    def _submit(self, fn: TaskFn, task: BatchTask, key: int) -> BatchResult | None:
        """Make the run's folder and submit its task; a task that cannot start is failed."""
        start = time.monotonic()
        try:
            options = task_options(task_resources(self.cluster, task.template), self.max_retries)
            run = prepare_run(task)
        except AutoscholarError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return BatchResult(task=task, status="failed", reason=reason, seconds=0.0)
        task = task.model_copy(update={"run_dir": str(run.root)})
        transfer = self.cluster.artefacts == "transfer"
        seed = pack(run.root) if transfer else None
        plan = TaskPlan(self.cluster.artefacts, self.cluster.scratch_dir, self.embedded)
        ref = run_batch_task.options(**options).remote(fn, task, plan, seed, self._sink, key)
        self._pending[ref] = Submitted(key, task, run, start)
        return None

    @property
    def max_retries(self) -> int:
        """Retries of a task whose worker or node died."""
        return self.cluster.max_retries

    @property
    def embedded(self) -> bool:
        """Whether the tasks share one embedded model server per node."""
        return self.cluster.embedded_per_node

    def _gather(self) -> Iterator[BatchResult]:
        while self._pending:
            done, _ = ray.wait(list(self._pending), num_returns=1, timeout=self.poll_s)
            self._forward_events()
            for ref in done:
                yield self._finish(ref, self._pending.pop(ref))
        self._forward_events()

    def _forward_events(self) -> None:
        if self._sink is None or self.on_event is None:
            return
        keyed = {s.key: s for s in self._pending.values()}
        for key, node, data in ray.get(self._sink.take.remote()):
            submitted = keyed.get(key)
            template = submitted.task.template if submitted else f"task {key}"
            run_dir = str(submitted.run.root) if submitted else ""
            event = PipelineEvent.model_validate(data)
            self.on_event(TaskEvent(template=template, run_dir=run_dir, node=node, event=event))

    def _finish(self, ref: Any, submitted: Submitted) -> BatchResult:
        """The task's result, its folder brought home; a lost or failed task as a failure."""
        try:
            reply: TaskReply = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # fn itself raised: this run's failure
            return self._failed(submitted, _cause(exc))
        except ray.exceptions.TaskCancelledError:  # by Ctrl-C
            return self._interrupted(submitted)
        except ray.exceptions.RayError as exc:  # the worker or node died too often
            reason = f"{_cause(exc)} (after {self.max_retries} retries)"
            return self._failed(submitted, f"{reason}; {_resume_hint(submitted.run)}")
        if reply.archive is not None and reply.work_root is not None:
            bring_home(reply.archive, reply.work_root, submitted.run)
            rewritten = reply.result.model_dump_json().replace(
                reply.work_root, str(submitted.run.root)
            )
            return BatchResult.model_validate_json(rewritten)
        return reply.result

    def _failed(self, submitted: Submitted, reason: str) -> BatchResult:
        return BatchResult(
            task=submitted.task,
            run_dir=str(submitted.run.root),
            status="failed",
            reason=reason,
            seconds=time.monotonic() - submitted.started,
            ideas=manifest_ideas(submitted.run),
        )

    def _interrupted(self, submitted: Submitted) -> BatchResult:
        reason = f"interrupted; {_resume_hint(submitted.run)}"
        mark_interrupted(submitted.run, reason)
        return self._failed(submitted, reason).model_copy(update={"status": "interrupted"})

    def _interrupt(self) -> Iterator[BatchResult]:
        """Ctrl-C: cancel every unfinished task, wait for them to stop, mark their runs
        interrupted (a task that finished meanwhile keeps its result)."""
        self._cancel_pending()
        while self._pending:
            ref, submitted = self._pending.popitem()
            yield self._finish(ref, submitted)

    def _cancel_pending(self) -> None:
        refs = list(self._pending)
        for ref in refs:
            ray.cancel(ref, force=True)
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=60)

    def _cancel_all(self) -> None:
        """The consumer stopped reading: cancel what is left and mark it interrupted."""
        self._cancel_pending()
        while self._pending:
            self._finish(*self._pending.popitem())


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
    ) -> RunManifest:
        """Run (or resume) the job's pipeline on the cluster; its folder ends up here."""
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
