"""``scientist batch`` on a real private Ray instance (127.0.0.1, this machine's 2 cores, one
instance for the module) with the pipeline fakes: each run's ideas stage on the driver,
each (template, idea) pipeline one Ray task. The same runs as the local process pool, a
killed worker retried from the idea's checkpoints, a crashing template that fails only its
own ideas, transfer mode, Ctrl-C, and the service's run jobs."""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from typer.testing import CliRunner

from core.runstore import RunPaths
from core.settings import ClusterSettings, deep_merge, load_settings, parse_assignments
from scientist.cli import app as scientist_app
from scientist.cli.pipeline import BatchCommandOutput
from scientist.pipeline.models import RunManifest
from scientist.runs.batch import BatchResult, BatchTask, LocalProcessExecutor, run_batch
from scientist.runs.ray_executor import DRIVER, RayExecutor, RayRunLauncher, TaskEvent
from scientist.runs.ray_node import node_model
from scientist.runs.run import resume_pipeline
from service.config import ServiceConfig
from service.jobs import pipeline_launcher
from service.worker import cluster_launcher
from tests.pipeline_support import PipelineModel, fake_deps_factory, fast_overrides
from tests.ray_support import (
    TOY,
    FakeTask,
    calls,
    fake_run_in_folder,
    folder_files,
    ledger_rows,
    private_ray_instance,
    probe_node_model,
    rss_mb,
    toy_templates,
)
from tests.service_support import finished, live_service, service_config, wait_for

pytestmark = pytest.mark.integration
TWO_IDEAS = ["ideas.num_ideas=2", "pipeline.ideas_to_run=2", "pipeline.skip_not_novel=false"]


@pytest.fixture(scope="module")
def private_ray() -> Iterator[None]:
    """One private Ray instance for the module: 2 CPUs, the test tree on its PYTHONPATH."""
    with private_ray_instance():
        yield


def _tasks(tmp: Path, templates: list[str], *extra: str) -> list[BatchTask]:
    overrides = [*fast_overrides(tmp), *extra]
    return [BatchTask(template=t, preset="debug", overrides=overrides) for t in templates]


def _by_template(results: list[BatchResult]) -> dict[str, BatchResult]:
    return {Path(r.task.template).name: r for r in results}


def _outcomes(result: BatchResult) -> list[tuple[str, str, str, str | None]]:
    return sorted((o.name, o.status, o.stage, o.reason) for o in result.ideas)


def test_ray_runs_the_batch_as_the_local_pool_does(private_ray: None, tmp_path: Path) -> None:
    templates = toy_templates(tmp_path / "templates", "toy_a", "toy_b")
    local_tmp, ray_tmp = tmp_path / "local", tmp_path / "ray"
    for folder in (local_tmp, ray_tmp):
        folder.mkdir()
    local = run_batch(
        _tasks(local_tmp, templates, *TWO_IDEAS),
        LocalProcessExecutor(2),
        fn=FakeTask(local_tmp),
    )
    events: list[TaskEvent] = []
    fn = FakeTask(ray_tmp)
    executor = RayExecutor(
        ClusterSettings(max_retries=1), on_event=events.append, idea_fn=fn.ideas()
    )
    on_ray = run_batch(_tasks(ray_tmp, templates, *TWO_IDEAS), executor, fn=fn)

    here, there = _by_template(local), _by_template(on_ray)
    assert set(here) == set(there) == {"toy_a", "toy_b"}
    for name in here:
        mine, theirs = here[name], there[name]
        assert mine.status == theirs.status == "done"
        assert _outcomes(mine) == _outcomes(theirs)
        assert [o.status for o in theirs.ideas] == ["done", "done"]
        assert mine.run_dir and theirs.run_dir
        local_dir, ray_dir = Path(mine.run_dir), Path(theirs.run_dir)
        # The same calls in the run's ledger (ideas ran at once: compared as a multiset).
        assert sorted(ledger_rows(local_dir)) == sorted(ledger_rows(ray_dir)) != []
        # The same files, plus each idea task's own checkpoints in its idea folder.
        own = {f"{Path(o.folder).name}/checkpoints.sqlite" for o in theirs.ideas}
        assert folder_files(ray_dir) == folder_files(local_dir) | own
        manifest = RunManifest.model_validate_json((ray_dir / "run.json").read_text())
        assert manifest.status == "done" and manifest.idea_tasks == "apart"
        assert manifest.totals["calls"] == len(ledger_rows(ray_dir))
        local_totals = RunManifest.model_validate_json((local_dir / "run.json").read_text()).totals
        for key in ("calls", "prompt_tokens", "completion_tokens", "cost_usd"):
            assert manifest.totals[key] == local_totals[key], key
        # The same calls of the same kinds. Their prompts may differ: ideas run in one
        # process share the literature client's state (citation keys already handed out),
        # ideas run as tasks of their own do not.
        kinds = [c["schema"] for c in calls(local_tmp / f"calls-{name}.jsonl")]
        assert sorted(kinds) == sorted(c["schema"] for c in calls(ray_tmp / f"calls-{name}.jsonl"))
        assert mine.node is None and theirs.node and theirs.node.count("/") == 1
        assert all(o.node == theirs.node for o in theirs.ideas)  # each idea: a Ray task
    # Events reached the driver with where they happened: the ideas stage on the driver,
    # every stage of every idea on the Ray node.
    seen = collections.defaultdict(set)
    for item in events:
        stage = item.event.stage
        assert item.node == (DRIVER if stage == "ideas" else there[Path(item.template).name].node)
        seen[Path(item.template).name].add((item.event.idea, stage, item.event.status))
    for name in there:
        for idea in there[name].ideas:
            assert (idea.name, "review", "done") in seen[name], seen[name]
        assert (None, "ideas", "done") in seen[name]


@pytest.mark.parametrize("artefacts", ["shared", "transfer"])
def test_a_killed_worker_is_retried_and_repeats_no_model_call(
    private_ray: None, tmp_path: Path, artefacts: str
) -> None:
    """The retry continues the run from its checkpoints: in the shared folder, or in transfer
    mode from the scratch folder the first attempt left on this (the only) node."""
    [template] = toy_templates(tmp_path / "templates", "toy_a")
    marker = tmp_path / "paused"
    fn = FakeTask(tmp_path, pause_template="toy_a", pause_marker=marker, pause_s=300)
    cluster = ClusterSettings(artefacts=artefacts, scratch_dir=tmp_path / "scratch")
    results: list[BatchResult] = []
    executor = RayExecutor(cluster, idea_fn=fn.ideas())
    batch = threading.Thread(
        target=lambda: results.extend(run_batch(_tasks(tmp_path, [template]), executor, fn=fn))
    )
    batch.start()
    _wait_for(marker)
    before = calls(tmp_path / "calls-toy_a.jsonl")
    os.kill(int(marker.read_text()), signal.SIGKILL)  # the Ray worker, inside the editor
    batch.join(timeout=600)
    [result] = results
    assert result.status == "done" and [o.status for o in result.ideas] == ["done"]
    after = calls(tmp_path / "calls-toy_a.jsonl")
    assert before and all(c["schema"] != "ReviewForm" for c in before)  # killed mid-way
    assert after[: len(before)] == before and len(after) > len(before)
    repeated = [k for k, n in collections.Counter(map(str, after)).items() if n > 1]
    assert repeated == []  # the retry resumed from the checkpoints: no call made twice
    assert result.run_dir and Path(result.ideas[0].folder, "checkpoints.sqlite").is_file()


def test_a_crashing_template_fails_only_its_own_runs(private_ray: None, tmp_path: Path) -> None:
    templates = toy_templates(tmp_path / "templates", "toy_ok", "toy_crash", "toy_boom")
    fn = FakeTask(tmp_path, crash_template="toy_crash", raise_template="toy_boom")
    executor = RayExecutor(ClusterSettings(), idea_fn=fn.ideas())
    results = _by_template(run_batch(_tasks(tmp_path, templates), executor, fn=fn))
    assert [o.status for o in results["toy_ok"].ideas] == ["done"]
    crashed = results["toy_crash"]
    assert crashed.status == "done" and [o.status for o in crashed.ideas] == ["failed"]
    assert "simulated crash" in (crashed.ideas[0].reason or "")
    boom = results["toy_boom"]
    assert boom.status == "failed" and "crashed outright" in (boom.reason or "")
    # A run that fails on its own is not retried (only lost workers are).
    assert len((tmp_path / "raised-toy_boom").read_text().splitlines()) == 1


def test_transfer_mode_brings_complete_folders_home(private_ray: None, tmp_path: Path) -> None:
    templates = toy_templates(tmp_path / "templates", "toy_a", "toy_b")
    driver, scratch = tmp_path / "driver", tmp_path / "scratch"
    cluster = ClusterSettings(artefacts="transfer", scratch_dir=scratch)
    tasks = _tasks(driver, templates, *TWO_IDEAS)
    fn = FakeTask(tmp_path)
    results = _by_template(run_batch(tasks, RayExecutor(cluster, idea_fn=fn.ideas()), fn=fn))
    for name, result in results.items():
        assert result.status == "done" and result.run_dir
        run = RunPaths(Path(result.run_dir))
        assert run.root.parent == driver / "runs"
        seen = Path((tmp_path / f"run_dir-{name}").read_text())
        assert seen.is_relative_to(scratch) and not seen.is_relative_to(driver)
        manifest = RunManifest.model_validate_json(run.run_json.read_text())
        assert manifest.status == "done" and len(manifest.ideas) == 2
        for idea in manifest.ideas:
            assert idea.status == "done" and Path(idea.folder).parent == run.root
            assert idea.paper_pdf and Path(idea.paper_pdf).is_file()
            assert idea.review_json and Path(idea.review_json).is_file()
        assert ledger_rows(run.root) and manifest.totals["calls"] == len(ledger_rows(run.root))
        assert [o.folder for o in result.ideas] == [o.folder for o in manifest.ideas]
        for path in run.root.rglob("*.json"):
            assert str(seen) not in path.read_text(), path  # every path names the folder here
    # The nodes kept nothing of the runs (only the templates they unpacked, for reuse).
    kept = [p for p in scratch.rglob("*") if p.is_file()]
    assert kept and all(p.is_relative_to(scratch / "templates") for p in kept), kept


def test_ctrl_c_cancels_the_rest_and_leaves_resumable_runs(
    private_ray: None, tmp_path: Path
) -> None:
    templates = toy_templates(tmp_path / "templates", "toy_slow", "toy_b")
    marker = tmp_path / "paused"
    fn = FakeTask(tmp_path, pause_template="toy_slow", pause_marker=marker, pause_s=300)
    main = threading.main_thread().ident
    assert main is not None and threading.current_thread().ident == main

    def interrupt() -> None:
        _wait_for(marker)
        signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C while the batch waits

    threading.Thread(target=interrupt, daemon=True).start()
    results: list[BatchResult] = []
    executor = RayExecutor(ClusterSettings(), idea_fn=fn.ideas())
    try:
        for result in executor.run(fn, _tasks(tmp_path, templates)):
            results.append(result)
    except KeyboardInterrupt:  # it landed outside the executor: its cleanup still ran
        pass
    assert all(r.status in ("done", "interrupted") for r in results), results
    slow = [r for r in results if Path(r.task.template).name == "toy_slow"]
    [run_dir] = list((tmp_path / "runs").glob("*_toy_slow"))
    manifest = RunManifest.model_validate_json((run_dir / "run.json").read_text())
    assert manifest.status == "interrupted" and "scientist resume" in (manifest.reason or "")
    if slow:
        assert slow[0].status == "interrupted" and slow[0].run_dir == str(run_dir)
    before = calls(tmp_path / "calls-toy_slow.jsonl")
    model = PipelineModel(tmp_path / "calls-toy_slow.jsonl")
    _, resumed = resume_pipeline(str(run_dir), deps_factory=fake_deps_factory(model))
    assert resumed.status == "done" and [o.status for o in resumed.ideas] == ["done"]
    after = calls(tmp_path / "calls-toy_slow.jsonl")
    assert after[: len(before)] == before and len(set(map(str, after))) == len(after)


def _wait_for(marker: Path) -> None:
    deadline = time.monotonic() + 300  # a guard against a hang, not a performance bound
    while not marker.exists():
        assert time.monotonic() < deadline, "the task never reached its pause"
        time.sleep(0.1)


def test_a_service_run_job_runs_as_a_ray_task(private_ray: None, tmp_path: Path) -> None:
    """``cluster.service_runs``: the worker's run handler hands the job to Ray and follows it;
    the job's progress shows it queued, then running on its node, then the pipeline."""
    base = service_config(tmp_path)
    fast = parse_assignments(fast_overrides(tmp_path))
    config = ServiceConfig(base.preset, deep_merge(base.overrides, fast))
    chosen = cluster_launcher(ClusterSettings(service_runs=True), pipeline_launcher)
    assert isinstance(chosen, RayRunLauncher)
    assert cluster_launcher(ClusterSettings(), pipeline_launcher) is pipeline_launcher
    launcher = RayRunLauncher(ClusterSettings(), runner=fake_run_in_folder)
    with (
        live_service(config, launcher=launcher, templates=[str(TOY)]) as live,
        live.client() as client,
    ):
        response = client.post("/v1/runs", json={"template": str(TOY)})
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        body = wait_for(client, f"/v1/runs/{job_id}", finished, timeout=300)
        run = RunPaths(Path(live.state.paths.run_dir(job_id)))
        job = live.store.get(job_id)
    assert body["status"] == "done", body["error"]
    assert body["summary"]["status"] == "done"
    assert [i["stage"] for i in body["ideas"]] == ["review: done"]
    assert run.run_json.is_file() and run.ledger.is_file()
    assert job is not None
    stages = [e.get("stage") for e in job.progress["events"]]
    assert stages[:2] == ["queued", "placed"] and "review" in stages, stages
    placed = job.progress["events"][1]
    assert placed["node"] and placed["node"].count("/") == 1


def test_one_embedded_server_per_node(private_ray: None, tmp_path: Path) -> None:
    """Two tasks in two worker processes of one node use the same embedded server."""
    pytest.importorskip("llama_cpp")
    settings = load_settings(
        "debug", {"data_dir": str(tmp_path / "data"), "local": {"quantization": "Q4_1"}}
    )
    probe = ray.remote(num_cpus=1)(probe_node_model)
    first, second = ray.get([probe.remote(settings, 3.0), probe.remote(settings, 3.0)])
    assert first[0] == second[0] and first[1] == second[1] is not None
    assert first[2] != second[2]  # two workers, one server
    server_pid = first[1]
    print(f"embedded server RSS on the node: {rss_mb(server_pid):.0f} MiB")
    node_id = ray.get_runtime_context().get_node_id()
    ray.kill(node_model(node_id), no_restart=True)
    deadline = time.monotonic() + 60  # the server exits when the actor that started it dies
    while _alive(server_pid):
        assert time.monotonic() < deadline, "the embedded server outlived its node actor"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0


def test_batch_json_with_the_ray_executor(private_ray: None, tmp_path: Path) -> None:
    """``--executor ray --json``: still one document on stdout; a template that cannot start
    is that run's failure, reported before any task leaves."""
    missing = str(tmp_path / "missing")
    args = ["batch", "--templates", missing, "--executor", "ray", "--json"]
    result = CliRunner().invoke(scientist_app, [*args, "--set", f"runs_dir={tmp_path}"])
    output = BatchCommandOutput.model_validate_json(result.stdout)
    assert result.exit_code == output.exit_code == 1
    [run] = output.runs
    assert run.task.template == missing and run.status == "failed"
    assert "TemplateError" in (run.reason or "")
