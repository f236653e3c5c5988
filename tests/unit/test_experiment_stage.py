"""The experiment stage end to end with a scripted code editor and the real sandbox."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from core.settings import Settings
from graphs.experiments import run_experiments
from scientist.experiments.editor import EditResult
from scientist.experiments.models import ExperimentRecord, ProcessOutcome, RunOutcome
from scientist.experiments.rounds import ExperimentDeps, ExperimentProgress
from scientist.experiments.runner import SandboxLimits, SandboxRunner
from scientist.experiments.workspace import make_baseline
from scientist.ideas.models import Idea
from scientist.ideas.template import Template, load_template

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
EXPERIMENT = """import argparse, json, os
VALUE = {value}
parser = argparse.ArgumentParser()
parser.add_argument("--out_dir", default="run_0")
out = parser.parse_args().out_dir
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "final_info.json"), "w") as f:
    json.dump({{"toy": {{"means": {{"score": VALUE}}, "stderrs": {{"score": 0.1}}}}}}, f)
"""
PLOT = f"""import base64
labels = {{"run_0": "Baseline"}}
for run in labels:
    open(run + "_score.png", "wb").write(base64.b64decode({base64.b64encode(PNG).decode()!r}))
"""
IDEA = Idea(
    Name="bigger_value",
    Title="Bigger Values Score Higher",
    Experiment="Raise VALUE and measure the score.",
    Interestingness=3,
    Feasibility=9,
    Novelty=2,
)

Step = Callable[[Path], None] | dict[str, str] | None


class ScriptedEditor:
    """A CodeEditor double: each call applies the next scripted step and records the prompt."""

    def __init__(self, steps: list[Step], *, timed_out_calls: Sequence[int] = ()) -> None:
        self.steps = list(steps)
        self.prompts: list[str] = []
        self.files: list[list[str]] = []
        self.timed_out_calls = set(timed_out_calls)

    def edit(
        self, workdir: Path, files: Sequence[str], message: str, *, log_stem: str
    ) -> EditResult:
        self.prompts.append(message)
        self.files.append(list(files))
        step = self.steps.pop(0) if self.steps else None
        if callable(step):
            step(workdir)
        elif step:
            for name, text in step.items():
                (workdir / name).write_text(text)
        timed_out = len(self.prompts) in self.timed_out_calls
        return EditResult(
            command=["scripted-editor", *files],
            exit_code=None if timed_out else 0,
            timed_out=timed_out,
            seconds=0.01,
            tokens_sent=100,
            tokens_received=10,
        )


class CountingRunner(SandboxRunner):
    """The real sandbox, counting what it was asked to run."""

    def __init__(self) -> None:
        super().__init__(SandboxLimits(timeout_s=30, memory_mb=1024, cpus=1))
        self.experiments: list[str] = []

    def run_experiment(self, workdir: Path, run_name: str) -> RunOutcome:
        self.experiments.append(run_name)
        return super().run_experiment(workdir, run_name)

    def run_plot(self, workdir: Path) -> ProcessOutcome:
        return super().run_plot(workdir)


def value(v: object) -> dict[str, str]:
    return {"experiment.py": EXPERIMENT.format(value=v)}


def describe_figures(workdir: Path) -> None:
    notes = workdir / "notes.txt"
    notes.write_text(notes.read_text().replace("- run_0_score.png: ", "- run_0_score.png: bars."))


def label_runs(workdir: Path) -> None:
    plot = workdir / "plot.py"
    plot.write_text(plot.read_text().replace('"Baseline"}', '"Baseline", "run_1": "Bigger"}'))


@pytest.fixture
def template(tmp_path: Path) -> Template:
    folder = tmp_path / "toy_template"
    (folder / "latex").mkdir(parents=True)
    (folder / "experiment.py").write_text(EXPERIMENT.format(value=1))
    (folder / "plot.py").write_text(PLOT)
    (folder / "prompt.json").write_text(json.dumps({"system": "s", "task_description": "t"}))
    (folder / "seed_ideas.json").write_text(json.dumps([IDEA.model_dump()]))
    (folder / "latex" / "template.tex").write_text("\\begin{document}\\end{document}")
    return load_template(folder)


def stage(
    template: Template,
    tmp_path: Path,
    settings: Settings,
    editor: ScriptedEditor,
    runner: CountingRunner | None = None,
    feedback: str | None = None,
) -> tuple[ExperimentRecord, CountingRunner, list[ExperimentProgress]]:
    runner = runner or CountingRunner()
    events: list[ExperimentProgress] = []
    deps = ExperimentDeps(
        settings=settings, editor=editor, runner=runner, on_progress=events.append
    )
    record = run_experiments(IDEA, tmp_path / "run" / "idea", template, deps, feedback=feedback)
    return record, runner, events


def settings_for(make_settings: Callable[..., Settings], **experiments: object) -> Settings:
    return make_settings(experiments={"plot_attempts": 1, **experiments})


def test_success_path_records_every_round(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    editor = ScriptedEditor([value(2), value(3), label_runs, describe_figures])
    cfg = settings_for(make_settings, max_rounds=2)
    record, runner, events = stage(template, tmp_path, cfg, editor)
    assert record.status == "ok"
    assert runner.experiments == ["run_0", "run_1", "run_2"]
    kinds = [(r.kind, r.status) for r in record.rounds]
    assert kinds == [("experiment", "ok"), ("experiment", "ok"), ("plot", "ok"), ("notes", "ok")]
    first, second = record.rounds[0], record.rounds[1]
    assert first.run is not None and first.run.results["toy"].means["score"] == 2.0
    assert second.run is not None and second.run.run_name == "run_2"
    assert "-VALUE = 1" in first.diff and "+VALUE = 2" in first.diff
    assert first.changed_files == ["experiment.py"]
    assert first.command == ["scripted-editor", "experiment.py", "plot.py", "notes.txt"]
    assert first.tokens_sent == 100
    assert "run_1" in editor.prompts[1] and "2 ± 0.1" in editor.prompts[1]
    assert [f.path for f in record.figures] == ["run_0_score.png", "run_1_score.png"]
    assert record.figures[0].description == "bars."
    assert "## Run 1 (run_1)" in record.notes
    assert [r.run_name for r in record.successful_runs()] == ["run_0", "run_1", "run_2"]
    saved = ExperimentRecord.model_validate_json(
        (tmp_path / "run" / "idea" / "experiments.json").read_text()
    )
    assert saved == record
    assert {e.stage for e in events} == {"baseline", "experiment", "plot", "notes"}


def test_a_crashing_edit_is_fed_back_and_fixed(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    crash = {"experiment.py": 'raise RuntimeError("shapes do not match: (3,) vs (4,)")\n'}
    editor = ScriptedEditor([crash, value(5)])
    record, runner, _ = stage(template, tmp_path, settings_for(make_settings, max_rounds=2), editor)
    failed, fixed = record.rounds[0], record.rounds[1]
    assert failed.status == "run_failed"
    assert failed.run is not None and failed.run.status == "failed"
    assert "shapes do not match" in editor.prompts[1]
    assert "FAILED" in editor.prompts[1]
    assert fixed.status == "ok"
    assert fixed.run is not None and fixed.run.run_name == "run_1"  # the retry reuses the number
    assert runner.experiments == ["run_0", "run_1", "run_1"]
    assert fixed.run.results["toy"].means["score"] == 5.0


def test_an_unchanged_experiment_is_not_run_again(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    touch_notes: Step = {"notes.txt": "only notes changed\n"}
    editor = ScriptedEditor([touch_notes, None, value(2)])
    cfg = settings_for(make_settings, max_rounds=4, stop_after_no_change=2)
    record, runner, _ = stage(template, tmp_path, cfg, editor)
    experiment_rounds = [r for r in record.rounds if r.kind == "experiment"]
    assert [r.status for r in experiment_rounds] == ["no_change", "no_change"]
    assert all(r.run is None for r in experiment_rounds)
    assert runner.experiments == ["run_0"]
    assert experiment_rounds[0].changed_files == ["notes.txt"]
    assert "did not change experiment.py" in editor.prompts[1]


def test_the_round_limit_is_respected(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    editor = ScriptedEditor([value(i) for i in range(2, 10)])
    record, runner, _ = stage(template, tmp_path, settings_for(make_settings, max_rounds=3), editor)
    experiment_rounds = [r for r in record.rounds if r.kind == "experiment"]
    assert len(experiment_rounds) == 3
    assert runner.experiments == ["run_0", "run_1", "run_2", "run_3"]
    assert [r.kind for r in record.rounds[3:]] == ["plot", "notes"]


def test_feedback_reaches_every_coder_prompt(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    editor = ScriptedEditor([value(2)])
    cfg = settings_for(make_settings, max_rounds=1)
    record, _, _ = stage(template, tmp_path, cfg, editor, feedback="Use three seeds please.")
    assert len(editor.prompts) == 3  # code, plot, notes
    assert all("Use three seeds please." in p for p in editor.prompts)
    assert record.feedback == "Use three seeds please."


def test_an_editor_timeout_is_recorded(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    editor = ScriptedEditor([None], timed_out_calls=[1])
    record, _, _ = stage(template, tmp_path, settings_for(make_settings, max_rounds=1), editor)
    assert record.rounds[0].status == "timeout"
    assert record.rounds[0].editor_exit_code is None


def test_a_failed_baseline_fails_the_stage_cleanly(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    (template.path / "experiment.py").write_text("import nonexistent_module\n")
    editor = ScriptedEditor([])
    record, _, _ = stage(template, tmp_path, settings_for(make_settings), editor)
    assert record.status == "failed"
    assert "baseline" in (record.reason or "")
    assert record.rounds == []
    assert editor.prompts == []
    assert (tmp_path / "run" / "idea" / "experiments.json").is_file()


def test_the_templates_baseline_is_reused_until_experiment_py_changes(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    report = make_baseline(template.path, CountingRunner())
    assert report.outcome.status == "ok" and report.figures == ["run_0_score.png"]
    cfg = settings_for(make_settings, max_rounds=1)
    _, runner, _ = stage(template, tmp_path, cfg, ScriptedEditor([value(2)]))
    assert runner.experiments == ["run_1"]  # run_0 copied, not run
    (template.path / "experiment.py").write_text(EXPERIMENT.format(value=7))
    record, runner, _ = stage(template, tmp_path, cfg, ScriptedEditor([value(2)]))
    assert runner.experiments == ["run_0", "run_1"]
    assert record.baseline.results["toy"].means["score"] == 7.0


def test_a_failing_plot_goes_back_to_the_coder(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    broken = {"plot.py": "labels = {'run_0': 'Baseline'}\nraise KeyError('run_9')\n"}
    editor = ScriptedEditor([value(2), broken, {"plot.py": PLOT}])
    cfg = make_settings(experiments={"max_rounds": 1, "plot_attempts": 2})
    record, _, _ = stage(template, tmp_path, cfg, editor)
    plots = [r for r in record.rounds if r.kind == "plot"]
    assert [p.status for p in plots] == ["run_failed", "ok"]
    assert "KeyError" in editor.prompts[2]
    assert plots[0].plot_run is not None and plots[0].plot_run.status == "failed"
    assert record.figures


def test_the_graph_runs_under_a_checkpointer(
    template: Template, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from graphs.experiments import build_experiment_graph

    deps = ExperimentDeps(
        settings=settings_for(make_settings, max_rounds=1),
        editor=ScriptedEditor([value(4)]),
        runner=CountingRunner(),
    )
    graph = build_experiment_graph(checkpointer=InMemorySaver())
    inputs = {"idea": IDEA, "idea_dir": str(tmp_path / "idea"), "template_dir": str(template.path)}
    config = {"configurable": {"thread_id": "experiment-1"}}
    state = graph.invoke(inputs, config=config, context=deps)
    assert state["record"].rounds[0].status == "ok"
    assert graph.get_state(config).values["record"] == state["record"]


@pytest.mark.parametrize(("coder", "sees_run_1"), [("openai/gpt-4o", True), ("local", False)])
def test_the_coders_results_table_follows_its_profile(
    template: Template,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    coder: str,
    sees_run_1: bool,
) -> None:
    editor = ScriptedEditor([value(i) for i in range(2, 7)])
    cfg = make_settings(
        experiments={"plot_attempts": 1, "max_rounds": 5}, llm={"models": {"coder": coder}}
    )
    stage(template, tmp_path, cfg, editor)
    last_code_prompt = editor.prompts[4]  # round 5, after run_1 … run_4 succeeded
    header = next(line for line in last_code_prompt.splitlines() if line.startswith("| group"))
    assert "run_0 (baseline)" in header and "run_4" in header
    assert ("run_1" in header) is sees_run_1  # compact: the baseline and the latest three
