"""The shipped templates as gymnasium environments: ``gymnasium.make("autoscholar/digits-v0")``.

Extra keyword arguments of ``gymnasium.make`` go to :class:`~scientist.gym.env.ResearchEnv`
(``settings``, ``limits``, ``root``, ``runner``, ``ledger``). Registered as nondeterministic:
an experiment's timings (and the metrics of a template that is not seeded) differ from run
to run.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from scientist.gym.task import TASK_FILE
from scientist.ideas.template import SHIPPED_TEMPLATES, shipped_templates

NAMESPACE = "autoscholar"
VERSION = 0
ENTRY_POINT = "scientist.gym.env:ResearchEnv"


def env_id(task: str) -> str:
    """The gymnasium id of a shipped template: ``autoscholar/digits-v0``."""
    return f"{NAMESPACE}/{task}-v{VERSION}"


def benchmark_templates() -> list[str]:
    """The shipped templates that declare a task (``task.json``)."""
    names = shipped_templates()
    return [name for name in names if (SHIPPED_TEMPLATES / name / TASK_FILE).is_file()]


def register_envs() -> list[str]:
    """Register every benchmarkable shipped template (once); the ids, registered or not."""
    ids = []
    for name in benchmark_templates():
        ident = env_id(name)
        if ident not in registry:
            register(
                id=ident,
                entry_point=ENTRY_POINT,
                nondeterministic=True,
                kwargs={"template": name},
            )
        ids.append(ident)
    return ids
