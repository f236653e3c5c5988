"""The parts of the Ray executor that need no Ray running: a template's resources, the run
folder made before a task leaves, packing a folder on a node and unpacking it at home,
the ``cluster`` settings, the progress line and the ``--executor`` flag."""

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
from scientist.cli import app as scientist_app
from scientist.errors import TemplateError
from scientist.pipeline.models import RunManifest
from scientist.runs.batch import BatchResult, BatchTask, progress_line, run_task
from scientist.runs.cluster import (
    TaskResources,
    bring_home,
    mark_interrupted,
    pack,
    portable_task,
    prepare_run,
    scratch_folder,
    task_resources,
    template_resources,
    unpack,
)
from scientist.runs.ray_executor import task_options
from tests.pipeline_support import PipelineModel, fake_deps_factory, fast_overrides
from tests.ray_support import toy_templates


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


def test_the_run_folder_made_before_the_task_is_a_resumable_run(tmp_path: Path) -> None:
    """The driver's folder: run.json as run_pipeline writes it and empty checkpoints; the
    task (here, in this process) resumes it from the start and finishes the run in it."""
    task = BatchTask(template=toy_templates(tmp_path, "toy")[0], preset="debug")
    task = task.model_copy(update={"overrides": fast_overrides(tmp_path)})
    run = prepare_run(task)
    assert run.root.parent == (tmp_path / "runs") and run.root.name.endswith("_toy")
    manifest = RunManifest.model_validate_json(run.run_json.read_text())
    assert manifest.status == "running" and manifest.overrides == task.overrides
    assert run.checkpoints.stat().st_size == 0
    factory = fake_deps_factory(PipelineModel())
    result = run_task(task.model_copy(update={"run_dir": str(run.root)}), deps_factory=factory)
    assert result.status == "done" and result.run_dir == str(run.root)
    assert [o.status for o in result.ideas] == ["done"]
    assert list((tmp_path / "runs").iterdir()) == [run.root]  # no second folder


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


def test_only_a_running_run_is_marked_interrupted(tmp_path: Path) -> None:
    run = RunPaths(tmp_path)
    manifest = RunManifest(template="toy", started_at="now")
    run.run_json.write_text(manifest.model_dump_json())
    mark_interrupted(run, "interrupted; `scientist resume x` continues it")
    marked = RunManifest.model_validate_json(run.run_json.read_text())
    assert marked.status == "interrupted" and "scientist resume" in (marked.reason or "")
    run.run_json.write_text(manifest.model_copy(update={"status": "done"}).model_dump_json())
    mark_interrupted(run, "late")
    assert RunManifest.model_validate_json(run.run_json.read_text()).status == "done"


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
