"""An experiment written to escape, run in the real bubblewrap box (issue #15).

Each attack runs twice where that is safe: boxed (``isolation="bwrap"``), where it must
fail, and with ``isolation="none"``, where it succeeds; the second run proves the attack
is real, so the first one's failure means the box stopped it. The fork bomb and the huge
file run boxed only (unboxed, they would hurt the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.isolation import bwrap_command, check_bwrap, interpreter_paths
from scientist.experiments.runner import SandboxLimits, SandboxRunner

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-test-never-inside-the-box-4242"

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (make setup installs it)"
)


def attack_script(body: str) -> str:
    """experiment.py: parse --out_dir, run ``body`` (which fills ``report``), write both."""
    head = """
        import argparse, json, os, pathlib, sys
        parser = argparse.ArgumentParser()
        parser.add_argument("--out_dir")
        out = pathlib.Path(parser.parse_args().out_dir)
        out.mkdir(exist_ok=True)
        report = {}
    """
    tail = """
        (out / "report.json").write_text(json.dumps(report))
        (out / "final_info.json").write_text(json.dumps({"g": {"means": {"m": 1.0}}}))
    """
    return textwrap.dedent(head) + textwrap.dedent(body) + textwrap.dedent(tail)


def run_attack(
    tmp_path: Path, body: str, isolation: str, **limits: int
) -> tuple[dict[str, object], str]:
    """Run ``body`` as experiment.py in a fresh idea folder; what it reported, and its status."""
    work = tmp_path / f"idea-{isolation}"
    work.mkdir()
    script = """
        import argparse, json, os, pathlib, sys
        parser = argparse.ArgumentParser()
        parser.add_argument("--out_dir")
        out = pathlib.Path(parser.parse_args().out_dir)
        out.mkdir(exist_ok=True)
        report = {}
    """
    script = (
        textwrap.dedent(script)
        + textwrap.dedent(body)
        + textwrap.dedent("""
        (out / "report.json").write_text(json.dumps(report))
        (out / "final_info.json").write_text(json.dumps({"g": {"means": {"m": 1.0}}}))
    """)
    )
    (work / "experiment.py").write_text(script)
    base = {"timeout_s": 60, "memory_mb": 1024, "cpus": 1}
    runner = SandboxRunner(SandboxLimits(**(base | limits)), isolation=isolation)  # type: ignore[arg-type]
    outcome = runner.run_experiment(work, "run_1")
    report_path = work / "run_1" / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return report, outcome.status


READ_ENVIRONS = f"""
    found = []
    for entry in os.listdir("/proc"):
        try:
            data = open(f"/proc/{{entry}}/environ", "rb").read()
        except OSError:
            continue
        if b"{SECRET}" in data:
            found.append(entry)
    report["found"] = found
"""


@pytest.mark.parametrize(("isolation", "leaks"), [("bwrap", False), ("none", True)])
def test_the_workers_keys_cannot_be_read_from_proc(
    tmp_path: Path, isolation: str, leaks: bool
) -> None:
    """The worker holds a key in its environment (as a service worker does); the run scans
    every /proc/*/environ for it. /proc shows a process's environment as it was at exec, so
    the worker is a real process started with the key."""
    work = tmp_path / "idea"
    work.mkdir()
    (work / "experiment.py").write_text(attack_script(READ_ENVIRONS))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTOSCHOLAR_TEST_SECRET": SECRET}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(work), isolation], env=env, timeout=120, check=False
    )
    assert done.returncode == 0
    report = json.loads((work / "run_1" / "report.json").read_text())
    assert bool(report["found"]) is leaks


def test_no_connection_reaches_the_hosts_loopback(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    body = f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
            report["connected"] = True
        except OSError as exc:
            report["connected"] = False
            report["error"] = str(exc)
    """
    try:
        boxed, _ = run_attack(tmp_path, body, "bwrap")
        unboxed, _ = run_attack(tmp_path, body, "none")
    finally:
        server.close()
    assert boxed["connected"] is False
    assert unboxed["connected"] is True, "control: without the box loopback is reachable"


def test_nothing_outside_the_idea_folder_can_be_written(tmp_path: Path) -> None:
    outside = tmp_path / "someone-elses-job"
    outside.mkdir()
    outside.chmod(0o777)
    body = f"""
        report["wrote"] = []
        for target in ["{outside}/pwned", "/etc/pwned", "/usr/pwned"]:
            try:
                open(target, "w").write("x")
                report["wrote"].append(target)
            except OSError:
                pass
    """
    boxed, status = run_attack(tmp_path, body, "bwrap")
    assert status == "ok" and boxed["wrote"] == []
    assert not (outside / "pwned").exists()
    unboxed, _ = run_attack(tmp_path, body, "none")
    assert f"{outside}/pwned" in unboxed["wrote"], "control: without the box it can write there"


def test_the_idea_folder_itself_stays_writable_inside_the_box(tmp_path: Path) -> None:
    body = """
        (out / "model.bin").write_bytes(b"0" * 1024)
        pathlib.Path("figure.png").write_bytes(b"png")
        report["ok"] = True
    """
    report, status = run_attack(tmp_path, body, "bwrap")
    assert status == "ok" and report == {"ok": True}
    work = tmp_path / "idea-bwrap"
    assert (work / "figure.png").read_bytes() == b"png"
    # Lent to the box's uid for the run only: everything, what it wrote too, is ours again.
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in [work, *work.rglob("*")]}
    assert owners == {(os.getuid(), os.getgid())}


def test_a_fork_bomb_stops_at_the_process_limit(tmp_path: Path) -> None:
    body = """
        import time
        children = 0
        try:
            for _ in range(5000):
                if os.fork() == 0:
                    time.sleep(20)
                    os._exit(0)
                children += 1
        except OSError as exc:
            report["error"] = str(exc)
        report["children"] = children
    """
    start = time.monotonic()
    report, status = run_attack(tmp_path, body, "bwrap", max_processes=24)
    assert status == "ok"
    assert 0 < int(report["children"]) <= 24  # type: ignore[call-overload]
    assert "Resource temporarily unavailable" in str(report["error"])
    assert time.monotonic() - start < 30  # the box's end took the sleeping children with it


def test_a_huge_file_stops_at_the_file_size_limit(tmp_path: Path) -> None:
    body = """
        chunk = b"0" * 2**20
        written = 0
        try:
            with open(out / "huge.bin", "wb") as handle:
                for _ in range(10 * 1024):  # 10 GB
                    handle.write(chunk)
                    handle.flush()
                    written += 1
        except OSError as exc:
            report["error"] = str(exc)
        report["written_mb"] = written
    """
    report, _ = run_attack(tmp_path, body, "bwrap", max_file_mb=8)
    assert int(report["written_mb"]) <= 8  # type: ignore[call-overload]
    assert "File too large" in str(report["error"])
    assert (tmp_path / "idea-bwrap" / "run_1" / "huge.bin").stat().st_size <= 8 * 2**20


HEARTBEAT = """
    import subprocess, time
    beat = pathlib.Path("heartbeat").absolute()
    subprocess.Popen(
        [sys.executable, "-c",
         "import os, pathlib, sys, time\\n"
         "os.setsid()\\n"
         "for _ in range(int(sys.argv[2])):\\n"
         "    pathlib.Path(sys.argv[1]).write_text(str(time.time()))\\n"
         "    time.sleep(0.2)\\n",
         str(beat), "{beats}"],
    )
    while not beat.exists():
        time.sleep(0.05)
"""


def _still_beating(beat: Path, wait_s: float = 1.5) -> bool:
    before = beat.read_text() if beat.exists() else ""
    time.sleep(wait_s)
    return beat.exists() and beat.read_text() != before


def test_a_setsid_child_does_not_outlive_its_run(tmp_path: Path) -> None:
    body = HEARTBEAT.format(beats=40)  # about 8 s of heartbeats when nothing stops it
    _, status = run_attack(tmp_path, body, "bwrap")
    assert status == "ok"
    assert not _still_beating(tmp_path / "idea-bwrap" / "heartbeat")
    run_attack(tmp_path, body, "none")
    assert _still_beating(tmp_path / "idea-none" / "heartbeat"), (
        "control: without the box the setsid child lives on"
    )


WORKER = """
import sys
from pathlib import Path
from scientist.experiments.runner import SandboxLimits, SandboxRunner
runner = SandboxRunner(SandboxLimits(timeout_s=60, memory_mb=1024, cpus=1), isolation=sys.argv[2])
runner.run_experiment(Path(sys.argv[1]), "run_1")
"""


@pytest.mark.parametrize(("isolation", "survives"), [("bwrap", False), ("none", True)])
def test_a_killed_worker_takes_its_run_with_it(
    tmp_path: Path, isolation: str, survives: bool
) -> None:
    work = tmp_path / "idea"
    work.mkdir()
    script = "import pathlib, sys, time\n" + textwrap.dedent(HEARTBEAT.format(beats=40))
    script += "time.sleep(30)\n"
    (work / "experiment.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(work), isolation], env=env)
    beat = work / "heartbeat"
    deadline = time.monotonic() + 30
    while not beat.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert beat.exists()
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert _still_beating(beat) is survives


def test_the_box_command_binds_the_interpreter_and_one_writable_folder(tmp_path: Path) -> None:
    from core.isolation import BoxSpec

    readable = interpreter_paths(sys.executable)
    spec = BoxSpec(workdir=tmp_path, read_only=tuple(readable))
    command = bwrap_command(spec, ["python", "x.py"], check_bwrap())
    binds = [command[i + 1] for i, arg in enumerate(command) if arg == "--bind"]
    assert binds == [str(tmp_path)]
    assert "--unshare-net" in command and "--die-with-parent" in command
    assert command[-2:] == ["python", "x.py"]


def test_a_busy_loop_stops_at_the_cpu_limit(tmp_path: Path) -> None:
    body = """
        import time
        start = time.monotonic()
        while time.monotonic() - start < 30:
            pass
        report["finished"] = True
    """
    started = time.monotonic()
    report, status = run_attack(tmp_path, body, "bwrap", max_cpu_s=1)
    assert report == {} and status == "failed"  # SIGXCPU ended it before it wrote its report
    assert time.monotonic() - started < 10


def test_a_link_the_box_leaves_to_a_host_file_is_never_read_by_the_host(tmp_path: Path) -> None:
    """The box's code swaps its own stderr log and final_info.json for links to a host file
    readable only by the host's user; after the run the host reads both as itself. Measured
    before the fix: the outcome quoted the file ('exit code 3: TOP-SECRET-LINE')."""
    secret = tmp_path / "host-only.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    secret.chmod(0o600)
    work = tmp_path / "idea"
    work.mkdir()
    (work / "experiment.py").write_text(
        textwrap.dedent(f"""
        import argparse, os, pathlib, sys
        parser = argparse.ArgumentParser()
        parser.add_argument("--out_dir")
        out = pathlib.Path(parser.parse_args().out_dir)
        out.mkdir(exist_ok=True)
        os.symlink({str(secret)!r}, out / "final_info.json")
        swapped = []
        for log in pathlib.Path("logs").glob("*.stderr.txt"):
            log.unlink()
            os.symlink({str(secret)!r}, log)
            swapped.append(log.name)
        pathlib.Path("swapped.txt").write_text(" ".join(swapped))
        sys.exit(3)
        """)
    )
    runner = SandboxRunner(SandboxLimits(timeout_s=60, memory_mb=1024, cpus=1), isolation="bwrap")
    outcome = runner.run_experiment(work, "run_1")
    assert (work / "swapped.txt").read_text() == "run_1.stderr.txt"  # the attack was made
    assert outcome.status == "failed"
    assert "TOP-SECRET" not in outcome.model_dump_json()
    assert not [p for p in work.rglob("*") if p.is_symlink()]  # every link out was removed
