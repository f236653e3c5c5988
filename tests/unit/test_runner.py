"""The sandboxed runner, with real subprocesses: limits, cleanup, environment, validation."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import pytest

from scientist.experiments.runner import (
    FinalInfoError,
    SandboxLimits,
    SandboxRunner,
    group_members,
    parse_final_info,
    sandbox_env,
)

WRITE_RESULT = """
import json, os, sys
out = sys.argv[1].split("=", 1)[1]
os.makedirs(out, exist_ok=True)
def write(info):
    with open(os.path.join(out, "final_info.json"), "w") as f:
        json.dump(info, f)
with open("pgid.txt", "w") as f:
    f.write(str(os.getpgid(0)))
"""


def runner(**limits: float) -> SandboxRunner:
    base: dict[str, float] = {"timeout_s": 20, "memory_mb": 512, "cpus": 1}
    return SandboxRunner(SandboxLimits(**(base | limits)))  # type: ignore[arg-type]


def experiment(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "experiment.py").write_text(WRITE_RESULT + textwrap.dedent(body))
    return folder


def group_of(folder: Path) -> int:
    return int((folder / "pgid.txt").read_text())


def assert_no_survivors(folder: Path) -> None:
    """No live process is left in the run's process group (zombies are already dead)."""
    pgid = group_of(folder)
    deadline = time.monotonic() + 30  # generous: a loaded machine is slow to reap
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(pgid) == []


def test_successful_run_is_parsed_and_logged(tmp_path: Path) -> None:
    work = experiment(
        tmp_path,
        """
        print("hello from the run")
        write({"toy": {"means": {"acc": 0.9, "cpus": len(os.sched_getaffinity(0))},
                       "stderrs": {"acc": 0.01},
                       "threads": os.environ["OMP_NUM_THREADS"]}})
        """,
    )
    outcome = runner().run_experiment(work, "run_1")
    assert outcome.status == "ok", outcome
    assert outcome.results["toy"].means == {"acc": 0.9, "cpus": 1.0}
    assert outcome.results["toy"].stderrs == {"acc": 0.01}
    assert "hello from the run" in (work / outcome.stdout_path).read_text()
    assert outcome.stdout_path == "logs/run_1.stdout.txt"
    assert outcome.error_tail == ""
    assert_no_survivors(work)


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    work = experiment(
        tmp_path,
        """
        import signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # must still die: SIGKILL follows
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        time.sleep(60)
        """,
    )
    start = time.monotonic()
    outcome = runner(timeout_s=1.5).run_experiment(work, "run_1")
    assert outcome.status == "timeout"
    assert "1.5 s limit" in (outcome.reason or "")
    assert outcome.exit_code is None
    assert time.monotonic() - start < 30  # 20x the limit, and half the 60 s the run asks for
    assert_no_survivors(work)


def test_memory_limit_is_reported_as_memory(tmp_path: Path) -> None:
    work = experiment(tmp_path, "block = bytearray(2 * 2**30)\n")
    outcome = runner(memory_mb=256).run_experiment(work, "run_1")
    assert outcome.status == "memory", outcome
    assert "256 MB" in (outcome.reason or "")
    assert "MemoryError" in outcome.error_tail
    assert_no_survivors(work)


def test_forked_children_do_not_survive_a_normal_exit(tmp_path: Path) -> None:
    work = experiment(
        tmp_path,
        """
        import subprocess
        children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
                    for _ in range(3)]
        if os.fork() == 0:  # a grandchild of the shell kind, forked directly
            import time; time.sleep(60)
        with open("children.txt", "w") as f:
            f.write(" ".join(str(c.pid) for c in children))
        write({"toy": {"means": {"acc": 1.0}}})
        """,
    )
    outcome = runner().run_experiment(work, "run_1")
    assert outcome.status == "ok", outcome
    assert_no_survivors(work)
    pids = [int(pid) for pid in (work / "children.txt").read_text().split()]
    assert len(pids) == 3
    for pid in pids:
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def test_api_keys_and_settings_do_not_reach_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("AUTOSCHOLAR_X", "1")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-secret")
    work = experiment(
        tmp_path,
        """
        with open("env.json", "w") as f:
            json.dump(dict(os.environ), f)
        write({"toy": {"means": {"key_seen": float("OPENAI_API_KEY" in os.environ)}}})
        """,
    )
    outcome = runner().run_experiment(work, "run_1")
    assert outcome.results["toy"].means["key_seen"] == 0.0
    env = json.loads((work / "env.json").read_text())
    leaked = [k for k in env if "KEY" in k or "TOKEN" in k or k.startswith("AUTOSCHOLAR_")]
    assert leaked == []
    assert "secret" not in json.dumps(env)
    assert env["MPLBACKEND"] == "Agg"
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    assert_no_survivors(work)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("pass\n", "was not written"),
        ('open(os.path.join(out, "final_info.json"), "w").write("{not json")\n', "not valid JSON"),
        ('write({"toy": {"mean": {"acc": 1}}})\n', "means"),
        ('write({"toy": {"means": {"acc": "high"}}})\n', "acc"),
        ('write({"toy": {"means": {"loss": float("nan")}}})\n', "nan"),
        ("write({})\n", "no groups"),
        ('write({"toy": {"means": {}}})\n', "no means"),
    ],
)
def test_bad_final_info_is_invalid_output(tmp_path: Path, body: str, reason: str) -> None:
    work = experiment(tmp_path, body)
    outcome = runner().run_experiment(work, "run_1")
    assert outcome.status == "invalid_output"
    assert reason in (outcome.reason or ""), outcome.reason
    assert "final_info.json" in (outcome.reason or "")
    assert outcome.results == {}
    assert_no_survivors(work)


def test_a_crash_is_failed_with_its_error_tail(tmp_path: Path) -> None:
    work = experiment(tmp_path, 'raise ValueError("learning rate must be positive")\n')
    outcome = runner().run_experiment(work, "run_2")
    assert outcome.status == "failed"
    assert outcome.exit_code == 1
    assert "ValueError: learning rate must be positive" in (outcome.reason or "")
    assert "Traceback" in outcome.error_tail
    assert_no_survivors(work)


def test_logs_of_repeated_runs_are_kept(tmp_path: Path) -> None:
    work = experiment(tmp_path, 'raise SystemExit("first")\n')
    first = runner().run_experiment(work, "run_1")
    second = runner().run_experiment(work, "run_1")
    assert first.stderr_path != second.stderr_path
    assert (work / first.stderr_path).is_file()
    assert (work / second.stderr_path).is_file()


def test_plot_script_runs_in_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / "plot.py").write_text("open('figure.png', 'wb').write(b'png')\n")
    outcome = runner().run_plot(tmp_path)
    assert outcome.status == "ok"
    assert (tmp_path / "figure.png").is_file()


def test_run_names_are_checked(tmp_path: Path) -> None:
    from scientist.experiments.errors import ExperimentError

    with pytest.raises(ExperimentError, match="run_1"):
        runner().run_experiment(tmp_path, "../elsewhere")


def test_sandbox_env_is_an_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_THING", "x")
    env = sandbox_env(tmp_path, cpus=2)
    assert "SECRET_THING" not in env
    assert env["HOME"] == str(tmp_path)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    assert set(env) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "MPLCONFIGDIR",
        "LANG",
        "LC_ALL",
        "MPLBACKEND",
        "PYTHONHASHSEED",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONNOUSERSITE",
        "OMP_WAIT_POLICY",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    }


def test_parse_final_info_accepts_the_ai_scientist_shape(tmp_path: Path) -> None:
    path = tmp_path / "run_0" / "final_info.json"
    path.parent.mkdir()
    info = {
        "circle": {"means": {"kl": 0.35, "time": 37}, "final_info_dict": {"kl": [0.3, 0.4]}},
        "dino": {"means": {"kl": 1.2}, "stderrs": {"kl": 0.1}},
    }
    path.write_text(json.dumps(info))
    results = parse_final_info(path)
    assert results["circle"].means == {"kl": 0.35, "time": 37.0}
    assert results["dino"].stderrs == {"kl": 0.1}


def test_parse_final_info_rejects_a_list(tmp_path: Path) -> None:
    path = tmp_path / "run_0" / "final_info.json"
    path.parent.mkdir()
    path.write_text("[1, 2]")
    with pytest.raises(FinalInfoError, match="does not match"):
        parse_final_info(path)


def test_no_process_of_ours_left_behind() -> None:
    """Belt and braces: nothing started by these tests still runs as our child.

    The embedded model server that integration tests share for the whole session is a
    child of this process too, on purpose; it is not the runner's.
    """
    deadline = time.monotonic() + 15  # a fixture's teardown may still be reaping (Ray's daemons)
    while (children := _our_children()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [_cmdline(p).replace(b"\0", b" ")[:200] for p in children] == []


def _our_children() -> list[Path]:
    return [
        p
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
        and _parent(p) == os.getpid()
        and _alive(int(p.name))
        and b"gateway._serve" not in _cmdline(p)
        # multiprocessing's resource tracker: started by the first process pool, it lives
        # until this interpreter exits, by design.
        and b"multiprocessing.resource_tracker" not in _cmdline(p)
    ]


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def _parent(proc: Path) -> int:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rfind(")") + 2 :].split()[1])
