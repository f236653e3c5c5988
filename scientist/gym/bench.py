"""``scientist bench``: every (task, method, attempt) episode, then performance profiles and AUP.

Layout under the output folder::

    episodes/<task>/<episode>.json       the EpisodeResult (its presence: the episode is done)
    episodes/<task>/<episode>/           workspace/, trajectory.jsonl, episode.json, ledger.jsonl
    bench.json, bench.md, profiles.png, aup_vs_cost.png

An episode is named ``<method>-<attempt>`` (the method's characters outside ``[A-Za-z0-9_.-]``
become ``_``: ``openai/gpt-4o`` → ``openai_gpt-4o-0``). Resumable: an episode whose result
file exists is read back, not run again. An agent that raises records a ``failed`` result
(its traceback in the episode's ``error.txt``) and the bench goes on; a task whose baseline
cannot run stops the bench (nothing could be compared on it).

Each episode gets a ledger of its own, into which the agent's gateway records; the env counts
it against the episode's token and cost budgets. The gateway should have no response cache:
attempts of one model would otherwise replay the first attempt's replies.

Where episodes run is an :class:`EpisodeExecutor`: :class:`LocalEpisodeExecutor` (one at a
time, here) or ``scientist.runs.ray_bench.RayEpisodeExecutor`` (one Ray task per episode;
the gym sits below ``scientist.runs`` and never imports it). The function an executor runs
is an :class:`EpisodeJob`: picklable when its agent factory, gateway factory and runners are
(a :class:`~gateway.gateway.Gateway` itself is not: pass a ``Settings -> Gateway`` factory to
send episodes to other processes). The job writes its result file into the output folder
itself, so on a cluster that folder must be on storage every node mounts at the same path.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.settings import Settings
from gateway.errors import EXIT_USAGE
from gateway.gateway import Gateway
from gateway.ledger import Ledger
from scientist.gym.agent import AgentFactory, AgentSpec
from scientist.gym.bench_report import BenchFiles, write_bench
from scientist.gym.env import ResearchEnv
from scientist.gym.errors import GymError
from scientist.gym.limits import EpisodeLimits
from scientist.gym.models import EpisodeResult
from scientist.gym.profiles import BenchScores, score_bench
from scientist.gym.sandboxed import GymRunner

EPISODES = "episodes"
LEDGER = "ledger.jsonl"
ERROR_FILE = "error.txt"
ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = ("local", "ray")
RunnerFactory = Callable[[str], GymRunner]  # a task (as the config names it) -> its sandbox
GatewayFactory = Callable[[Settings], Gateway]  # built where the episode runs
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class BenchConfigError(GymError):
    """The bench was asked for something it cannot run (an executor, duplicate names)."""

    exit_code = EXIT_USAGE


class BenchConfig(BaseModel):
    """What to run: tasks (template names or folders), methods (model strings, ``local``,
    or an agent's name the factory knows), attempts each, the episode limits, the executor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: list[str] = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    attempts: int = Field(1, ge=1, le=100)
    limits: EpisodeLimits = Field(default_factory=EpisodeLimits)
    executor: ExecutorName = Field(
        "local",
        description="local: one episode at a time in this process; ray: one Ray task per "
        "episode (run_bench must then be given the Ray executor).",
    )

    @field_validator("tasks")
    @classmethod
    def _distinct_tasks(cls, names: list[str]) -> list[str]:
        return _distinct([episode_slug(Path(name).name) for name in names], names)

    @field_validator("methods")
    @classmethod
    def _distinct_methods(cls, names: list[str]) -> list[str]:
        return _distinct([episode_slug(name) for name in names], names)


def _distinct(slugs: list[str], names: list[str]) -> list[str]:
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"names must be distinct once made file-safe: {names}")
    return names


@dataclass(frozen=True)
class EpisodeKey:
    """One episode of the bench."""

    task: str
    method: str
    attempt: int

    @property
    def name(self) -> str:
        """The episode's folder and result-file name: ``<method>-<attempt>``."""
        return f"{episode_slug(self.method)}-{self.attempt}"


EventKind = Literal["started", "finished", "reused"]


@dataclass(frozen=True)
class BenchEvent:
    """Progress: an episode started, finished (its result) or was read back from disk."""

    kind: EventKind
    key: EpisodeKey
    index: int
    total: int
    result: EpisodeResult | None = None


@dataclass
class BenchOutcome:
    """What a bench produced: every episode's result, the scores, the files."""

    results: list[EpisodeResult]
    scores: BenchScores
    files: BenchFiles
    ran: list[EpisodeKey] = field(default_factory=list)
    reused: list[EpisodeKey] = field(default_factory=list)


def episode_slug(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9_.-]`` turned into ``_``."""
    slug = _UNSAFE.sub("_", name.strip())
    return slug if slug[:1].isalnum() else f"m{slug}"


def episode_keys(config: BenchConfig) -> list[EpisodeKey]:
    """Every episode, task by task, attempt by attempt, method by method."""
    return [
        EpisodeKey(task, method, attempt)
        for task in config.tasks
        for attempt in range(config.attempts)
        for method in config.methods
    ]


def result_path(out: Path, key: EpisodeKey) -> Path:
    """Where the episode's :class:`EpisodeResult` is written."""
    return task_folder(out, key.task) / f"{key.name}.json"


def task_folder(out: Path, task: str) -> Path:
    """``<out>/episodes/<task>``: a task's episodes (a template folder's by its name)."""
    return out / EPISODES / episode_slug(Path(task).name)


EpisodeFn = Callable[[EpisodeKey], EpisodeResult]


class EpisodeExecutor(Protocol):
    """Runs episodes somewhere and yields each (key, result) as it finishes."""

    def run(
        self,
        fn: EpisodeFn,
        jobs: Iterable[EpisodeKey],
        on_start: Callable[[EpisodeKey], None] | None = None,
    ) -> Iterator[tuple[EpisodeKey, EpisodeResult]]:
        """Each job's result, in completion order; ``on_start`` as each one starts (or is
        submitted)."""
        ...


class LocalEpisodeExecutor:
    """One episode after another in this process."""

    def run(
        self,
        fn: EpisodeFn,
        jobs: Iterable[EpisodeKey],
        on_start: Callable[[EpisodeKey], None] | None = None,
    ) -> Iterator[tuple[EpisodeKey, EpisodeResult]]:
        """Run each episode here, in order."""
        for key in jobs:
            if on_start is not None:
                on_start(key)
            yield key, fn(key)


@dataclass(frozen=True)
class EpisodeJob:
    """One episode as a function of its key: what an executor runs (in this process or on a
    Ray worker). ``gateway``: the gateway itself (local only) or a factory of one."""

    limits: EpisodeLimits
    settings: Settings
    out: Path
    agent_factory: AgentFactory
    gateway: Gateway | GatewayFactory
    runners: RunnerFactory | None = None

    def __call__(self, key: EpisodeKey) -> EpisodeResult:
        """Run the episode and write its result file (see :func:`run_episode`)."""
        gateway = self.gateway if isinstance(self.gateway, Gateway) else self.gateway(self.settings)
        runner = self.runners(key.task) if self.runners is not None else None
        return run_episode(
            key, self.limits, self.settings, self.out, self.agent_factory, gateway, runner
        )


def run_bench(
    config: BenchConfig,
    settings: Settings,
    out: Path,
    agent_factory: AgentFactory,
    gateway: Gateway | GatewayFactory,
    *,
    on_event: Callable[[BenchEvent], None] | None = None,
    runners: RunnerFactory | None = None,
    executor: EpisodeExecutor | None = None,
) -> BenchOutcome:
    """Run (or read back) every episode, then score them and write the bench's files.
    ``runners``: the sandbox of each task (default: the env's, ``SandboxRunner.for_template``).
    ``executor``: where the episodes run (default: here, one at a time; required when
    ``config.executor`` is not ``local``)."""
    if executor is None:
        if config.executor != "local":
            raise BenchConfigError(
                f"Executor {config.executor!r} needs its executor object (the CLI builds it: "
                "`scientist bench --executor ray`); without one use 'local' (episodes run one "
                "at a time in this process)."
            )
        executor = LocalEpisodeExecutor()
    out = out.resolve()  # workers elsewhere do not share this process's working directory
    keys = episode_keys(config)
    notify = on_event or (lambda _event: None)
    index = {key: position for position, key in enumerate(keys)}
    done: dict[EpisodeKey, EpisodeResult] = {}
    reused: list[EpisodeKey] = []
    for key in keys:
        result = read_result(result_path(out, key))
        if result is not None:
            done[key] = result
            reused.append(key)
            notify(BenchEvent("reused", key, index[key], len(keys), result))
    todo = [key for key in keys if key not in done]
    job = EpisodeJob(config.limits, settings, out, agent_factory, gateway, runners)

    def started(key: EpisodeKey) -> None:
        notify(BenchEvent("started", key, index[key], len(keys)))

    ran: list[EpisodeKey] = []
    for key, result in executor.run(job, todo, started):
        done[key] = result
        ran.append(key)
        notify(BenchEvent("finished", key, index[key], len(keys), result))
    results = [done[key] for key in keys]  # in the config's order, whatever order they ran in
    scores = score_bench(results)
    files = write_bench(scores, out)
    return BenchOutcome(results, scores, files, sorted(ran, key=index.__getitem__), reused)


def read_result(path: Path) -> EpisodeResult | None:
    """A finished episode's result; None when there is none (or it is unreadable)."""
    if not path.is_file():
        return None
    try:
        return EpisodeResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, UnicodeDecodeError):
        return None  # a torn write: run the episode again


def run_episode(
    key: EpisodeKey,
    limits: EpisodeLimits,
    settings: Settings,
    out: Path,
    agent_factory: AgentFactory,
    gateway: Gateway,
    runner: GymRunner | None = None,
) -> EpisodeResult:
    """Reset a fresh env for ``key``, let the method's agent work it, write its result."""
    root = task_folder(out, key.task)
    env = ResearchEnv(key.task, settings=settings, limits=limits, root=root, runner=runner)
    observation, info = env.reset(seed=key.attempt, options={"episode": key.name})
    folder = root / key.name
    # Set after reset (which empties the folder); a fresh ledger starts at zero, as reset
    # assumed when it had none.
    ledger = Ledger(folder / LEDGER)
    env.ledger = ledger
    agent = agent_factory(AgentSpec(key.method, gateway.with_ledger(ledger), folder))
    failure = None
    try:
        agent.run(env, observation, info)
    except Exception as exc:  # an agent's crash is its episode's failure, not the bench's
        failure = f"{type(exc).__name__}: {exc}"[:2000]
        (folder / ERROR_FILE).write_text(traceback.format_exc(), encoding="utf-8")
    result = env.episode_result(key.method, key.attempt, failure=failure)
    path = result_path(out, key)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(result.model_dump_json(indent=1), encoding="utf-8")
    temporary.replace(path)  # the result appears whole or not at all
    return result


class MethodSpend(BaseModel):
    """Tokens, dollars and time of one method over the bench's episodes (run or reused)."""

    method: str
    episodes: int
    submitted: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    wall_s: float


def spend_summary(results: Sequence[EpisodeResult]) -> list[MethodSpend]:
    """Per method, in order of first appearance: episodes, outcomes, tokens, cost, time."""
    methods = list(dict.fromkeys(result.model for result in results))
    rows = []
    for method in methods:
        mine = [r for r in results if r.model == method]
        rows.append(
            MethodSpend(
                method=method,
                episodes=len(mine),
                submitted=sum(r.status == "submitted" for r in mine),
                failed=sum(r.status == "failed" for r in mine),
                prompt_tokens=sum(r.prompt_tokens for r in mine),
                completion_tokens=sum(r.completion_tokens for r in mine),
                cost_usd=round(sum(r.cost_usd for r in mine), 6),
                wall_s=round(sum(r.wall_s for r in mine), 3),
            )
        )
    return rows
