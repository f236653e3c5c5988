"""The sandboxed runner's contract, pinned with real processes: the exact environment a
run gets, the limits the launcher applies, how a finished process is classified and
reported, where logs go, and how process groups are found and killed."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.isolation import LAUNCHER
from core.settings import ExperimentsSettings
from scientist.experiments.errors import ExperimentError
from scientist.experiments.runner import (
    FinalInfoError,
    SandboxLimits,
    SandboxRunner,
    cpu_set,
    group_members,
    kill_group,
    parse_final_info,
    sandbox_env,
)

DUMP_STATE = """
import json, os, resource, sys, tempfile
state = {
    "argv": sys.argv,
    "cwd": os.getcwd(),
    "env": dict(os.environ),
    "tempdir": tempfile.gettempdir(),
    "address_space": resource.getrlimit(resource.RLIMIT_AS),
    "core": resource.getrlimit(resource.RLIMIT_CORE),
    "cpus": sorted(os.sched_getaffinity(0)),
    "session_leader": os.getsid(0) == os.getpid(),
    "group_leader": os.getpgid(0) == os.getpid(),
}
with open("state.json", "w") as f:
    json.dump(state, f)
"""


def limits(**values: float) -> SandboxLimits:
    base: dict[str, float] = {"timeout_s": 20, "memory_mb": 512, "cpus": 1}
    return SandboxLimits(**(base | values))


def script(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(body))
    return folder


def state(folder: Path) -> dict[str, object]:
    data = json.loads((folder / "state.json").read_text())
    assert isinstance(data, dict)
    return data


def wait_for(condition: object, what: str) -> None:
    """Poll ``condition`` (a callable) for up to 30 s: a loaded machine is slow."""
    assert callable(condition)
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2]


# ---------------------------------------------------------------- the environment


def test_sandbox_env_is_exactly_the_allow_list(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path, cpus=3, python="/opt/py/bin/python3")
    assert env == {
        "PATH": "/opt/py/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "MPLCONFIGDIR": str(tmp_path / "matplotlib"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": "3",
        "OPENBLAS_NUM_THREADS": "3",
        "MKL_NUM_THREADS": "3",
        "NUMEXPR_NUM_THREADS": "3",
        "VECLIB_MAXIMUM_THREADS": "3",
    }


def test_sandbox_env_takes_the_running_interpreter_by_default(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path, cpus=1)
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_a_run_sees_only_the_sandbox_env_and_its_own_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    python = tmp_path / "interpreter" / "python3"
    python.parent.mkdir()
    python.symlink_to(sys.executable)
    home = tmp_path / "homes" / "sandbox"  # parents do not exist yet
    work = script(tmp_path / "idea", "plot.py", DUMP_STATE)
    runner = SandboxRunner(limits(cpus=1), python=str(python), home=home)
    outcome = runner.run_plot(work)
    assert outcome.status == "ok", outcome
    seen = state(work)
    assert seen["env"] == sandbox_env(home, 1, str(python))
    assert seen["tempdir"] == str(home)
    assert seen["cwd"] == str(work)
    assert seen["argv"] == ["plot.py"]
    assert home.is_dir()  # a home the caller chose is kept for inspection


def test_the_run_reads_nothing_from_our_stdin(tmp_path: Path) -> None:
    work = script(
        tmp_path,
        "plot.py",
        "import os; open('stdin.txt', 'w').write(os.readlink('/proc/self/fd/0'))\n",
    )
    saved = os.dup(0)
    read, write = os.pipe()
    try:
        os.dup2(read, 0)  # our stdin is a pipe now; the run must not inherit it
        os.close(write)
        outcome = SandboxRunner(limits()).run_plot(work)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read)
    assert outcome.status == "ok", outcome
    assert (work / "stdin.txt").read_text() == "/dev/null"


def test_a_given_home_is_reused_and_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # Writes only into the home this test chose, whatever HOME a broken runner passes.
    work = script(
        tmp_path / "idea",
        "plot.py",
        f"import os\nif os.environ.get('HOME') == {str(home)!r}:\n"
        "    open(os.environ['HOME'] + '/n', 'a').write('x')\n",
    )
    runner = SandboxRunner(limits(), home=home)
    assert runner.run_plot(work).status == "ok"
    assert runner.run_plot(work).status == "ok"
    assert (home / "n").read_text() == "xx"


def test_a_default_home_is_private_to_the_run_and_removed(tmp_path: Path) -> None:
    work = script(
        tmp_path,
        "plot.py",
        """
        import os
        home = os.environ.get("HOME", "")
        if os.path.basename(home).startswith("autoscholar-sandbox-"):  # never a real home
            open(os.path.join(home, "scratch"), "w").write("x")
        open("home.txt", "w").write(home)
        """,
    )
    first = SandboxRunner(limits()).run_plot(work)
    first_home = Path((work / "home.txt").read_text())
    second = SandboxRunner(limits()).run_plot(work)
    second_home = Path((work / "home.txt").read_text())
    assert first.status == second.status == "ok"
    assert first_home != second_home
    assert first_home.name.startswith("autoscholar-sandbox-")
    assert not first_home.exists()
    assert not second_home.exists()


def test_a_run_that_removes_its_home_still_gets_an_outcome(tmp_path: Path) -> None:
    # Guarded: under a mutant that leaks the worker's HOME, the script must not delete the
    # real home folder (an unguarded version of this test once did); it fails instead.
    work = script(
        tmp_path,
        "plot.py",
        "import os, shutil, sys\n"
        "home = os.environ.get('HOME', '')\n"
        "if not os.path.basename(home).startswith('autoscholar-sandbox-'):\n"
        "    sys.exit(3)\n"
        "shutil.rmtree(home)\n",
    )
    outcome = SandboxRunner(limits()).run_plot(work)
    assert outcome.status == "ok", outcome


def test_the_default_home_is_removed_when_the_launch_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    runner = SandboxRunner(limits(), python=str(tmp_path / "no-such-python"))
    with pytest.raises(FileNotFoundError):
        runner.run_plot(tmp_path)
    assert list(temp.iterdir()) == []


# ---------------------------------------------------------------- limits


def test_limits_come_from_the_experiments_settings() -> None:
    settings = ExperimentsSettings(
        run_timeout_s=123.0,
        plot_timeout_s=45.0,
        memory_limit_mb=777,
        cpu_limit=3,
        error_tail_lines=17,
    )
    expected = SandboxLimits(
        timeout_s=123.0, plot_timeout_s=45.0, memory_mb=777, cpus=3, tail_lines=17
    )
    assert SandboxLimits.from_settings(settings) == expected
    runner = SandboxRunner.from_settings(settings)
    assert runner.limits == expected
    assert runner.python == sys.executable


def test_the_run_is_limited_in_memory_cpus_and_core_dumps(tmp_path: Path) -> None:
    cpus = min(2, len(os.sched_getaffinity(0)))
    work = script(tmp_path, "experiment.py", DUMP_STATE)
    outcome = SandboxRunner(limits(memory_mb=300, cpus=cpus)).run_experiment(work, "run_3")
    assert outcome.status == "invalid_output"  # no final_info.json, but it ran
    seen = state(work)
    assert seen["address_space"] == [300 * 2**20, 300 * 2**20]
    assert seen["core"] == [0, 0]
    assert seen["cpus"] == sorted(os.sched_getaffinity(0))[:cpus]
    assert seen["argv"] == ["experiment.py", "--out_dir=run_3"]
    assert seen["session_leader"] is True
    assert seen["group_leader"] is True


def test_cpu_set_takes_the_first_cpus_this_process_may_use() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, {allowed[-1]})
        assert cpu_set(1) == {allowed[-1]}
        assert cpu_set(4) == {allowed[-1]}
    finally:
        os.sched_setaffinity(0, set(allowed))
    assert cpu_set(0) == {allowed[0]}  # never no CPU at all
    assert cpu_set(len(allowed) + 5) == set(allowed)


def test_plot_py_runs_under_the_plot_timeout(tmp_path: Path) -> None:
    work = script(tmp_path, "plot.py", "import time; time.sleep(60)\n")
    script(tmp_path, "experiment.py", "pass\n")
    runner = SandboxRunner(limits(timeout_s=60, plot_timeout_s=0.5))
    outcome = runner.run_plot(work)
    assert outcome.status == "timeout"
    assert outcome.reason == "ran past the 0.5 s limit and was killed"
    assert outcome.exit_code is None
    assert outcome.stdout_path == "logs/plot.stdout.txt"
    assert outcome.stderr_path == "logs/plot.stderr.txt"


def test_a_timed_out_run_gets_sigterm_first(tmp_path: Path) -> None:
    work = script(
        tmp_path,
        "experiment.py",
        """
        import signal, sys, time
        def stop(signum, frame):
            print("stopping cleanly", file=sys.stderr, flush=True)
            open("terminated.txt", "w").write(signal.Signals(signum).name)
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        open("started.txt", "w").write("yes")
        time.sleep(60)
        """,
    )
    outcome = SandboxRunner(limits(timeout_s=2)).run_experiment(work, "run_1")
    assert (work / "started.txt").exists(), outcome  # the run got as far as sleeping
    assert outcome.status == "timeout"
    assert (work / "terminated.txt").read_text() == "SIGTERM"
    assert outcome.error_tail == "stopping cleanly"
    assert outcome.results == {}


# ---------------------------------------------------------------- classification


def test_a_run_killed_by_sigkill_counts_as_out_of_memory(tmp_path: Path) -> None:
    work = script(
        tmp_path, "experiment.py", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    outcome = SandboxRunner(limits(memory_mb=640)).run_experiment(work, "run_1")
    assert outcome.status == "memory"
    assert outcome.exit_code == -signal.SIGKILL
    assert outcome.reason == (
        "ran out of memory (limit 640 MB): killed by SIGKILL (the kernel's out-of-memory killer)"
    )


def test_a_run_killed_by_another_signal_is_failed_and_names_it(tmp_path: Path) -> None:
    work = script(
        tmp_path, "experiment.py", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    outcome = SandboxRunner(limits()).run_experiment(work, "run_1")
    assert outcome.status == "failed"
    assert outcome.exit_code == -signal.SIGTERM
    assert outcome.reason == "killed by SIGTERM"
    assert outcome.error_tail == ""


def test_a_memory_message_in_stderr_counts_as_memory(tmp_path: Path) -> None:
    work = script(
        tmp_path,
        "experiment.py",
        """
        import sys
        print("terminate called after throwing an instance of 'std::bad_alloc'", file=sys.stderr)
        print("  what():  std::bad_alloc  ", file=sys.stderr)
        print("", file=sys.stderr)
        sys.exit(134)
        """,
    )
    outcome = SandboxRunner(limits(memory_mb=128)).run_experiment(work, "run_1")
    assert outcome.status == "memory"
    assert outcome.exit_code == 134
    assert outcome.reason == "ran out of memory (limit 128 MB): what():  std::bad_alloc"


def test_a_silent_failure_says_there_was_no_error_output(tmp_path: Path) -> None:
    work = script(tmp_path, "experiment.py", "import sys; sys.exit(3)\n")
    outcome = SandboxRunner(limits()).run_experiment(work, "run_1")
    assert outcome.status == "failed"
    assert outcome.exit_code == 3
    assert outcome.reason == "exit code 3: no error output"
    assert outcome.error_tail == ""


def test_stdout_is_the_tail_when_stderr_is_empty(tmp_path: Path) -> None:
    outcome = SandboxRunner(limits()).execute(
        ["sh", "-c", "seq 1 12; exit 4"], tmp_path, "shell", 20
    )
    assert outcome.status == "failed"
    assert outcome.exit_code == 4
    assert outcome.reason == "exit code 4: 12"
    assert outcome.error_tail == "\n".join(str(n) for n in range(3, 13))  # the last 10
    assert outcome.stdout_path == "logs/shell.stdout.txt"


def test_the_error_tail_keeps_the_last_lines_of_stderr(tmp_path: Path) -> None:
    work = script(
        tmp_path,
        "experiment.py",
        """
        import sys
        sys.stderr.write("\\n\\nfirst\\nsecond\\nthird\\n\\n\\n")
        sys.exit(1)
        """,
    )
    outcome = SandboxRunner(limits(tail_lines=2)).run_experiment(work, "run_1")
    assert outcome.error_tail == "second\nthird"
    assert outcome.reason == "exit code 1: third"


def test_the_error_tail_and_reason_are_bounded(tmp_path: Path) -> None:
    work = script(
        tmp_path,
        "experiment.py",
        """
        import sys
        sys.stderr.write("a" * 5000 + "\\n" + "b" * 5000 + "\\n")
        sys.exit(1)
        """,
    )
    outcome = SandboxRunner(limits()).run_experiment(work, "run_1")
    assert outcome.error_tail == ("a" * 5000 + "\n" + "b" * 5000)[-6000:]
    assert outcome.reason == "exit code 1: " + "b" * 300


def test_undecodable_stderr_is_replaced_not_fatal(tmp_path: Path) -> None:
    work = script(
        tmp_path,
        "experiment.py",
        """
        import sys
        sys.stderr.buffer.write("température\\n".encode() + b"bad \\xff byte\\n")
        sys.exit(2)
        """,
    )
    outcome = SandboxRunner(limits()).run_experiment(work, "run_1")
    assert outcome.status == "failed"
    assert outcome.error_tail == "température\nbad \ufffd byte"


def test_a_run_that_deletes_its_logs_still_gets_an_outcome(tmp_path: Path) -> None:
    work = script(
        tmp_path,
        "experiment.py",
        # Only in its own folder: a mutant that runs it elsewhere must not delete a real logs/.
        "import os, shutil, sys\n"
        "if not os.path.isfile('experiment.py'):\n"
        "    sys.exit(4)\n"
        "shutil.rmtree('logs'); sys.exit(5)\n",
    )
    outcome = SandboxRunner(limits()).run_experiment(work, "run_1")
    assert outcome.status == "failed"
    assert outcome.reason == "exit code 5: no error output"
    assert outcome.error_tail == ""


def test_a_success_has_no_reason_and_no_tail(tmp_path: Path) -> None:
    work = script(tmp_path, "plot.py", "import sys; print('warning: slow', file=sys.stderr)\n")
    outcome = SandboxRunner(limits()).run_plot(work)
    assert outcome.status == "ok"
    assert outcome.reason is None
    assert outcome.exit_code == 0
    assert outcome.error_tail == ""
    assert outcome.seconds >= 0
    assert (work / outcome.stderr_path).read_text() == "warning: slow\n"


def test_seconds_are_the_wall_time_in_milliseconds(tmp_path: Path) -> None:
    work = script(tmp_path, "plot.py", "import time; time.sleep(0.3)\n")
    start = time.monotonic()
    outcome = SandboxRunner(limits()).run_plot(work)
    elapsed = time.monotonic() - start
    assert outcome.status == "ok"
    assert 0.3 <= outcome.seconds <= elapsed + 0.001
    assert outcome.seconds == round(outcome.seconds, 3)


def test_a_missing_program_fails_the_run(tmp_path: Path) -> None:
    other = tmp_path / "other.sh"
    other.write_text("#!/bin/sh\ntouch ran\n")
    other.chmod(0o755)
    outcome = SandboxRunner(limits()).execute(
        ["no-such-program", str(other)], tmp_path, "missing", 20
    )
    assert outcome.status == "failed"
    assert outcome.exit_code == 1
    assert (outcome.reason or "").startswith("exit code 1: FileNotFoundError")
    assert not (tmp_path / "ran").exists()


def test_a_bare_program_name_is_found_on_the_path(tmp_path: Path) -> None:
    outcome = SandboxRunner(limits()).execute(["true"], tmp_path, "true", 20)
    assert outcome.status == "ok", outcome


# ---------------------------------------------------------------- run names and logs


@pytest.mark.parametrize("name", ["run_", "run_1x", "xrun_1", "run_-1", "Run_1"])
def test_only_numbered_run_names_are_accepted(tmp_path: Path, name: str) -> None:
    with pytest.raises(ExperimentError, match=f"Run names look like run_1, not '{name}'"):
        SandboxRunner(limits()).run_experiment(tmp_path, name)
    assert not (tmp_path / "logs").exists()  # refused before anything ran


def test_a_missing_workdir_is_created_with_its_logs(tmp_path: Path) -> None:
    work = tmp_path / "not" / "there"
    outcome = SandboxRunner(limits()).execute(["true"], work, "true", 20)
    assert outcome.status == "ok"
    assert (work / "logs" / "true.stdout.txt").is_file()


def test_a_half_written_log_pair_is_not_reused(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "shell.stdout.txt").write_text("older run\n")
    (tmp_path / "logs" / "shell-2.stderr.txt").write_text("older run\n")
    outcome = SandboxRunner(limits()).execute(["true"], tmp_path, "shell", 20)
    assert outcome.stdout_path == "logs/shell-3.stdout.txt"
    assert outcome.stderr_path == "logs/shell-3.stderr.txt"
    assert (tmp_path / "logs" / "shell.stdout.txt").read_text() == "older run\n"


def test_a_full_log_folder_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "run_1.stdout.txt").touch()
    for attempt in range(2, 1000):
        (logs / f"run_1-{attempt}.stderr.txt").touch()
    with pytest.raises(ExperimentError) as caught:
        SandboxRunner(limits()).execute(["true"], tmp_path, "run_1", 20)
    assert str(caught.value) == f"{logs} holds 999 logs of run_1; clear old ones."
    assert len(list(logs.iterdir())) == 999


# ---------------------------------------------------------------- final_info.json


def _final_info(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "run_4" / "final_info.json"
    path.parent.mkdir(exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_final_info_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FinalInfoError) as missing:
        parse_final_info(tmp_path / "run_4" / "final_info.json")
    assert str(missing.value) == "run_4/final_info.json was not written"
    folder = _final_info(tmp_path, "{}").parent
    with pytest.raises(FinalInfoError) as directory:
        parse_final_info(folder)  # a folder is not a written file
    assert "was not written" in str(directory.value)

    with pytest.raises(FinalInfoError) as mistyped:
        parse_final_info(_final_info(tmp_path, '{"toy": {"means": {"acc": "high"}}}'))
    assert str(mistyped.value) == (
        "run_4/final_info.json does not match "
        '{group: {"means": {metric: number}, "stderrs": {...}}}: '
        "toy.means.acc: Input should be a valid number, unable to parse string as a number"
    )
    assert isinstance(mistyped.value.__cause__, Exception)


def test_final_info_that_is_not_json_or_not_utf8_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(FinalInfoError) as broken:
        parse_final_info(_final_info(tmp_path, '{"toy": '))
    assert str(broken.value).startswith("run_4/final_info.json is not valid JSON (Expecting value")
    with pytest.raises(FinalInfoError, match="is not valid JSON"):
        parse_final_info(_final_info(tmp_path, b'{"t\xff": {"means": {"a": 1}}}'))


def test_final_info_reads_utf8_group_names(tmp_path: Path) -> None:
    info = {"dérivé": {"means": {"précision": 0.5}}}
    path = _final_info(tmp_path, json.dumps(info, ensure_ascii=False))
    assert parse_final_info(path)["dérivé"].means == {"précision": 0.5}


def test_a_non_finite_stderr_is_rejected_by_name(tmp_path: Path) -> None:
    path = _final_info(tmp_path, '{"toy": {"means": {"acc": 1}, "stderrs": {"acc": Infinity}}}')
    with pytest.raises(FinalInfoError) as caught:
        parse_final_info(path)
    assert str(caught.value) == "run_4/final_info.json: group 'toy' metric 'stderr acc' is inf"


# ---------------------------------------------------------------- process groups


@pytest.fixture
def own_group() -> Iterator[subprocess.Popen[bytes]]:
    """A sleeper in a group of its own (same session as the tests), reaped afterwards."""
    process = subprocess.Popen(["sleep", "60"], process_group=0)
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_group_members_finds_a_group_outside_our_session(
    own_group: subprocess.Popen[bytes],
) -> None:
    assert os.getsid(own_group.pid) != own_group.pid  # group and session differ
    assert group_members(own_group.pid) == [own_group.pid]


def test_group_members_skips_zombies(tmp_path: Path) -> None:
    process = subprocess.Popen(["true"], process_group=0)
    try:
        wait_for(lambda: proc_state(process.pid) == "Z", "the child to exit")
        assert group_members(process.pid) == []
    finally:
        process.wait()


def test_group_members_reads_names_with_parentheses(tmp_path: Path) -> None:
    odd = tmp_path / "odd) 1 2 3 4"
    odd.symlink_to(Path("/bin/sleep").resolve())
    process = subprocess.Popen([str(odd), "60"], start_new_session=True)
    try:
        wait_for(lambda: "odd)" in Path(f"/proc/{process.pid}/stat").read_text(), "the exec")
        assert group_members(process.pid) == [process.pid]
    finally:
        process.kill()
        process.wait()


def test_kill_group_sends_sigterm_and_waits_for_a_clean_exit(tmp_path: Path) -> None:
    trap = textwrap.dedent(
        """
        import signal, sys, time
        def stop(signum, frame):
            time.sleep(0.3)  # cleaning up takes a moment
            open(sys.argv[1], "w").write(signal.Signals(signum).name)
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        open(sys.argv[1] + ".ready", "w").write("")
        time.sleep(60)
        """
    )
    marker = tmp_path / "stopped.txt"
    process = subprocess.Popen([sys.executable, "-c", trap, str(marker)], process_group=0)
    try:
        wait_for(lambda: Path(f"{marker}.ready").exists(), "the handler to be installed")
        kill_group(process.pid, grace_s=30)
        assert marker.read_text() == "SIGTERM"
    finally:
        process.kill()
        process.wait()


def test_kill_group_ends_with_sigkill_for_what_ignores_sigterm(tmp_path: Path) -> None:
    ignore = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(sys.argv[1], 'w'); time.sleep(60)"
    )
    ready = tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", ignore, str(ready)], process_group=0)
    wait_for(ready.exists, "SIGTERM to be ignored")
    kill_group(process.pid, grace_s=0.2)
    assert process.wait(timeout=30) == -signal.SIGKILL


def test_kill_group_of_a_finished_group_does_nothing(tmp_path: Path) -> None:
    process = subprocess.Popen(["true"], process_group=0)
    process.wait()
    kill_group(process.pid, grace_s=0)  # no group left: no error


# ---------------------------------------------------------------- the launcher itself


def launch(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``python -I -S _sandbox.py ARGS``, as the runner starts it, in ``tmp_path``."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(LAUNCHER), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


DUMP_LIMITS = (
    "import json, os, resource; print(json.dumps([resource.getrlimit(resource.RLIMIT_AS),"
    " resource.getrlimit(resource.RLIMIT_CORE), sorted(os.sched_getaffinity(0))]))"
)


def test_the_launcher_applies_memory_and_cpu_limits(tmp_path: Path) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    cpus = ",".join(str(c) for c in allowed[:2])
    done = launch(
        "--memory-mb",
        "256",
        "--cpus",
        cpus,
        "--",
        sys.executable,
        "-c",
        DUMP_LIMITS,
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[256 * 2**20] * 2, [0, 0], allowed[:2]]


def test_the_launcher_without_limits_inherits_them(tmp_path: Path) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    address_space = list(resource.getrlimit(resource.RLIMIT_AS))
    for options in ([], ["--memory-mb", "0"]):
        done = launch(*options, "--", sys.executable, "-c", DUMP_LIMITS, tmp_path=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == [address_space, [0, 0], allowed]


def test_the_launcher_applies_even_a_tiny_memory_limit(tmp_path: Path) -> None:
    done = launch(
        "--memory-mb", "1", "--", sys.executable, "-c", "open('ran', 'w')", tmp_path=tmp_path
    )
    assert done.returncode != 0
    assert not (tmp_path / "ran").exists()


def test_the_launcher_without_a_command_separator_prints_its_usage(tmp_path: Path) -> None:
    done = launch("--memory-mb", "256", sys.executable, tmp_path=tmp_path)
    assert done.returncode == 1
    assert done.stderr == "usage: _sandbox.py --memory-mb M --cpus 0,1 -- COMMAND...\n"


def test_the_launcher_refuses_an_option_without_a_value(tmp_path: Path) -> None:
    done = launch(
        "--cpus",
        "0",
        "--memory-mb",
        "--",
        sys.executable,
        "-c",
        "open('ran', 'w')",
        tmp_path=tmp_path,
    )
    assert done.returncode != 0
    assert "ValueError" in done.stderr
    assert not (tmp_path / "ran").exists()
