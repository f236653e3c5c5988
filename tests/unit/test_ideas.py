"""The idea stage with the scripted model: reflection, dedup, novelty rounds, outputs, CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from gateway.errors import LLMError
from gateway.prompts import render, template_variables
from gateway.types import LLMRequest
from graphs.ideas import run_ideas
from scientist.cli import app
from scientist.cli.demo import run_demo
from scientist.ideas.deps import IdeasDeps, IdeasProgress
from scientist.ideas.generate import PROMPTS, find_duplicate, shown_code
from scientist.ideas.models import Idea, IdeaBatch, idea_form
from scientist.ideas.records import idea_reply, load_ideas, novelty_reply, save_ideas
from scientist.ideas.template import Template, TemplatePrompt
from tests.fakes_literature import StaticLiterature, make_paper

SettingsFactory = Callable[..., Settings]
Turn = str | LLMError | Callable[[LLMRequest], str]
SEED = Idea(
    Name="learning_rate_warmup",
    Title="Learning-rate warmup and the speed of grokking",
    Experiment="Vary warmup steps.",
    Interestingness=6,
    Feasibility=8,
    Novelty=4,
)
PAPERS = [
    make_paper("p1", "Grokking beyond overfitting"),
    make_paper("p2", "Weight decay and grokking"),
]
MORE = [make_paper("p3", "Slingshot dynamics in grokking")]


def _template(tmp_path: Path) -> Template:
    return Template(
        name="toy",
        path=tmp_path,
        prompt=TemplatePrompt(system="You are a careful ML researcher.", task_description="TASK-X"),
        seed_ideas=[SEED],
        experiment_code="import argparse\nprint('train a tiny model')\n",
    )


def idea_json(name: str, title: str | None = None, novelty: int = 5) -> dict[str, Any]:
    return {
        "Name": name,
        "Title": title or f"A study of {name.replace('_', ' ')}",
        "Experiment": f"Run {name} and measure validation accuracy.",
        "Interestingness": 6,
        "Feasibility": 7,
        "Novelty": novelty,
    }


def reply(name: str, title: str | None = None, novelty: int = 5) -> str:
    return json.dumps({"thought": f"about {name}", "idea": idea_json(name, title, novelty)})


def reflection(name: str, done: bool, title: str | None = None) -> str:
    return json.dumps({"thought": "refined", "idea": idea_json(name, title), "done": done})


def verdict(decision: str, query: str | None = None, closest: list[str] | None = None) -> str:
    return json.dumps(
        {
            "thought": "looked",
            "decision": decision,
            "query": query or "",
            "justification": "because" if decision != "query" else "",
            "closest_papers": closest or [],
        }
    )


def _deps(
    make_settings: SettingsFactory,
    turns: list[Turn],
    literature: StaticLiterature | None = None,
    *,
    model: str = "local",
    reasks: int = 0,
    **ideas: Any,
) -> tuple[IdeasDeps, ScriptedLLM]:
    settings = make_settings(
        ideas={"num_ideas": 1, "num_reflections": 0, "novelty_rounds": 0, **ideas},
        llm={"structured_reasks": reasks, "models": {"ideas": model}},
    )
    script = ScriptedLLM(turns)
    deps = IdeasDeps(
        gateway=Gateway(settings, backend=script),
        settings=settings,
        literature=literature or StaticLiterature(default=PAPERS),
    )
    return deps, script


def test_reflection_stops_early_when_done(make_settings: SettingsFactory, tmp_path: Path) -> None:
    turns: list[Turn] = [
        reply("sharp_minima"),
        reflection("sharp_minima_v2", False),
        reflection("sharp_minima_v3", True),
    ]
    deps, script = _deps(make_settings, turns, num_reflections=4)
    result = run_ideas(_template(tmp_path), deps)
    (record,) = result.ideas
    assert record.idea.Name == "sharp_minima_v3" and record.reflections_used == 2
    assert record.stopped_early and record.drafts[0].Name == "sharp_minima"
    assert script.remaining == 0 and len(script.requests) == 3
    last = script.requests[-1].messages
    assert last[-2].role == "assistant" and "sharp_minima_v2" in last[-2].content
    assert "Reflection round 2 of 4" in last[-1].content
    assert record.novelty is not None and record.novelty.status == "skipped"


def test_reflection_runs_all_rounds_without_done(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    turns: list[Turn] = [reply("a_idea"), reflection("a_idea", False), reflection("a_idea", False)]
    deps, _ = _deps(make_settings, turns, num_reflections=2)
    (record,) = run_ideas(_template(tmp_path), deps).ideas
    assert record.reflections_used == 2 and not record.stopped_early


def test_duplicates_are_dropped_and_earlier_ideas_shown(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    turns: list[Turn] = [
        reply("label_smoothing", "Label smoothing speeds up grokking"),
        reply("Label-Smoothing", "Something else entirely"),  # same Name, other case
        reply("warmup_again", "Learning rate warmup and the speed of grokking!"),  # ~ seed title
        reply("depth_scaling", "Deeper networks grok later"),
    ]
    deps, script = _deps(make_settings, turns, num_ideas=4)
    result = run_ideas(_template(tmp_path), deps)
    statuses = [(r.idea.Name, r.status, r.duplicate_of) for r in result.every_idea()]
    assert statuses == [
        ("label_smoothing", "kept", None),
        ("Label-Smoothing", "duplicate", "label_smoothing"),
        ("warmup_again", "duplicate", "learning_rate_warmup"),
        ("depth_scaling", "kept", None),
    ]
    assert [r.idea.Name for r in result.ideas] == ["label_smoothing", "depth_scaling"]
    assert [r.index for r in result.duplicates] == [1, 2]
    fourth_prompt = script.requests[3].messages[1].content
    assert "label_smoothing" in fourth_prompt and "learning_rate_warmup" in fourth_prompt
    assert "Something else entirely" not in fourth_prompt  # duplicates are not shown again
    assert "Propose idea 4 of 4" in fourth_prompt and "TASK-X" in fourth_prompt


def test_find_duplicate_uses_name_and_title_similarity() -> None:
    other = Idea.model_validate(idea_json("x", "Weight decay controls grokking"))

    def duplicate_of(title: str) -> str | None:
        return find_duplicate(Idea.model_validate(idea_json("y", title)), [other], 0.85)

    assert duplicate_of("Weight decay controls grokking.") == "x"
    assert duplicate_of("'Weight decay controls grokking' is a new idea, 16 KB") == "x"
    assert duplicate_of("Dropout and memorisation") is None
    assert duplicate_of("Weight decay") is None  # too short to call a copy


def test_feedback_reaches_the_idea_prompts(make_settings: SettingsFactory, tmp_path: Path) -> None:
    deps, script = _deps(
        make_settings, [reply("a_idea"), reflection("a_idea", True)], num_reflections=1
    )
    result = run_ideas(_template(tmp_path), deps, feedback="Focus on optimiser choice.")
    assert result.feedback == "Focus on optimiser choice."
    assert len(script.requests) == 2  # the idea and its reflection
    for request in script.requests:
        assert "Focus on optimiser choice." in request.messages[1].content


def test_novelty_asks_two_queries_then_decides(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    literature = StaticLiterature({"sharper query": MORE}, default=PAPERS)
    turns: list[Turn] = [
        reply("slingshot", "Slingshot effects in grokking"),
        verdict("query", "grokking slingshot"),
        verdict("query", "sharper query"),
        verdict("not_novel", closest=["offline:p3", "[p1]", "s2:invented"]),
    ]
    deps, script = _deps(make_settings, turns, literature, novelty_rounds=3)
    events: list[IdeasProgress] = []
    deps.on_progress = events.append
    (record,) = run_ideas(_template(tmp_path), deps).ideas
    v = record.novelty
    assert v is not None and v.status == "not_novel" and v.novel is False
    assert [(q.query, q.asked_by, q.round) for q in v.queries] == [
        ("Slingshot effects in grokking", "title", 0),
        ("grokking slingshot", "model", 1),
        ("sharper query", "model", 2),
    ]
    assert [p.paper_id for p in v.closest] == ["offline:p3", "offline:p1"]
    assert v.unknown_ids == ["s2:invented"] and v.rounds_used == 3
    assert v.sources_answered == ["offline"] and v.justification == "because"
    assert literature.queries == [q.query for q in v.queries]
    last_prompt = script.requests[-1].messages[1].content
    assert (
        "[offline:p3] Slingshot dynamics in grokking (2022, ICLR 2022, 3 citations)" in last_prompt
    )
    assert 'Earlier query "grokking slingshot": Grokking beyond overfitting' in last_prompt
    assert "Round 3 of 3. This is the last round: decide now." in last_prompt
    assert [e.round for e in events if e.step == "novelty"] == [1, 2, 3]


def test_undecided_after_k_rounds_is_not_a_guess(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    turns: list[Turn] = [reply("a_idea"), verdict("query", "q1"), verdict("query", "q2")]
    deps, _ = _deps(make_settings, turns, novelty_rounds=2)
    result = run_ideas(_template(tmp_path), deps)
    v = result.ideas[0].novelty
    assert v is not None and v.status == "undecided" and v.novel is None
    assert "no decision after 2 rounds" in (v.reason or "")
    assert [q.query for q in v.queries] == ["A study of a idea", "q1"]  # q2 came too late
    assert result.sources_answered == ["offline"]


def test_no_source_answering_makes_the_check_undecided(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    turns: list[Turn] = [reply("a_idea"), verdict("novel")]
    deps, script = _deps(make_settings, turns, StaticLiterature(answered=False), novelty_rounds=1)
    v = run_ideas(_template(tmp_path), deps).ideas[0].novelty
    assert v is not None and v.status == "undecided" and "no literature source" in (v.reason or "")
    assert "(no papers found (failed sources: offline: offline: index missing))" in (
        script.requests[-1].messages[1].content
    )


def test_query_without_text_is_reasked(make_settings: SettingsFactory, tmp_path: Path) -> None:
    turns: list[Turn] = [reply("a_idea"), verdict("query", None), verdict("novel", closest=["p2"])]
    settings_reasks = {"novelty_rounds": 1}
    deps, script = _deps(make_settings, turns, **settings_reasks)
    deps.settings.llm.structured_reasks = 1
    v = run_ideas(_template(tmp_path), deps).ideas[0].novelty
    assert (
        v is not None and v.status == "novel" and [p.paper_id for p in v.closest] == ["offline:p2"]
    )
    assert "needs a non-empty 'query'" in script.requests[-1].messages[-1].content


def test_invalid_replies_are_recorded_not_fatal(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    turns: list[Turn] = [
        "not json",  # idea 1 fails
        reply("b_idea"),
        "{}",  # its reflection fails: the idea is kept as it was
        "still not json",  # its novelty check fails: undecided
    ]
    deps, _ = _deps(make_settings, turns, num_ideas=2, num_reflections=1, novelty_rounds=1)
    result = run_ideas(_template(tmp_path), deps)
    assert [f.index for f in result.failures] == [0] and result.failures[0].stage == "generate"
    (record,) = result.ideas
    assert record.idea.Name == "b_idea" and record.reflection_error and record.reflections_used == 0
    assert record.novelty is not None and record.novelty.status == "undecided"
    assert "no valid reply" in (record.novelty.reason or "")


def test_seed_ideas_can_be_checked_too(make_settings: SettingsFactory, tmp_path: Path) -> None:
    turns: list[Turn] = [reply("new_one"), verdict("novel"), verdict("not_novel")]
    deps, _ = _deps(make_settings, turns, include_seed_ideas=True, novelty_rounds=1)
    result = run_ideas(_template(tmp_path), deps)
    assert [(r.index, r.origin, r.idea.Name) for r in result.ideas] == [
        (0, "seed", "learning_rate_warmup"),
        (1, "generated", "new_one"),
    ]
    assert all(r.novelty and r.novelty.status in {"novel", "not_novel"} for r in result.ideas)


def test_ideas_file_round_trips_with_usage(make_settings: SettingsFactory, tmp_path: Path) -> None:
    deps, _ = _deps(
        make_settings, [reply("a_idea"), verdict("novel", closest=["offline:p1"])], novelty_rounds=1
    )
    result = run_ideas(_template(tmp_path), deps)
    path = save_ideas(result, tmp_path / "run" / "ideas.json")
    loaded = load_ideas(path)
    assert loaded == result and loaded.usage["calls"] == 2
    assert loaded.settings["ideas"]["novelty_rounds"] == 1 and loaded.model == "local"
    raw = json.loads(path.read_text())
    assert raw["ideas"][0]["novelty"]["queries"][0]["papers"][0]["title"]


def test_code_is_cut_at_a_line_boundary() -> None:
    code = "\n".join(f"line_{i} = {i}" for i in range(100))
    shown = shown_code(code, 200)
    assert len(shown) < 260 and shown.splitlines()[-1].startswith("# ... (")
    assert shown_code("x = 1\n", 200) == "x = 1"


@pytest.mark.parametrize("path", sorted(PROMPTS.glob("*.j2")), ids=lambda p: p.name)
def test_prompt_renders_with_exactly_its_variables(path: Path) -> None:
    names = template_variables(PROMPTS, path.name)
    text = render(PROMPTS, path.name, **{n: f"<{n}>" for n in names})
    assert all(f"<{n}>" in text for n in names)
    with pytest.raises(TypeError, match="does not use"):
        render(PROMPTS, path.name, **{n: "x" for n in names}, unexpected="x")


def test_prompt_variables_are_what_the_code_passes() -> None:
    assert template_variables(PROMPTS, "idea_user.j2") == {
        "task",
        "code",
        "previous",
        "topic",
        "feedback",
        "number",
        "total",
    }
    assert template_variables(PROMPTS, "given_idea_user.j2") == {
        "task",
        "code",
        "previous",
        "feedback",
        "idea",
    }
    assert template_variables(PROMPTS, "novelty_user.j2") == {
        "idea",
        "round",
        "total",
        "round_note",
        "history",
        "query",
        "results",
    }


def test_cli_writes_ideas_json_and_prints_tables(
    make_settings: SettingsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template_dir = tmp_path / "tpl"
    (template_dir / "latex").mkdir(parents=True)
    for name in ("experiment.py", "plot.py", "latex/template.tex"):
        (template_dir / name).write_text("# x\n")
    (template_dir / "prompt.json").write_text(json.dumps({"system": "S", "task_description": "T"}))
    (template_dir / "seed_ideas.json").write_text(json.dumps([SEED.model_dump()]))
    script = ScriptedLLM([reply("low_one", novelty=2), reply("high_one", novelty=9)])
    real = Gateway.from_settings

    def scripted(settings: Settings, run_dir: Path | None = None) -> Gateway:
        return Gateway(settings, backend=script, ledger=real(settings, run_dir).ledger)

    monkeypatch.setattr(Gateway, "from_settings", staticmethod(scripted))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "ideas",
            str(template_dir),
            "--num-ideas",
            "2",
            "--reflections",
            "0",
            "--no-novelty",
            "--sort-by",
            "Novelty",
            "--out",
            str(out),
            "--set",
            f"data_dir={tmp_path / 'd'}",
        ],
    )
    assert result.exit_code == 0, result.output
    stored = load_ideas(out / "ideas.json")
    assert [r.idea.Name for r in stored.ideas] == ["low_one", "high_one"]
    assert stored.settings["ideas"]["novelty_check"] is False
    assert result.output.index("high_one") < result.output.index("low_one")
    assert "LLM usage" in result.output and (out / "ledger.jsonl").is_file()
    bad = CliRunner().invoke(app, ["ideas", str(tmp_path / "none"), "--out", str(out)])
    assert bad.exit_code == 2 and "TemplateError" in bad.output


def test_graph_runs_with_a_checkpointer(make_settings: SettingsFactory, tmp_path: Path) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from graphs.ideas import build_ideas_graph, graph_config

    turns: list[Turn] = [
        reply("a_idea"),
        reply("b_other", "Deeper nets grok later"),
        verdict("novel"),
        verdict("not_novel"),
    ]
    deps, _ = _deps(make_settings, turns, num_ideas=2, novelty_rounds=1)
    graph = build_ideas_graph(checkpointer=InMemorySaver())
    config = {**graph_config(deps), "configurable": {"thread_id": "t"}}
    graph.invoke({"template": _template(tmp_path), "feedback": None}, config=config, context=deps)
    ideas = graph.get_state(config).values["ideas"]
    assert [r.idea.Name for r in ideas] == ["a_idea", "b_other"]
    assert sorted(r.novelty.status for r in ideas) == ["not_novel", "novel"]
    assert config["max_concurrency"] == 1  # the local model: one novelty check at a time


# A capable model's normal output: past every compact bound, inside the full profile's.
FULL_MODEL = "openai/gpt-4o"
LONG_THOUGHT = ("Weight decay and the learning rate interact in ways worth measuring. " * 40)[:2000]
LONG_EXPERIMENT = ("Sweep weight decay over five values and log validation accuracy. " * 60)[:3000]
EIGHT = [
    make_paper(f"e{i}", f"Grokking study {word}")
    for i, word in enumerate(("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"))
]


def long_reply(name: str) -> str:
    idea = {**idea_json(name), "Experiment": LONG_EXPERIMENT}
    return json.dumps({"thought": LONG_THOUGHT, "idea": idea})


def long_verdict() -> str:
    return json.dumps(
        {
            "thought": LONG_THOUGHT,
            "decision": "not_novel",
            "query": "",
            "justification": LONG_THOUGHT,
            "closest_papers": [p.paper_id for p in EIGHT],
        }
    )


def history_line(request: LLMRequest) -> str:
    return next(line for line in request.messages[1].content.splitlines() if "Earlier" in line)


def test_a_full_profile_model_keeps_long_thoughts_ideas_and_verdicts_whole(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    turns: list[Turn] = [long_reply("decay_sweep"), verdict("query", "second"), long_verdict()]
    literature = StaticLiterature(default=EIGHT)
    deps, script = _deps(make_settings, turns, literature, model=FULL_MODEL, novelty_rounds=2)
    result = run_ideas(_template(tmp_path), deps)
    (record,) = result.ideas
    assert len(script.requests) == 3 and not result.failures  # nothing re-asked
    assert record.idea.Experiment == LONG_EXPERIMENT and record.thoughts == [LONG_THOUGHT]
    v = record.novelty
    assert v is not None and v.justification == LONG_THOUGHT and v.thoughts[-1] == LONG_THOUGHT
    assert [p.paper_id for p in v.closest] == [p.paper_id for p in EIGHT]
    assert all(p.title in history_line(script.requests[-1]) for p in EIGHT)
    first = script.requests[0]
    assert first.max_tokens == deps.settings.profiles.full.idea_max_tokens
    assert first.response_format is not None
    schema = first.response_format["json_schema"]
    assert schema["name"] == "IdeaReply"
    assert schema["schema"]["properties"]["thought"]["maxLength"] == 5000
    assert load_ideas(save_ideas(result, tmp_path / "ideas.json")) == result
    assert result.settings["profile"]["name"] == "full"


def test_the_compact_profile_still_reasks_the_same_long_replies(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    turns: list[Turn] = [
        long_reply("decay_sweep"),
        reply("decay_sweep"),
        verdict("query", "second"),
        long_verdict(),
        verdict("not_novel", closest=[p.paper_id for p in EIGHT[:5]]),
    ]
    literature = StaticLiterature(default=EIGHT)
    deps, script = _deps(make_settings, turns, literature, reasks=1, novelty_rounds=2)
    (record,) = run_ideas(_template(tmp_path), deps).ideas
    assert len(script.requests) == 5 and script.remaining == 0
    reask = script.requests[1].messages[-1].content
    assert "at most 600 characters" in reask and "at most 2000 characters" in reask
    assert record.idea.Experiment == "Run decay_sweep and measure validation accuracy."
    v = record.novelty
    assert v is not None and v.justification == "because" and len(v.closest) == 5
    assert "at most 5 items" in script.requests[-1].messages[-1].content
    history = history_line(script.requests[-1])
    assert EIGHT[4].title in history and EIGHT[5].title not in history
    assert script.requests[0].max_tokens == deps.settings.profiles.compact.idea_max_tokens


@pytest.mark.parametrize(("model", "kept"), [(FULL_MODEL, 8), ("local", 5)])
def test_an_eight_idea_batch_is_kept_whole_only_under_the_full_profile(
    make_settings: SettingsFactory, model: str, kept: int
) -> None:
    settings = make_settings(llm={"models": {"ideas": model}, "structured_reasks": 1})
    eight = json.dumps({"ideas": [idea_json(f"idea_{c}") for c in "abcdefgh"]})
    five = json.dumps({"ideas": [idea_json(f"idea_{c}") for c in "abcde"]})
    script = ScriptedLLM([eight, five])
    result = run_demo(settings, count=8, gateway=Gateway(settings, backend=script))
    assert len(result.ideas.ideas) == kept
    assert len(script.requests) == (1 if kept == 8 else 2)
    if kept == 5:
        assert "at most 5 items" in script.requests[1].messages[-1].content
    stored = IdeaBatch.model_validate_json((result.run_dir / "ideas.json").read_text())
    assert stored == result.ideas


def test_profile_forms_keep_their_names_and_records_accept_either_profile(
    make_settings: SettingsFactory,
) -> None:
    from pydantic import ValidationError

    profiles = make_settings().profiles
    compact, full = profiles.compact, profiles.full
    assert idea_reply(compact) is idea_reply(compact) and idea_reply(full) is not idea_reply(
        compact
    )
    assert {idea_reply(full).__name__, novelty_reply(full).__name__} == {
        "IdeaReply",
        "NoveltyReply",
    }
    assert idea_form(full).__name__ == "Idea"
    idea = {**idea_json("x"), "Experiment": LONG_EXPERIMENT}
    assert idea_form(full).model_validate(idea).Experiment == LONG_EXPERIMENT
    with pytest.raises(ValidationError, match="at most 2000 characters"):
        idea_form(compact).model_validate(idea)
    assert Idea.model_validate(idea).Experiment == LONG_EXPERIMENT
    with pytest.raises(ValidationError):  # a guard rail every profile keeps
        Idea.model_validate({**idea, "Name": "n" * 61})
