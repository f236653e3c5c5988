"""A template's own virtualenv, without the network: a fake venv/pip makes the folders.

The real ``python -m venv`` + ``pip install`` and the box are in
``tests/integration/test_template_env.py``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.settings import Settings
from scientist.experiments.environment import (
    MARKER,
    CommandResult,
    EnvRequest,
    EnvStore,
    TemplateEnv,
    run_command,
)
from scientist.experiments.errors import TemplateEnvError
from scientist.experiments.models import ExperimentRecord
from scientist.experiments.requirements import (
    check_requirements,
    failing_requirement,
    requirement_lines,
    requirement_name,
)
from scientist.experiments.runner import SandboxRunner, environment_of
from scientist.experiments.template_check import ENV_CHECK, check_template
from tests.unit.test_template_check import toy_template

PIP_NOT_FOUND = """Collecting humanize==4.17.0 (from -r /x/requirements.txt (line 1))
ERROR: Could not find a version that satisfies the requirement nosuch-pkg==1.0 (from versions: none)
ERROR: No matching distribution found for nosuch-pkg==1.0
"""


class FakePip:
    """Lays out a virtualenv as venv and pip would (a python link, a script, dist-info
    folders), without either; counts the commands and can be slow or fail."""

    def __init__(self, *, fail_with: str | None = None, delay_s: float = 0.0) -> None:
        self.fail_with = fail_with
        self.delay_s = delay_s
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def __call__(self, argv: list[str], cwd: Path, timeout_s: float) -> CommandResult:
        with self._lock:
            self.calls.append(argv)
        if argv[1:3] == ["-m", "venv"]:
            return self._venv(Path(argv[3]))
        time.sleep(self.delay_s)
        if self.fail_with is not None:
            return CommandResult(1, self.fail_with, 0.1)
        site = Path(argv[0]).parent.parent / "lib" / "python3.11" / "site-packages"
        for line in requirement_lines(Path(argv[-1]).read_text()):
            name, _, version = line.partition("==")
            dist = site / f"{name}-{version or '1.0'}.dist-info"
            dist.mkdir(parents=True)
            metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version or '1.0'}\n"
            (dist / "METADATA").write_text(metadata)
        return CommandResult(0, "Successfully installed", 0.1)

    @staticmethod
    def _venv(work: Path) -> CommandResult:
        (work / "bin").mkdir(parents=True)
        (work / "bin" / "python").symlink_to(sys.executable)
        (work / "pyvenv.cfg").write_text(f"home = /usr/bin\ncommand = python -m venv {work}\n")
        script = work / "bin" / "tool"
        script.write_text(f"#!{work}/bin/python\nprint('tool')\n")
        script.chmod(0o700)  # as a umask of 077 would leave it
        return CommandResult(0, "", 0.1)

    def count(self, kind: str) -> int:
        """How many ``venv`` or ``pip`` commands ran."""
        return sum(1 for argv in self.calls if argv[2] == kind)


def store(root: Path, fake: FakePip) -> EnvStore:
    return EnvStore(root, sys.executable, install_timeout_s=60, run=fake)


def env_template(tmp_path: Path, requirements: str = "humanize==4.17.0\n") -> Path:
    folder = toy_template(tmp_path / "env_toy")
    (folder / "requirements.txt").write_text(requirements)
    return folder


def request_of(envs: EnvStore, folder: Path) -> EnvRequest:
    request = envs.request_for(folder)
    assert request is not None
    return request


def test_requirement_lines_and_names_read_as_pip_reads_them() -> None:
    text = (
        "# the model\n"
        "torch==2.3.1  # CPU wheel\n"
        "\n"
        "numpy>=1.26,\\\n  <3\n"
        "Humanize[extra] ; python_version >= '3.8'\n"
        "--extra-index-url https://example.org/simple\n"
        "https://example.org/pkg-1.0.tar.gz\n"
        "./wheels/local.whl\n"
        "pkg @ https://example.org/pkg.whl\n"
    )
    lines = requirement_lines(text)
    assert lines[:2] == ["torch==2.3.1", "numpy>=1.26,  <3"]
    assert [requirement_name(line) for line in lines] == [
        "torch",
        "numpy",
        "Humanize",
        None,
        None,
        None,
        "pkg",
    ]


@pytest.mark.parametrize(
    "line", ["-r other.txt", "--requirement=other.txt", "-cconstraints.txt", "-c c.txt"]
)
def test_include_lines_are_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(TemplateEnvError, match="includes another file"):
        check_requirements(f"numpy\n{line}\n", tmp_path / "requirements.txt")


def test_the_key_covers_the_requirements_text_and_the_python_version(tmp_path: Path) -> None:
    base = EnvRequest(
        template_dir=tmp_path, requirements="a==1\n", python="python", python_version="3.11.7"
    )
    same = base.model_copy(update={"template_dir": tmp_path / "elsewhere"})
    assert same.key == base.key  # two templates asking for the same thing share one
    assert base.model_copy(update={"requirements": "a==2\n"}).key != base.key
    assert base.model_copy(update={"python_version": "3.12.1"}).key != base.key


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (PIP_NOT_FOUND, "nosuch-pkg==1.0"),
        ("ERROR: Invalid requirement: 'num py'\n", "num py"),
        ("ERROR: Failed building wheel for lxml\n", "lxml"),  # a dependency, not a line
        ("ERROR: Could not build wheels for Nosuch_Pkg, which is required\n", "nosuch-pkg==1.0"),
        ("Killed\n", None),
    ],
)
def test_the_failing_requirement_is_read_from_pips_output(
    output: str, expected: str | None
) -> None:
    lines = ["humanize==4.17.0", "nosuch-pkg==1.0"]
    assert failing_requirement(output, lines) == expected


def test_an_environment_is_made_once_then_reused(tmp_path: Path) -> None:
    folder, root = env_template(tmp_path), tmp_path / "envs"
    first = FakePip()
    made = store(root, first).ensure(request_of(store(root, first), folder))
    assert (first.count("venv"), first.count("pip")) == (1, 1)
    assert made.packages == {"humanize": "4.17.0"}
    assert made.requirements == ["humanize==4.17.0"]
    target = Path(made.path)
    assert target.parent == root and target.name == made.key
    assert not list(root.glob(".tmp-*"))
    # made in a temporary folder: the script's #! line was rewritten to where it lives now
    assert (target / "bin" / "tool").read_text().startswith(f"#!{target}/bin/python\n")
    assert (target / "bin" / "tool").stat().st_mode & 0o055 == 0o055  # nobody may run it
    assert target.stat().st_mode & 0o005 == 0o005
    marker_mtime = (target / MARKER).stat().st_mtime_ns

    again = FakePip()  # a later process: a new store over the same folder
    reused = store(root, again).ensure(request_of(store(root, again), folder))
    assert again.calls == []
    assert reused == made
    assert (target / MARKER).stat().st_mtime_ns == marker_mtime


def test_concurrent_runs_make_one_environment(tmp_path: Path) -> None:
    folder, root = env_template(tmp_path), tmp_path / "envs"
    fake = FakePip(delay_s=0.5)
    results: list[object] = []

    def make() -> None:
        envs = store(root, fake)  # each with its own lock file handle, as processes have
        results.append(envs.ensure(request_of(envs, folder)))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (fake.count("venv"), fake.count("pip")) == (1, 1)
    assert len(results) == 4 and all(r == results[0] for r in results)


def test_a_failed_install_names_the_requirement_and_leaves_nothing(tmp_path: Path) -> None:
    folder = env_template(tmp_path, "humanize==4.17.0\nnosuch-pkg==1.0\n")
    root, fake = tmp_path / "envs", FakePip(fail_with=PIP_NOT_FOUND)
    envs = store(root, fake)
    with pytest.raises(TemplateEnvError) as caught:
        envs.ensure(request_of(envs, folder))
    error = caught.value
    assert error.requirement == "nosuch-pkg==1.0"
    assert "No matching distribution found for nosuch-pkg==1.0" in error.pip_tail
    assert "requirement 2 of" in str(error) and str(folder / "requirements.txt") in str(error)
    assert "scientist template check" in str(error)
    assert error.exit_code == 2
    assert [p.name for p in root.iterdir() if not p.name.endswith(".lock")] == []


def test_a_killed_build_and_a_broken_environment_are_cleared(tmp_path: Path) -> None:
    folder, root = env_template(tmp_path), tmp_path / "envs"
    envs = store(root, FakePip())
    request = request_of(envs, folder)
    (root / f".tmp-{request.key}-killed" / "bin").mkdir(parents=True)
    (root / request.key / "bin").mkdir(parents=True)  # no marker: never finished
    made = envs.ensure(request)
    assert (Path(made.path) / MARKER).is_file()
    assert not list(root.glob(".tmp-*"))


def test_a_runner_remembers_a_failure_instead_of_running_pip_again(tmp_path: Path) -> None:
    fake = FakePip(fail_with=PIP_NOT_FOUND)
    environment = TemplateEnv(store(tmp_path / "envs", fake), env_template(tmp_path))
    for _ in range(2):
        with pytest.raises(TemplateEnvError):
            environment.ensure()
    assert fake.count("pip") == 1


def test_python_version_file(tmp_path: Path) -> None:
    folder = env_template(tmp_path)
    envs = store(tmp_path / "envs", FakePip())
    ours = ".".join(map(str, sys.version_info[:2]))
    (folder / ".python-version").write_text(f"{ours}\n")
    assert request_of(envs, folder).python_version.startswith(f"{ours}.")
    (folder / ".python-version").write_text("3.99\n")
    with pytest.raises(TemplateEnvError, match=r"asks for Python 3\.99"):
        envs.request_for(folder)
    (folder / ".python-version").write_text("banana\n")
    with pytest.raises(TemplateEnvError, match=r"write a version such as 3\.11"):
        envs.request_for(folder)


def test_template_check_names_the_missing_packages_and_the_command(tmp_path: Path) -> None:
    folder, root = env_template(tmp_path), tmp_path / "envs"
    envs = store(root, FakePip())
    before = {i.name: i for i in check_template(folder, None, envs).items}[ENV_CHECK]
    assert before.ok
    assert "not made yet; missing: humanize;" in before.detail
    assert f"{sys.executable} -m venv {root}/" in before.detail
    assert "/bin/python -m pip install -r requirements.txt" in before.detail
    assert not root.exists()  # a static check makes nothing

    envs.ensure(request_of(envs, folder))
    after = {i.name: i for i in check_template(folder, None, envs).items}[ENV_CHECK]
    assert after.ok and after.detail.startswith(f"ready: {root}/")
    assert "humanize 4.17.0" in after.detail


def test_template_check_stops_before_the_baseline_when_the_install_fails(tmp_path: Path) -> None:
    folder = env_template(tmp_path, "nosuch-pkg==1.0\n")
    envs = store(tmp_path / "envs", FakePip(fail_with=PIP_NOT_FOUND))
    runner = SandboxRunner.from_settings(Settings().experiments, TemplateEnv(envs, folder))
    items = {i.name: i for i in check_template(folder, runner, envs).items}
    assert not items["environment made"].ok
    assert "nosuch-pkg==1.0" in items["environment made"].detail
    assert "baseline runs (sandbox)" not in items


def test_a_template_without_requirements_runs_on_our_interpreter(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    plain = toy_template(tmp_path / "plain")
    runner = SandboxRunner.for_template(make_settings(), plain)
    assert runner.interpreter() == runner.python == sys.executable
    assert environment_of(runner) is None
    assert not (tmp_path / "data" / "envs").exists()

    off = make_settings(experiments={"template_envs": False})
    with_requirements = env_template(tmp_path)
    runner = SandboxRunner.for_template(off, with_requirements)
    assert runner.environment is None and runner.interpreter() == sys.executable
    item = {i.name: i for i in check_template(with_requirements).items}[ENV_CHECK]
    assert "autoscholar's interpreter" in item.detail


def test_the_store_follows_the_settings(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    envs = EnvStore.from_settings(settings)
    assert envs is not None and envs.root == settings.data_dir.absolute() / "envs"
    assert envs.python == sys.executable
    custom = EnvStore.from_settings(
        make_settings(experiments={"env_dir": "/srv/envs", "env_install_timeout_s": 60})
    )
    assert custom is not None and custom.root == Path("/srv/envs")
    assert custom.install_timeout_s == 60


def test_an_experiments_json_written_before_environments_still_loads() -> None:
    record = {
        "idea_name": "x",
        "template": "t",
        "baseline": {
            "run_name": "run_0",
            "status": "ok",
            "seconds": 1.0,
            "stdout_path": "logs/run_0.stdout.txt",
            "stderr_path": "logs/run_0.stderr.txt",
        },
    }
    loaded = ExperimentRecord.model_validate_json(json.dumps(record))
    assert loaded.environment is None
    assert "environment" in json.loads(loaded.model_dump_json())


def test_pip_gets_its_settings_but_no_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("AUTOSCHOLAR_LLM__MODELS__CODER", "x")
    probe = "import json, os; print(json.dumps(dict(os.environ)))"
    done = run_command([sys.executable, "-c", probe], tmp_path, 30)
    seen = json.loads(done.output)
    assert seen["PIP_INDEX_URL"] == "https://mirror.example/simple"
    assert "OPENAI_API_KEY" not in seen and not any(k.startswith("AUTOSCHOLAR_") for k in seen)
    assert seen["PATH"] == os.environ["PATH"]


def test_a_pip_that_hangs_is_killed_at_the_limit(tmp_path: Path) -> None:
    start = time.monotonic()
    done = run_command([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, 0.5)
    assert done.returncode is None
    assert time.monotonic() - start < 10
