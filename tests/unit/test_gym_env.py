"""The research gym's environment (issue #18): check_env on the shipped templates, every
command in a hand-made template's workspace through the real sandbox, path escapes, rewards
in both directions, budgets, the trajectory and the episode result.

The hand-made template's experiment reads its score from ``value.txt``, so an edit decides
the metric and each run takes a fraction of a second. check_env on the shipped templates
uses :class:`CannedRunner` for the baseline (the real ones of grokking and diffusion_2d take
15-20 s); ``tests/integration/test_gym_digits.py`` runs digits for real.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

from core.isolation import Isolation, IsolationUnavailableError, check_bwrap
from core.settings import Settings
from gateway.errors import EXIT_USAGE
from gateway.ledger import Ledger
from gateway.types import LedgerEntry
from scientist.experiments.models import ProcessOutcome, RunOutcome
from scientist.experiments.runner import SandboxLimits, SandboxRunner, parse_final_info
from scientist.experiments.workspace import copy_template
from scientist.gym.env import ResearchEnv
from scientist.gym.errors import EpisodeStateError, TaskFileError
from scientist.gym.models import TaskSpec
from scientist.gym.observations import OBSERVATION_MAX_CHARS
from scientist.gym.registration import benchmark_templates, env_id, register_envs
from scientist.gym.task import load_task
from scientist.gym.trajectory import read_trajectory
from scientist.ideas.template import resolve_template
from tests.clock import ManualClock

SHIPPED = ("digits", "grokking", "diffusion_2d")
EXPERIMENT = """import argparse, json, os
parser = argparse.ArgumentParser()
parser.add_argument("--out_dir", default="run_0")
out = parser.parse_args().out_dir
os.makedirs(out, exist_ok=True)
value = float(open("value.txt").read())
info = {"toy": {"means": {"score": value, "calls": 1.0}, "stderrs": {"score": 0.0}}}
with open(os.path.join(out, "final_info.json"), "w") as f:
    json.dump(info, f)
print("score", value)
"""


def _isolation() -> Isolation:
    try:
        check_bwrap()
    except IsolationUnavailableError:
        return "none"
    return "bwrap"


ISOLATION = _isolation()
boxed_only = pytest.mark.skipif(ISOLATION != "bwrap", reason="bubblewrap cannot run here")


def sandbox() -> SandboxRunner:
    limits = SandboxLimits(timeout_s=60, memory_mb=4096, cpus=1)
    return SandboxRunner(limits, isolation=ISOLATION)


def make_template(root: Path, direction: str = "higher", value: str = "0.5") -> Path:
    """A template whose score is the number in value.txt."""
    folder = root / "toy"
    folder.mkdir(parents=True)
    (folder / "experiment.py").write_text(EXPERIMENT)
    (folder / "value.txt").write_text(value + "\n")
    (folder / "prompt.json").write_text(
        json.dumps({"system": "s", "task_description": "Tune the number in value.txt."})
    )
    task = {"name": "toy", "metric": ["toy", "means", "score"], "direction": direction}
    (folder / "task.json").write_text(json.dumps(task | {"description": "Move the score."}))
    return folder


class CannedRunner:
    """Answers every run with a canned final_info.json holding the task's metric; counts the
    runs. Only for check_env, whose random actions never parse into a command."""

    def __init__(self, spec: TaskSpec, value: float = 0.5) -> None:
        self.spec, self.value = spec, value
        self.runs: list[str] = []

    def run_experiment(self, workdir: Path, run_name: str) -> RunOutcome:
        self.runs.append(run_name)
        group, _, name = self.spec.metric
        (workdir / run_name).mkdir(parents=True, exist_ok=True)
        info = {group: {"means": {name: self.value}, "stderrs": {name: 0.01}}}
        (workdir / run_name / "final_info.json").write_text(json.dumps(info))
        results = parse_final_info(workdir / run_name / "final_info.json")
        return RunOutcome(
            run_name=run_name,
            status="ok",
            seconds=0.0,
            results=results,
            stdout_path="",
            stderr_path="",
        )

    def run_plot(self, workdir: Path) -> ProcessOutcome:
        raise AssertionError("the gym never plots")

    def execute(
        self, command: list[str], workdir: Path, log_stem: str, timeout_s: float
    ) -> ProcessOutcome:
        raise AssertionError("check_env's random actions never reach the sandbox")

    def interpreter(self) -> str:
        return sys.executable


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return make_template(tmp_path / "templates")


def toy_env(settings: Settings, template: Path, **kwargs: Any) -> ResearchEnv:
    kwargs.setdefault("runner", sandbox())
    return ResearchEnv(template, settings=settings, root=template.parent.parent / "eps", **kwargs)


def act(env: ResearchEnv, **action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
    return env.step(json.dumps(action))


# ---- registration and check_env -------------------------------------------------------


def test_every_shipped_template_declares_a_task_and_is_registered() -> None:
    assert benchmark_templates() == sorted(SHIPPED)
    assert register_envs() == [env_id(name) for name in sorted(SHIPPED)]
    for name in SHIPPED:
        assert env_id(name) in gymnasium.registry
        spec = load_task(name).spec
        assert spec.name == name and spec.metric[1] == "means"
    assert {load_task(n).spec.direction for n in SHIPPED} == {"higher", "lower"}


def shipped_copy(name: str, tmp_path: Path) -> Path:
    """The shipped template without any run_0 a `scientist baseline` left in it, so the
    baseline comes from the canned runner on every machine."""
    folder = tmp_path / "templates" / name
    copy_template(resolve_template(name), folder)
    return folder


@pytest.mark.parametrize("name", SHIPPED)
def test_check_env_passes_for_each_shipped_template(
    name: str, settings: Settings, tmp_path: Path
) -> None:
    runner = CannedRunner(load_task(name).spec, value=0.5)
    template = shipped_copy(name, tmp_path)
    env = gymnasium.make(
        env_id(name), template=template, settings=settings, runner=runner, root=tmp_path / "eps"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    # The baseline ran once; every later reset reused it.
    assert runner.runs == ["run_0"]
    observation, info = env.reset(seed=7)
    assert load_task(name).metric_label in observation
    assert info["baseline"] == 0.5
    assert "run_0/final_info.json" in observation
    env.close()


def test_check_env_passes_on_the_bare_env_with_its_step_determinism(
    settings: Settings, tmp_path: Path
) -> None:
    """Without a spec, check_env also replays a step after equal seeds and compares."""
    runner = CannedRunner(load_task("digits").spec)
    template = shipped_copy("digits", tmp_path)
    env = ResearchEnv(template, settings=settings, runner=runner, root=tmp_path / "eps")
    check_env(env, skip_render_check=True)


def test_make_builds_without_running_anything(settings: Settings, tmp_path: Path) -> None:
    runner = CannedRunner(load_task("grokking").spec)
    env = gymnasium.make(env_id("grokking"), settings=settings, runner=runner, root=tmp_path)
    assert isinstance(env.unwrapped, ResearchEnv)
    assert env.unwrapped.task.spec.direction == "lower"
    assert runner.runs == []


# ---- task files ------------------------------------------------------------------------


def test_a_template_without_task_json_cannot_be_benchmarked(settings: Settings, toy: Path) -> None:
    (toy / "task.json").unlink()
    with pytest.raises(TaskFileError) as raised:
        ResearchEnv(toy, settings=settings, runner=sandbox())
    assert raised.value.exit_code == EXIT_USAGE
    assert "cannot be benchmarked" in str(raised.value) and "task.json" in str(raised.value)


def test_a_malformed_task_json_says_what_is_wrong(settings: Settings, toy: Path) -> None:
    (toy / "task.json").write_text(json.dumps({"name": "toy", "metric": [], "direction": "up"}))
    with pytest.raises(TaskFileError, match=r"metric.*direction"):
        ResearchEnv(toy, settings=settings, runner=sandbox())


def test_a_metric_the_baseline_lacks_fails_at_reset(settings: Settings, toy: Path) -> None:
    task = json.loads((toy / "task.json").read_text())
    (toy / "task.json").write_text(json.dumps(task | {"metric": ["toy", "means", "nope"]}))
    env = toy_env(settings, toy)
    with pytest.raises(TaskFileError, match=r"'nope'.*found: calls, score"):
        env.reset()


# ---- reset -----------------------------------------------------------------------------


def test_reset_shows_task_baseline_files_commands_and_budget(settings: Settings, toy: Path) -> None:
    env = toy_env(settings, toy, limits={"max_steps": 7})
    observation, info = env.reset(options={"episode": "first"})
    assert "Tune the number in value.txt." in observation
    assert "Move the score." in observation
    assert "`toy.means.score`" in observation and "higher is better" in observation
    assert "Baseline (run_0): 0.5" in observation
    assert "value.txt (4 bytes)" in observation
    assert '{"command": "validate"}' in observation
    assert "At most 7 steps" in observation
    workspace = Path(info["workspace"])
    assert workspace == toy.parent.parent / "eps" / "first" / "workspace"
    assert (workspace / "run_0" / "final_info.json").is_file()
    assert info["baseline"] == 0.5
    assert info["baseline_metrics"] == {"toy": {"score": 0.5, "calls": 1.0}}
    episode = json.loads((workspace.parent / "episode.json").read_text())
    assert episode["baseline"] == 0.5 and episode["limits"]["max_steps"] == 7


def test_reset_gives_a_fresh_workspace_and_reuses_the_baseline(
    settings: Settings, toy: Path
) -> None:
    runner = CannedRunner(
        TaskSpec(name="toy", metric=["toy", "means", "score"], direction="higher")
    )
    env = toy_env(settings, toy, runner=runner)
    _, first = env.reset()
    (Path(first["workspace"]) / "value.txt").write_text("9\n")
    _, second = env.reset()
    assert first["episode"] == "episode-001" and second["episode"] == "episode-002"
    assert (Path(second["workspace"]) / "value.txt").read_text() == "0.5\n"
    other = toy_env(settings, toy, runner=runner)  # same data_dir: same baseline cache
    other.reset(options={"episode": "x"})
    assert runner.runs == ["run_0"]


def test_step_before_reset_is_a_usage_error(settings: Settings, toy: Path) -> None:
    with pytest.raises(EpisodeStateError, match="reset"):
        toy_env(settings, toy).step('{"command": "validate"}')


# ---- the file commands -----------------------------------------------------------------


@pytest.fixture
def env(settings: Settings, toy: Path) -> ResearchEnv:
    made = toy_env(settings, toy)
    made.reset()
    return made


def workspace_of(env: ResearchEnv) -> Path:
    assert env.episode is not None
    return env.episode.workspace


def test_open_numbers_the_lines_of_a_range(env: ResearchEnv) -> None:
    observation, reward, terminated, truncated, info = act(
        env, command="open", path="experiment.py", start=6, end=7
    )
    assert observation.splitlines() == [
        "[experiment.py: lines 6-7 of 10]",
        '6| value = float(open("value.txt").read())',
        '7| info = {"toy": {"means": {"score": value, "calls": 1.0}, "stderrs": {"score": 0.0}}}',
    ]
    assert (reward, terminated, truncated, info["command"]) == (0.0, False, False, "open")


def test_open_defaults_to_the_view_window_and_refuses_a_start_past_the_end(
    settings: Settings, toy: Path
) -> None:
    env = toy_env(settings, toy, limits={"view_lines": 3})
    env.reset()
    observation = act(env, command="view", path="experiment.py")[0]
    assert observation.splitlines()[0] == "[experiment.py: lines 1-3 of 10]"
    assert len(observation.splitlines()) == 4
    observation, _, _, _, info = act(env, command="open", path="experiment.py", start=11)
    assert observation == "Error: experiment.py has 10 lines; start 11 is past its end."
    assert info["error"] is not None


def test_edit_replaces_an_inclusive_range_and_warns_on_broken_python(env: ResearchEnv) -> None:
    observation = act(env, command="edit", path="value.txt", start=1, end=1, text="0.8")[0]
    assert observation.startswith("Replaced lines 1-1 of value.txt with 1 lines.")
    assert (workspace_of(env) / "value.txt").read_text() == "0.8\n"
    observation = act(env, command="edit", path="experiment.py", start=2, end=3, text="x = (")[0]
    lines = (workspace_of(env) / "experiment.py").read_text().splitlines()
    assert lines[1] == "x = (" and len(lines) == 9
    assert "Warning: experiment.py no longer parses: line 2" in observation
    observation = act(env, command="edit", path="value.txt", start=2, end=1, text="")[0]
    assert observation.startswith("Error: end (1) is before start (2)")


def test_insert_after_a_line_and_at_the_top(env: ResearchEnv) -> None:
    act(env, command="insert", path="value.txt", line=1, text="# after\n# more")
    observation = act(env, command="insert", path="value.txt", line=0, text="# top")[0]
    assert observation.startswith("Inserted 1 lines after line 0 of value.txt.")
    assert (workspace_of(env) / "value.txt").read_text() == "# top\n0.5\n# after\n# more\n"
    assert act(env, command="insert", path="value.txt", line=9, text="x")[0].startswith(
        "Error: value.txt has 4 lines"
    )


def test_create_makes_and_replaces_whole_files(env: ResearchEnv) -> None:
    observation = act(env, command="create", path="pkg/helper.py", text="print('hi')\n")[0]
    assert observation == "Created pkg/helper.py (1 lines)."
    observation = act(env, command="create", path="pkg/helper.py", text="A = 1\nB = 2")[0]
    assert observation == "Replaced pkg/helper.py (2 lines)."
    assert (workspace_of(env) / "pkg" / "helper.py").read_text() == "A = 1\nB = 2\n"
    assert act(env, command="create", path="pkg", text="x")[0].startswith("Error: pkg is a folder")


def test_search_lists_matches_in_the_box(env: ResearchEnv) -> None:
    observation = act(env, command="search", pattern=r"value\b", path=".")[0]
    lines = observation.splitlines()
    assert lines[0] == "4 matches in 2 files:"  # experiment.py thrice, prompt.json once
    assert lines[1].startswith("experiment.py:6: value = float(")
    assert lines[4].startswith('prompt.json:1: {"system": "s"')
    assert act(env, command="search", pattern="zzz_nowhere")[0] == "No line matches 'zzz_nowhere'."
    observation = act(env, command="search", pattern="(unclosed")[0]
    assert observation.startswith("Error: The pattern is not a valid Python regular expression")


def test_search_caps_the_matches_shown(settings: Settings, toy: Path) -> None:
    (toy / "many.txt").write_text("hit\n" * 30)
    env = toy_env(settings, toy, limits={"search_results": 5})
    env.reset()
    observation = act(env, command="search", pattern="^hit$", path="many.txt")[0]
    assert observation.splitlines()[0] == (
        "30 matches in 1 files (first 5 shown; narrow the pattern or the path):"
    )
    assert len(observation.splitlines()) == 6


# ---- python and bash in the sandbox ----------------------------------------------------


def test_python_runs_inline_code_and_scripts_with_arguments(env: ResearchEnv) -> None:
    observation = act(env, command="python", code="print(6 * 7)")[0]
    lines = observation.splitlines()
    assert lines[0].startswith("[exit code 0; ") and lines[1:3] == ["--- stdout ---", "42"]
    act(env, command="create", path="echo.py", text="import sys\nprint(sys.argv[1:])")
    observation = act(env, command="python", path="echo.py", args=["--n", "3"])[0]
    assert "['--n', '3']" in observation
    observation = act(env, command="python", code="import sys; sys.exit('boom')")[0]
    assert observation.startswith("[failed: exit code 1: boom;")
    assert "--- stderr ---\nboom" in observation


def test_bash_runs_in_the_workspace_on_the_experiment_interpreter(env: ResearchEnv) -> None:
    observation = act(
        env, command="bash", cmd="cat value.txt && python -c 'import sys; print(sys.prefix)'"
    )[0]
    lines = observation.splitlines()
    assert lines[1:3] == ["--- stdout ---", "0.5"]
    assert lines[3] == sys.prefix


@boxed_only
def test_bash_cannot_write_outside_the_workspace(env: ResearchEnv, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    observation = act(env, command="bash", cmd=f"echo x > {outside}; touch /etc/gym-probe")[0]
    assert not outside.exists() and not Path("/etc/gym-probe").exists()
    assert "Read-only file system" in observation or "No such file" in observation


def test_long_output_is_cut_with_a_note(settings: Settings, toy: Path) -> None:
    env = toy_env(settings, toy, limits={"output_chars": 1000})
    env.reset()
    observation = act(env, command="python", code="print('a' * 5000 + 'END')")[0]
    assert "characters cut from the middle of the output" in observation
    assert observation.rstrip().endswith("END")
    assert len(observation) < 1200
    observation = act(env, command="create", path="big.txt", text="b" * 3000)[0]
    observation = act(env, command="open", path="big.txt")[0]
    assert "more characters cut" in observation and len(observation) < 1200


# ---- paths stay inside the workspace ----------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        {"command": "open", "path": "../toy/value.txt"},
        {"command": "open", "path": "/etc/passwd"},
        {"command": "edit", "path": "../../x", "start": 1, "end": 1, "text": ""},
        {"command": "create", "path": "sub/../../escape.txt", "text": "x"},
        {"command": "insert", "path": "~/x", "line": 0, "text": "x"},
        {"command": "search", "pattern": "root", "path": "/etc"},
        {"command": "python", "path": "../x.py"},
    ],
)
def test_paths_out_of_the_workspace_are_refused(env: ResearchEnv, action: dict[str, Any]) -> None:
    observation, reward, terminated, _, info = env.step(json.dumps(action))
    assert observation.startswith("Error: ")
    assert "workspace" in observation or "absolute" in observation
    assert (reward, terminated, info["command"]) == (0.0, False, action["command"])
    assert not (workspace_of(env).parent / "escape.txt").exists()


def test_symlinks_out_of_the_workspace_are_refused(env: ResearchEnv, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret\n")
    os.symlink(secret, workspace_of(env) / "link.txt")
    os.symlink(tmp_path, workspace_of(env) / "linkdir")
    for action in (
        {"command": "open", "path": "link.txt"},
        {"command": "edit", "path": "link.txt", "start": 1, "end": 1, "text": "x"},
        {"command": "create", "path": "linkdir/new.txt", "text": "x"},
        {"command": "search", "pattern": "s3cret", "path": "linkdir"},
    ):
        observation = env.step(json.dumps(action))[0]
        assert observation.startswith("Error: ") and "through a symlink" in observation
    assert secret.read_text() == "s3cret\n"
    assert not (tmp_path / "new.txt").exists()


def test_a_logs_symlink_made_by_the_agent_is_not_followed(env: ResearchEnv, tmp_path: Path) -> None:
    """The runner writes each command's logs from the host: a ``logs`` symlink to another
    folder would make it write there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    logs = workspace_of(env) / "logs"
    for old in logs.iterdir():
        old.unlink()
    logs.rmdir()
    os.symlink(elsewhere, logs)
    act(env, command="python", code="print(1)")
    assert list(elsewhere.iterdir()) == []
    assert logs.is_dir() and not logs.is_symlink()


@boxed_only
def test_a_run_that_links_its_logs_to_a_host_file_does_not_show_it(
    env: ResearchEnv, tmp_path: Path
) -> None:
    """The host reads a run's logs back; a run that swaps its stderr for a link to a host
    file must not get that file shown (nor its last line quoted as the reason)."""
    secret = tmp_path / "host-secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    secret.chmod(0o600)
    swap = (
        "import os, sys; "
        "p = 'logs/step_1.stderr.txt'; os.remove(p); "
        f"os.symlink({str(secret)!r}, p); sys.exit(3)"
    )
    observation = act(env, command="python", code=swap)[0]
    assert "TOP-SECRET-LINE" not in observation
    assert "exit code 3" in observation  # the runner removed the link before reading logs
    act(env, command="create", path="experiment.py", text=swap.replace("step_1", "run_1"))
    observation = act(env, command="validate")[0]
    assert "TOP-SECRET-LINE" not in observation
    assert "No metric; reward 0." in observation


# ---- bad actions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"command": "rm"}', "Unknown command 'rm'"),
        ('{"path": "x"}', "Unknown command None"),
        ('{"command": "edit", "path": "value.txt"}', "start: Field required"),
        ('{"command": "python", "path": "a.py", "code": "1"}', "exactly one of path"),
        ('{"command": "validate", "now": true}', "now: Extra inputs are not permitted"),
        (42, "not int"),
    ],
)
def test_bad_actions_are_explained_with_reward_zero(
    env: ResearchEnv, action: Any, message: str
) -> None:
    observation, reward, terminated, truncated, info = env.step(action)
    assert observation.startswith("Error: ") and message in observation
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["error"] is not None and info["step"] == 1


# ---- validate, submit and rewards -------------------------------------------------------


def test_validate_after_an_improving_edit_is_rewarded_higher_is_better(
    env: ResearchEnv,
) -> None:
    act(env, command="edit", path="value.txt", start=1, end=1, text="0.75")
    observation, reward, terminated, _, info = act(env, command="validate")
    assert reward == pytest.approx(0.25)
    assert not terminated
    assert info["metric"] == 0.75 and info["best"] == 0.75 and info["run"] == "run_1"
    assert info["metrics"] == {"toy": {"score": 0.75, "calls": 1.0}}
    assert (
        "toy.means.score = 0.75 (higher is better; baseline 0.5; best so far 0.75)" in observation
    )
    assert "Reward +0.25." in observation
    act(env, command="edit", path="value.txt", start=1, end=1, text="0.25")
    _, reward, _, _, info = act(env, command="validate")
    assert reward == pytest.approx(-0.25)
    assert info["best"] == 0.75 and info["run"] == "run_2"


def test_lower_is_better_rewards_a_decrease(settings: Settings, tmp_path: Path) -> None:
    template = make_template(tmp_path / "templates", direction="lower", value="2.0")
    env = toy_env(settings, template)
    env.reset()
    act(env, command="create", path="value.txt", text="1.5")
    observation, reward, *_ = act(env, command="validate")
    assert reward == pytest.approx(0.5)
    assert "lower is better" in observation
    act(env, command="create", path="value.txt", text="3.0")
    _, reward, _, _, info = act(env, command="validate")
    assert reward == pytest.approx(-1.0)
    assert info["best"] == 1.5
    _, reward, terminated, _, info = act(env, command="submit")
    assert reward == pytest.approx(-1.0) and terminated
    result = env.episode_result("m")
    assert (result.best_attempt, result.submission, result.direction) == (1.5, 3.0, "lower")


def test_a_failing_run_earns_zero_and_shows_its_error(env: ResearchEnv) -> None:
    act(env, command="create", path="value.txt", text="not a number")
    observation, reward, _, _, info = act(env, command="validate")
    assert reward == 0.0 and info["metric"] is None and info["run_status"] == "failed"
    assert "No metric; reward 0." in observation
    assert "ValueError: could not convert string to float" in observation


def test_a_run_without_the_metric_earns_zero(env: ResearchEnv) -> None:
    act(env, command="bash", cmd="sed -i 's/\"score\": value, //' experiment.py")
    observation, reward, _, _, info = act(env, command="validate")
    assert reward == 0.0 and info["metric"] is None and info["run_status"] == "ok"
    assert "final_info.json has no 'score' under toy.means (found: calls)" in observation


def test_a_folder_the_agent_made_cannot_pass_for_a_run(env: ResearchEnv) -> None:
    fake = {"toy": {"means": {"score": 99.0}}}
    act(env, command="create", path="run_1/final_info.json", text=json.dumps(fake))
    _, reward, _, _, info = act(env, command="validate")
    assert info["run"] == "run_1" and info["metric"] == 0.5 and reward == 0.0


def test_submit_ends_the_episode_and_the_result_holds_the_best(env: ResearchEnv) -> None:
    act(env, command="create", path="value.txt", text="0.9")
    act(env, command="validate")
    act(env, command="create", path="value.txt", text="0.6")
    observation, reward, terminated, truncated, info = act(env, command="submit")
    assert terminated and not truncated and reward == pytest.approx(0.1)
    assert observation.endswith("Submitted: the episode ends.")
    assert info["submission"] == 0.6
    with pytest.raises(EpisodeStateError, match="is over"):
        act(env, command="validate")
    result = env.episode_result("scripted", attempt=2)
    assert result.status == "submitted" and result.reason is None
    assert (result.best_attempt, result.submission, result.baseline) == (0.9, 0.6, 0.5)
    assert (result.model, result.attempt, result.steps, result.task) == ("scripted", 2, 4, "toy")


def test_a_submission_that_fails_has_no_metric(env: ResearchEnv) -> None:
    act(env, command="create", path="experiment.py", text="raise SystemExit(3)")
    _, reward, terminated, _, _ = act(env, command="submit")
    assert terminated and reward == 0.0
    result = env.episode_result("m")
    assert result.status == "submitted" and result.submission is None
    assert result.best_attempt is None
    assert result.reason == "the submitted code produced no valid metric"


# ---- budgets ----------------------------------------------------------------------------


def test_the_step_budget_truncates(settings: Settings, toy: Path) -> None:
    env = toy_env(settings, toy, limits={"max_steps": 3, "auto_submit": False})
    env.reset()
    assert act(env, command="open", path="value.txt")[3] is False
    assert env.step("oops")[3] is False
    observation, _, terminated, truncated, info = act(env, command="open", path="value.txt")
    assert truncated and not terminated and info["steps_left"] == 0
    assert observation.endswith("[The episode is over: the step budget (3 steps) is spent.]")
    result = env.episode_result("m")
    assert result.status == "truncated" and result.steps == 3
    assert result.reason == "the step budget (3 steps) is spent"
    with pytest.raises(EpisodeStateError):
        act(env, command="open", path="value.txt")


def test_at_the_step_budget_the_workspace_is_submitted_as_it_is(
    settings: Settings, toy: Path
) -> None:
    env = toy_env(settings, toy, limits={"max_steps": 2})
    env.reset()
    act(env, command="create", path="value.txt", text="0.75\n")
    observation, reward, terminated, truncated, _ = act(env, command="open", path="value.txt")
    assert truncated and not terminated and reward == 0.0
    assert "[Submitted automatically: the step budget (2 steps) is spent.]" in observation
    result = env.episode_result("m")
    assert result.status == "submitted" and result.submission == pytest.approx(0.75)
    assert result.best_attempt == pytest.approx(0.75) and result.steps == 2
    assert result.reason == "submitted automatically: the step budget (2 steps) is spent"


def test_the_wall_clock_budget_truncates_and_bounds_commands(settings: Settings, toy: Path) -> None:
    clock = ManualClock()
    env = toy_env(settings, toy, limits={"max_wall_s": 100}, clock=clock)
    env.reset()
    clock.now += 60
    assert act(env, command="open", path="value.txt")[3] is False
    clock.now += 41
    _, _, _, truncated, info = act(env, command="open", path="value.txt")
    assert truncated and "wall-clock budget (100 s)" in info["truncation"]
    assert env.episode_result("m").wall_s == 101.0


def test_reported_cost_truncates_and_is_recorded(settings: Settings, toy: Path) -> None:
    env = toy_env(settings, toy, limits={"max_cost_usd": 0.05, "max_total_tokens": 10_000})
    env.reset()
    usage = {"prompt_tokens": 100, "completion_tokens": 20, "cost_usd": 0.02}
    assert (
        env.step(json.dumps({"command": "open", "path": "value.txt", "usage": usage}))[3] is False
    )
    env.report_usage(prompt_tokens=50, completion_tokens=5, cost_usd=0.03)
    _, _, _, truncated, info = act(env, command="open", path="value.txt")
    assert truncated and info["truncation"] == "the cost budget ($0.05) is spent"
    steps = read_trajectory(Path(env.episode_result("m").trajectory))
    assert [(s.prompt_tokens, s.completion_tokens, s.cost_usd) for s in steps] == [
        (100, 20, 0.02),
        (50, 5, 0.03),
    ]
    result = env.episode_result("m")
    assert (result.prompt_tokens, result.completion_tokens, result.cost_usd) == (150, 25, 0.05)


def test_the_agents_ledger_counts_towards_the_token_budget(settings: Settings, toy: Path) -> None:
    ledger = Ledger()
    ledger.record(_entry(1000, 100, 0.5))  # spent before the episode: not counted
    env = toy_env(settings, toy, limits={"max_total_tokens": 500}, ledger=ledger)
    env.reset()
    ledger.record(_entry(300, 100, 0.01))
    assert act(env, command="open", path="value.txt")[3] is False
    ledger.record(_entry(90, 10, 0.01))
    _, _, _, truncated, info = act(env, command="open", path="value.txt")
    assert truncated and "token budget (500 tokens)" in info["truncation"]
    result = env.episode_result("m")
    assert (result.prompt_tokens, result.completion_tokens) == (390, 110)
    assert result.cost_usd == pytest.approx(0.02)


def _entry(prompt: int, completion: int, cost: float) -> LedgerEntry:
    return LedgerEntry(
        role="agent",
        model="m",
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
        latency_s=0.1,
        cache_hit=False,
    )


# ---- the trajectory ---------------------------------------------------------------------


def test_the_trajectory_has_one_line_per_step_and_matches_the_result(env: ResearchEnv) -> None:
    actions = [
        {"command": "open", "path": "value.txt"},
        "garbage",
        {"command": "create", "path": "value.txt", "text": "0.7"},
        {"command": "validate"},
        {"command": "submit"},
    ]
    for action in actions:
        env.step(action if isinstance(action, str) else json.dumps(action))
    result = env.episode_result("traj")
    path = Path(result.trajectory)
    assert path.name == "trajectory.jsonl" and path.parent == workspace_of(env).parent
    assert len(path.read_text().splitlines()) == len(actions) == result.steps
    steps = read_trajectory(path)
    assert [s.step for s in steps] == [1, 2, 3, 4, 5]
    assert [s.command for s in steps] == ["open", None, "create", "validate", "submit"]
    assert steps[1].action == "garbage" and steps[1].error is not None
    assert steps[3].run == "run_1" and steps[3].metric == pytest.approx(0.7)
    assert steps[3].metrics == {"toy": {"score": 0.7, "calls": 1.0}}
    assert steps[3].reward == pytest.approx(0.2) and steps[0].reward == 0.0
    assert steps[4].terminated and not steps[4].truncated
    assert steps[0].observation.startswith("[value.txt: lines 1-1 of 1]")
    assert all(s.elapsed_s >= 0 and s.seconds >= 0 for s in steps)
    assert result.best_attempt == max(s.metric for s in steps if s.metric is not None)
    assert result.submission == steps[4].metric and result.status == "submitted"


def test_observations_stay_within_the_observation_space(env: ResearchEnv) -> None:
    observation = act(env, command="python", code="print('\\x1b[31mred\\x00' + chr(0x1F600))")[0]
    assert observation in env.observation_space
    assert "\ufffd[31mred\ufffd\ufffd" in observation
    assert len(observation) <= OBSERVATION_MAX_CHARS
