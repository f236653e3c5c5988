"""A batch on a two-node Ray cluster on this machine: a head and a second node, each
started with ``ray start`` (one CPU each, their own resources), joined by address. Each
template's ``resources.json`` pins its idea tasks to one node; the results come back from
both."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from core.settings import ClusterSettings
from scientist.pipeline.models import RunManifest
from scientist.runs.batch import BatchTask, run_batch
from scientist.runs.ray_executor import DRIVER, RayExecutor, TaskEvent
from tests.pipeline_support import fast_overrides
from tests.ray_support import RAY_ENV, RUNTIME_ENV, FakeTask, TwoNodes, toy_templates, two_nodes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    """Both nodes up and this process joined to them as the driver."""
    logs = tmp_path_factory.mktemp("ray-logs")
    with pytest.MonkeyPatch.context() as env:
        for name, value in RAY_ENV.items():
            env.setenv(name, value)
        with two_nodes(logs) as nodes:
            ray.init(address=nodes.address, runtime_env=RUNTIME_ENV, logging_level=logging.WARNING)
            try:
                _wait_for_nodes(2)
                yield nodes
            finally:
                ray.shutdown()


def _wait_for_nodes(count: int) -> None:
    deadline = time.monotonic() + 120  # a guard against a hang, not a performance bound
    while sum(1 for n in ray.nodes() if n["Alive"]) < count:
        assert time.monotonic() < deadline, ray.nodes()
        time.sleep(0.2)


def _node_with(resource: str) -> str:
    [node] = [n["NodeID"] for n in ray.nodes() if n["Alive"] and resource in n["Resources"]]
    return str(node)


def test_runs_are_placed_on_both_nodes_and_gathered(cluster: TwoNodes, tmp_path: Path) -> None:
    on_head = toy_templates(tmp_path / "t", "toy_head", resources={"resources": {"head": 1}})
    on_second = toy_templates(tmp_path / "t", "toy_second", resources={"resources": {"node2": 1}})
    overrides = fast_overrides(tmp_path)
    tasks = [
        BatchTask(template=t, preset="debug", overrides=overrides) for t in on_head + on_second
    ]
    events: list[TaskEvent] = []
    fn = FakeTask(tmp_path)
    executor = RayExecutor(
        ClusterSettings(address=cluster.address), on_event=events.append, idea_fn=fn.ideas()
    )
    results = {Path(r.task.template).name: r for r in run_batch(tasks, executor, fn=fn)}

    head, second = _node_with("head"), _node_with("node2")
    assert head != second
    placed = {name: (r.node or "").split("/")[-1] for name, r in results.items()}
    assert head.startswith(placed["toy_head"]) and second.startswith(placed["toy_second"])
    for result in results.values():
        assert result.status == "done" and [o.status for o in result.ideas] == ["done"]
        assert result.run_dir
        manifest = RunManifest.model_validate_json(Path(result.run_dir, "run.json").read_text())
        assert manifest.status == "done" and Path(manifest.ideas[0].paper_pdf or "").is_file()
    assert {e.node for e in events} == {r.node for r in results.values()} | {DRIVER}
