"""The parts of the Ray executor that need no Ray running: a template's resources, an idea's
pipeline as a task of its own (here, in this process) and its ledger merged into the run's,
a template and an idea folder packed for a node and unpacked at home, the ``cluster``
settings, the progress line and the ``--executor`` flag."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.runstore import RunPaths
from core.settings import ClusterSettings, load_settings
from gateway.ledger import read_entries
from scientist.cli import app as scientist_app
from scientist.errors import TemplateError
from scientist.pipeline.models import RunManifest
from scientist.pipeline.stages import merge_idea_ledger
from scientist.runs.batch import BatchResult, BatchTask, progress_line, run_task
from scientist.runs.cluster import (
    TaskResources,
    bring_home,
    bring_idea_home,
    idea_scratch,
    pack,
    pack_parts,
    portable_task,
    scratch_folder,
    task_resources,
    template_on_node,
    template_resources,
    unpack,
)
from scientist.runs.idea_task import LocalIdeaRunner
from scientist.runs.ray_executor import task_options
from scientist.runs.wiring import IDEA_RUNNER, RunRequest, settings_for
from tests.pipeline_support import PipelineModel, fake_deps_factory, fast_overrides
from tests.ray_support import ledger_rows, toy_templates


def test_a_template_without_resources_json_takes_the_cluster_settings(tmp_path: Path) -> None:
    [template] = toy_templates(tmp_path, "toy")
    cluster = ClusterSettings(num_cpus=2, num_gpus=0.5, memory_mb=1024)
    assert task_resources(cluster, template) == TaskResources(
        num_cpus=2, num_gpus=0.5, memory_mb=1024
    )


def test_a_template_that_needs_a_gpu_says_so_in_resources_json(tmp_path: Path) -> None:
    needs = {"num_gpus": 1, "memory_mb": 16384, "resources": {"a100": 1}}
    [template] = toy_templates(tmp_path, "gpu_toy", resources=needs)
    got = task_resources(ClusterSettings(num_cpus=3), template)
    assert got == TaskResources(num_cpus=3, num_gpus=1, memory_mb=16384, resources={"a100": 1})
    options = task_options(got, max_retries=2)
    assert options == {
        "num_cpus": 3,
        "num_gpus": 1,
        "max_retries": 2,
        "retry_exceptions": False,  # a run that fails on its own is not retried
        "memory": 16384 * 2**20,
        "resources": {"a100": 1},
    }


def test_a_malformed_resources_json_names_the_file_and_the_fields(tmp_path: Path) -> None:
    [template] = toy_templates(tmp_path, "bad", resources={"gpus": 1})
    with pytest.raises(TemplateError, match=r"resources\.json.*num_gpus"):
        template_resources(template)


def test_ideas_apart_give_the_outcomes_and_ledger_of_ideas_inline(tmp_path: Path) -> None:
    """The idea task that Ray runs on a node, here in this process (``LocalIdeaRunner``):
    each idea on its own checkpoints, its calls merged into the run's ledger once; the
    same outcomes and ledger rows as the ideas run inside the run's graph."""
    ideas = ["ideas.num_ideas=2", "pipeline.ideas_to_run=2", "pipeline.skip_not_novel=false"]
    [template] = toy_templates(tmp_path, "toy")
    results = {}
    for mode in ("inline", "apart"):
        task = BatchTask(
            template=template, preset="debug", overrides=[*fast_overrides(tmp_path / mode), *ideas]
        )
        factory = fake_deps_factory(PipelineModel())
        runner = LocalIdeaRunner(parallel=1, deps_factory=factory) if mode == "apart" else None
        token = IDEA_RUNNER.set(runner)
        try:
            results[mode] = run_task(task, deps_factory=factory)
        finally:
            IDEA_RUNNER.reset(token)
    inline, apart = results["inline"], results["apart"]
    assert inline.status == apart.status == "done"
    assert [(o.name, o.status) for o in inline.ideas] == [(o.name, o.status) for o in apart.ideas]
    assert [o.status for o in apart.ideas] == ["done", "done"]
    assert inline.run_dir and apart.run_dir
    assert sorted(ledger_rows(Path(inline.run_dir))) == sorted(ledger_rows(Path(apart.run_dir)))
    manifest = RunManifest.model_validate_json(Path(apart.run_dir, "run.json").read_text())
    assert manifest.idea_tasks == "apart" and manifest.totals["calls"] == len(
        ledger_rows(Path(apart.run_dir))
    )
    for outcome in apart.ideas:
        assert Path(outcome.folder, "checkpoints.sqlite").is_file()
        assert not Path(inline.run_dir, Path(outcome.folder).name, "checkpoints.sqlite").exists()


@pytest.mark.parametrize(
    "limit", ["pipeline.idea_max_total_tokens=50", "budget.max_total_tokens=3000"]
)
def test_budgets_hold_for_ideas_apart_as_inline(tmp_path: Path, limit: str) -> None:
    """An idea's own budget, and the run's, stop an idea run as a task of its own at the
    same stage, with the same reason, as inline."""
    [template] = toy_templates(tmp_path, "toy")
    seen = {}
    for mode in ("inline", "apart"):
        overrides = [*fast_overrides(tmp_path / mode), "pipeline.skip_not_novel=false", limit]
        task = BatchTask(template=template, preset="debug", overrides=overrides)
        factory = fake_deps_factory(PipelineModel())
        runner = LocalIdeaRunner(parallel=1, deps_factory=factory) if mode == "apart" else None
        token = IDEA_RUNNER.set(runner)
        try:
            [idea] = run_task(task, deps_factory=factory).ideas
        finally:
            IDEA_RUNNER.reset(token)
        seen[mode] = (idea.status, idea.stage, idea.reason)
    assert seen["apart"] == seen["inline"]
    assert seen["apart"][0] == "stopped: budget", seen


def test_an_idea_ledger_merges_into_the_run_ledger_once(tmp_path: Path) -> None:
    [template] = toy_templates(tmp_path, "toy")
    task = BatchTask(template=template, preset="debug", overrides=fast_overrides(tmp_path))
    factory = fake_deps_factory(PipelineModel())
    result = run_task(task, deps_factory=factory)
    assert result.run_dir
    run = RunPaths(Path(result.run_dir))
    deps = factory(settings_for(task.preset, task.overrides), run, RunRequest(template=template))
    name = result.ideas[0].name
    before = len(ledger_rows(run.root))
    assert merge_idea_ledger(deps, name) == 0  # inline: already in the run's ledger
    own = run.idea(name).root / "ledger.jsonl"
    extra = read_entries(own)[0].model_copy(update={"latency_s": 123.0})
    with own.open("a") as handle:
        handle.write(extra.model_dump_json() + "\n")
    assert merge_idea_ledger(deps, name) == 1
    assert merge_idea_ledger(deps, name) == 0  # a repeated merge (a crash between) adds none
    assert len(read_entries(run.ledger)) == before + 1


def test_a_template_travels_to_a_node_once(tmp_path: Path) -> None:
    [template] = toy_templates(tmp_path / "driver", "toy")
    archive = pack(Path(template))
    first = template_on_node(tmp_path / "node", archive, "toy")
    assert first.name == "toy" and (first / "experiment.py").is_file()
    assert not first.is_relative_to(tmp_path / "driver")
    (first / "marker").write_text("kept")
    assert template_on_node(tmp_path / "node", archive, "toy") == first  # reused, not redone
    assert (first / "marker").is_file()
    (Path(template) / "experiment.py").write_text("# changed\n")
    changed = template_on_node(tmp_path / "node", pack(Path(template)), "toy")
    assert changed != first and (changed / "experiment.py").read_text() == "# changed\n"


def test_an_idea_folder_comes_home_into_its_run_folder(tmp_path: Path) -> None:
    run_root = "/home/a/runs/20260101-000000_toy"
    work = idea_scratch(tmp_path / "node", run_root, "falcon")
    assert work == idea_scratch(tmp_path / "node", run_root, "falcon")  # a retry finds it
    assert work != idea_scratch(tmp_path / "node", run_root, "nectar")
    (work / "falcon" / "review").mkdir(parents=True)
    (work / "falcon" / "review" / "review.md").write_text(f"PDF: {work}/falcon/paper.pdf")
    (work / "ideas.json").write_text("{}")
    home = RunPaths(tmp_path / "home" / "run")
    home.root.mkdir(parents=True)
    bring_idea_home(pack(work / "falcon"), str(work), home, "falcon")
    text = (home.root / "falcon" / "review" / "review.md").read_text()
    assert text == f"PDF: {home.root}/falcon/paper.pdf"
    assert not (home.root / "ideas.json").exists()  # only the idea's folder comes back
    seed = pack_parts(home.root, ["ideas.json", "falcon", "missing"])
    unpack(seed, tmp_path / "seeded")
    assert (tmp_path / "seeded" / "falcon" / "review" / "review.md").is_file()


def test_a_task_that_cannot_resume_its_folder_fails_with_the_folder(tmp_path: Path) -> None:
    task = BatchTask(template="toy", preset="debug", run_dir=str(tmp_path / "gone"))
    result = run_task(task)
    assert result.status == "failed" and result.run_dir == str(tmp_path / "gone")
    assert "RunStoreError" in (result.reason or "")


def test_relative_template_paths_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toy_templates(tmp_path, "toy")
    monkeypatch.chdir(tmp_path)
    assert portable_task(BatchTask(template="toy", preset="debug")).template == str(
        tmp_path / "toy"
    )
    assert portable_task(BatchTask(template="digits", preset="debug")).template == "digits"


def test_a_packed_folder_comes_home_naming_the_folder_here(tmp_path: Path) -> None:
    work = tmp_path / "node" / "scratch" / "run"
    (work / "idea").mkdir(parents=True)
    (work / "run.json").write_text(json.dumps({"folder": str(work / "idea")}))
    (work / "idea" / "review.md").write_text(f"PDF: {work}/idea/paper.pdf")
    (work / "idea" / "plot.png").write_bytes(b"\x89PNG" + str(work).encode())
    sqlite3.connect(work / "checkpoints.sqlite").close()
    home = RunPaths(tmp_path / "home" / "run")
    home.root.mkdir(parents=True)
    home.run_json.write_text("{}")  # what the driver wrote first is replaced
    bring_home(pack(work), str(work), home)
    assert json.loads(home.run_json.read_text()) == {"folder": str(home.root / "idea")}
    assert (home.root / "idea" / "review.md").read_text() == f"PDF: {home.root}/idea/paper.pdf"
    assert (home.root / "idea" / "plot.png").read_bytes().endswith(str(work).encode())  # binary
    assert (home.root / "checkpoints.sqlite").is_file()


def test_an_archive_that_leaves_its_folder_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"owned"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(tarfile.OutsideDestinationError):
        unpack(buffer.getvalue(), tmp_path / "run")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_retry_on_the_same_node_finds_the_same_scratch_folder(tmp_path: Path) -> None:
    one = scratch_folder(tmp_path, "/home/a/runs/20260101-000000_toy")
    assert one == scratch_folder(tmp_path, "/home/a/runs/20260101-000000_toy")
    assert one.name == "20260101-000000_toy" and one.is_relative_to(tmp_path)
    assert one != scratch_folder(tmp_path, "/home/b/runs/20260101-000000_toy")


def test_cluster_settings_come_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings("default").cluster == ClusterSettings()
    monkeypatch.setenv("AUTOSCHOLAR_CLUSTER__ADDRESS", "10.0.0.5:6379")
    monkeypatch.setenv("AUTOSCHOLAR_CLUSTER__ARTEFACTS", "transfer")
    cluster = load_settings("default").cluster
    assert cluster.address == "10.0.0.5:6379" and cluster.artefacts == "transfer"


def test_the_progress_line_names_the_node() -> None:
    task = BatchTask(template="grokking", preset="debug")
    result = BatchResult(task=task, status="failed", reason="boom", seconds=3, node="10.0.0.5/ab12")
    assert progress_line(result) == "grokking: failed in 3 s on 10.0.0.5/ab12: boom"
    assert " on " not in progress_line(result.model_copy(update={"node": None}))


def test_an_unknown_executor_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        scientist_app, ["batch", "--templates", "digits", "--executor", "slurm"]
    )
    assert result.exit_code == 2 and "local or ray" in result.output
