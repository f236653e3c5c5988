"""The experiment stage's prompt templates render with exactly their variables."""

from __future__ import annotations

from scientist.experiments.feedback import PROMPTS, code_prompt, notes_prompt, plot_prompt
from scientist.experiments.models import RunOutcome
from tests.unit.test_experiment_stage import IDEA

TEMPLATES = sorted(PROMPTS.glob("*.j2"))


def test_the_stage_has_its_three_prompts() -> None:
    assert [p.name for p in TEMPLATES] == ["code_round.j2", "notes_round.j2", "plot_round.j2"]


def test_prompts_leave_out_empty_sections() -> None:
    text = code_prompt(
        IDEA,
        round_index=1,
        max_rounds=4,
        run_name="run_1",
        table="|t|",
        last_round="",
        feedback=None,
    )
    assert "previous round" not in text and "Feedback" not in text
    assert "python experiment.py --out_dir=run_1" in text
    baseline = RunOutcome(run_name="run_0", status="ok", seconds=1, stdout_path="", stderr_path="")
    assert "previous attempt" not in plot_prompt(IDEA, [baseline], "", None)
    assert "a.png, b.png" in notes_prompt(IDEA, ["a.png", "b.png"], None)
