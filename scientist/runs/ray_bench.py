"""``scientist bench --executor ray``: each episode of a bench is one Ray task.

Each task reserves ``cluster.num_cpus`` CPUs, ``cluster.num_gpus`` GPUs and
``cluster.memory_mb`` (a template's ``resources.json`` is for paper runs, not episodes) and
runs :class:`scientist.gym.bench.EpisodeJob`: it resets the episode's env, lets the agent
work, and writes the episode's folder and result file into the bench's output folder.

Shared-path assumption: as ``runs_dir`` for paper runs with ``cluster.artefacts=shared``,
the bench's ``--out`` (made absolute on the driver) must be on storage every node mounts at
the same path; on a private instance (no ``--ray-address``) it always is. Each result file
appears as its task finishes, so a bench stopped midway (Ctrl-C, a lost node) resumes with
the episodes it lacks. An agent that raises is its episode's ``failed`` result (written by
the task); an error outside the agent (a task whose baseline cannot run) stops the bench as
it does locally; a worker or node that dies more than ``cluster.max_retries`` times stops it
with a :class:`~scientist.runs.cluster.ClusterError` (rerun the bench to resume).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import ray

from core.settings import ClusterSettings
from scientist.gym.bench import EpisodeFn, EpisodeKey
from scientist.gym.models import EpisodeResult
from scientist.runs.cluster import ClusterError, TaskResources
from scientist.runs.ray_executor import connect, task_options


def run_episode_task(fn: EpisodeFn, key: EpisodeKey) -> EpisodeResult:
    """On a Ray worker: one episode (``fn`` writes its result file)."""
    return fn(key)


# Held under another name than the plain function, so Ray pickles the plain one by reference
# (see ``scientist.runs.ray_node``).
EpisodeTask = ray.remote(run_episode_task)


class RayEpisodeExecutor:
    """The bench's ``EpisodeExecutor`` on Ray: one task per episode, results as they finish."""

    def __init__(
        self,
        cluster: ClusterSettings,
        *,
        runtime_env: dict[str, Any] | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.cluster = cluster
        self.runtime_env = runtime_env
        self.poll_s = poll_s

    def run(
        self,
        fn: EpisodeFn,
        jobs: Iterable[EpisodeKey],
        on_start: Callable[[EpisodeKey], None] | None = None,
    ) -> Iterator[tuple[EpisodeKey, EpisodeResult]]:
        """Submit every episode; yield (key, result) in completion order; stopping early
        (Ctrl-C, an error) cancels the unfinished tasks."""
        connect(self.cluster, self.runtime_env)
        options = task_options(self.resources, self.cluster.max_retries)
        pending: dict[Any, EpisodeKey] = {}
        try:
            for key in jobs:
                portable = _portable(key)
                pending[EpisodeTask.options(**options).remote(fn, portable)] = key
                if on_start is not None:
                    on_start(key)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_s)
                for ref in done:
                    key = pending.pop(ref)
                    yield key, self._result(ref, key)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    @property
    def resources(self) -> TaskResources:
        """What one episode's task reserves: the cluster settings."""
        cluster = self.cluster
        return TaskResources(
            num_cpus=cluster.num_cpus, num_gpus=cluster.num_gpus, memory_mb=cluster.memory_mb
        )

    def _result(self, ref: Any, key: EpisodeKey) -> EpisodeResult:
        try:
            result: EpisodeResult = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # outside the agent: as a local bench raises
            if isinstance(exc.cause, Exception):
                raise exc.cause from None
            raise
        except ray.exceptions.RayError as exc:  # the worker or node died too often
            raise ClusterError(
                f"The Ray task of episode {key.name} of {key.task} was lost after "
                f"{self.cluster.max_retries} retries ({type(exc).__name__}); rerun the bench "
                "with the same --out to resume (finished episodes are read back)."
            ) from exc
        return result


def _portable(key: EpisodeKey) -> EpisodeKey:
    """The key with a template folder given as a relative path made absolute (a worker does
    not share this process's working directory). Its name, and so its files, stay the same."""
    path = Path(key.task)
    if path.is_dir() and not path.is_absolute():
        return EpisodeKey(str(path.resolve()), key.method, key.attempt)
    return key
