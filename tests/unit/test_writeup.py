"""The write-up graph with the scripted model and the real latexmk: checks, fixes, limits."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.literature.models import Paper
from core.settings import Settings, load_settings
from gateway import Gateway, ScriptedLLM
from gateway.types import LLMRequest
from graphs.writeup import write_paper
from scientist.writeup.compile import LatexmkCompiler
from scientist.writeup.deps import WriteupDeps
from scientist.writeup.errors import TemplateCompileError, ToolchainMissingError
from scientist.writeup.html import WeasyprintCompiler
from scientist.writeup.models import WriteupRecord, citation_queries
from tests.fixtures.writeup.fake_literature import FakeLiterature
from tests.fixtures.writeup.idea_folder import load_idea, load_record, make_idea_folder
from tests.fixtures.writeup.script import GOOD, WriterScript

SettingsFactory = Callable[..., Settings]
needs_tex = pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed")


def _write(
    make_settings: SettingsFactory,
    tmp_path: Path,
    script: WriterScript,
    *,
    literature: FakeLiterature | None = None,
    compiler: Any = None,
    **writing: Any,
) -> tuple[WriteupRecord, Path]:
    settings = make_settings(
        "debug",
        writing={"citation_rounds": 0, "fix_rounds": 1, "page_limit": 8, **writing},
        llm={"cache_enabled": False},
    )
    folder = make_idea_folder(tmp_path / "run")
    deps = WriteupDeps(
        gateway=Gateway(settings, backend=ScriptedLLM(script)),
        settings=settings,
        literature=literature or FakeLiterature(),
        compiler=compiler or LatexmkCompiler(),
    )
    return write_paper(load_idea(), folder, load_record(), deps), folder


def _section(record: WriteupRecord, name: str) -> Any:
    return next(s for s in record.sections if s.name == name)


@needs_tex
def test_good_draft_compiles_with_every_section_table_and_figures(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    script = WriterScript()
    record, folder = _write(make_settings, tmp_path, script)
    assert record.status == "ok", record.errors
    paper = folder / "paper"
    assert (paper / "paper.pdf").is_file() and record.pages and record.pages >= 2
    tex = (paper / "paper.tex").read_text()
    for title in ("Introduction", "Related Work", "Method", "Results"):
        assert f"\\section{{{title}}}" in tex
    for placeholder in ("INTRO HERE", "RESULTS HERE", "TITLE HERE", "ABSTRACT HERE"):
        assert placeholder not in tex
    assert "\\title{Layer{-}wise Learning Rates Speed Up Grokking}" in tex
    assert "\\label{tab:results}" in tex and "$0.9712 \\pm 0.0043$" in tex
    assert (paper / "val_acc.png").is_file() and "\\includegraphics" in tex
    assert record.figures == ["val_acc.png", "train_loss.png"] and record.tables == 1
    assert "run\\_2" not in tex and "Run 2" not in tex  # the failed run is not reported
    assert "\\begin{filecontents}" not in tex and "\\bibliography" not in tex  # nothing cited
    assert (folder / "paper" / "writeup.json").is_file()
    assert all(s.calls == 1 and s.prompt_tokens > 0 for s in record.sections)
    assert [a.ok for a in record.compile_attempts] == [True]


@needs_tex
def test_unknown_citation_key_is_corrected(make_settings: SettingsFactory, tmp_path: Path) -> None:
    drafts = {"introduction": GOOD["introduction"] + " Grokking was named by \\cite{madeup2021}."}
    fixes = {"introduction": [GOOD["introduction"] + " See \\cite{goodfellow2016deep}."]}
    script = WriterScript(drafts=drafts, fixes=fixes)
    record, folder = _write(make_settings, tmp_path, script)
    intro = _section(record, "introduction")
    assert any(
        i.kind == "unknown_citation" and "madeup2021" in i.detail for i in intro.issues_found
    )
    assert script.count("fix", "introduction") == 1
    assert "madeup2021" not in intro.text and intro.citations == ["goodfellow2016deep"]
    bib = (folder / "paper" / "references.bib").read_text()
    assert "goodfellow2016deep" in bib and "madeup2021" not in bib
    assert record.status == "ok" and [c.key for c in record.citations] == ["goodfellow2016deep"]


@needs_tex
def test_unknown_key_the_model_keeps_is_stripped(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    bad = GOOD["related_work"] + " Others agree \\cite{madeup2021,alsofake}."
    script = WriterScript(drafts={"related_work": bad}, fixes={"related_work": [bad]})
    record, folder = _write(make_settings, tmp_path, script)
    related = _section(record, "related_work")
    assert "madeup2021" not in (folder / "paper" / "paper.tex").read_text()
    assert "\\cite" not in related.text and "Others agree." in related.text
    assert any("alsofake" in w and "madeup2021" in w for w in related.warnings)
    assert record.status == "ok" and record.citations == []


@needs_tex
def test_invented_number_is_caught_and_removed(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    invented = GOOD["results"] + " On x/y it reached 0.9934 after 812 steps."
    script = WriterScript(drafts={"results": invented}, fixes={"results": [invented]})
    record, _ = _write(make_settings, tmp_path, script)
    results = _section(record, "results")
    found = [i for i in results.issues_found if i.kind == "invented_number"]
    assert found and "0.9934" in found[0].detail and "812" in found[0].detail
    assert "0.9712" not in found[0].detail and "0.4386" not in found[0].detail
    assert script.count("fix", "results") == 1 and results.rounds == 1
    assert "0.9934" not in results.text and "0.9712" in results.text
    assert any("numbers not in the results" in w for w in results.warnings)


@needs_tex
def test_number_the_model_corrects_stays(make_settings: SettingsFactory, tmp_path: Path) -> None:
    invented = "Validation accuracy was 0.97 with 61.2% fewer steps."
    fixed = "Validation accuracy was 0.97 (x+y), see Table~\\ref{tab:results}."
    script = WriterScript(drafts={"results": invented}, fixes={"results": [fixed]})
    record, _ = _write(make_settings, tmp_path, script)
    results = _section(record, "results")
    assert "61.2" in results.issues_found[0].detail and "0.97 " in results.text  # 0.9712 rounded
    assert not any("numbers not in the results" in w for w in results.warnings)


@needs_tex
def test_latex_error_is_fixed_by_the_compile_loop(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    broken = GOOD["method"] + " We use \\undefinedmacro{x} here."
    script = WriterScript(
        drafts={"method": broken},
        fixes={"method": [broken]},  # the checklist pass does not fix it
        compile_fixes={"method": [GOOD["method"]]},
    )
    record, folder = _write(make_settings, tmp_path, script)
    attempts = record.compile_attempts
    assert [a.ok for a in attempts] == [False, True]
    assert attempts[0].sections_blamed == ["method"] and attempts[0].action == "fix"
    assert any("Undefined control sequence" in e for e in attempts[0].errors)
    method = _section(record, "method")
    assert method.rounds == 2 and not method.fallback and "undefinedmacro" not in method.text
    compile_prompt = script.calls.index(("compile_fix", "method"))
    assert compile_prompt > 0 and record.status == "ok"
    assert (folder / "paper" / "paper.pdf").is_file()


@needs_tex
def test_unfixable_brace_falls_back_to_plain_text_after_the_bound(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    broken = GOOD["background"] + " \\textbf{An unclosed bold group that never ends."
    script = WriterScript(
        drafts={"background": broken},
        fixes={"background": [broken]},
        compile_fixes={"background": [broken]},
    )
    record, _ = _write(make_settings, tmp_path, script, fix_rounds=2)
    attempts = record.compile_attempts
    assert [a.action for a in attempts] == ["fix", "fix", "fallback", "done"]
    assert script.count("compile_fix", "background") == 2
    background = _section(record, "background")
    assert background.fallback and any("plain text" in w for w in background.warnings)
    assert "An unclosed bold group" in background.text and record.status == "ok"


@needs_tex
def test_paper_that_never_compiles_is_reported(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    class NeverCompiles(LatexmkCompiler):
        def compile(
            self, folder: Path, tex_name: str, timeout_s: float, *, bibliography: bool = True
        ):  # type: ignore[no-untyped-def]
            result = super().compile(folder, tex_name, timeout_s, bibliography=bibliography)
            if tex_name == "paper.tex":
                from scientist.writeup.compile import CompileResult, LogError

                return CompileResult(ok=False, errors=[LogError(line=None, message="boom")])
            return result

    record, folder = _write(make_settings, tmp_path, WriterScript(), compiler=NeverCompiles())
    assert record.status == "failed" and record.pdf is None and record.errors == ["boom"]
    assert (folder / "paper" / "writeup.json").is_file()
    assert [a.action for a in record.compile_attempts][-1] == "give up"
    assert len(record.compile_attempts) <= 4


@needs_tex
def test_special_characters_from_the_model_are_escaped(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    text = "Accuracy rose to 43.86% on the data_set & the R&D split #1; it costs $5 per run."
    script = WriterScript(drafts={"conclusion": text})
    record, folder = _write(make_settings, tmp_path, script)
    tex = (folder / "paper" / "paper.tex").read_text()
    for escaped in ("43.86\\%", "data\\_set", "R\\&D", "\\#1", "\\$5"):
        assert escaped in tex
    assert record.status == "ok" and record.compile_attempts[0].ok


@needs_tex
def test_model_latex_cannot_read_files_or_run_commands(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    evil = (
        "Fine text. \\input{/etc/passwd} \\include{secret} \\immediate\\write18{touch pwned}"
        " \\openout5=leak.txt \\csname input\\endcsname{/etc/hosts} ^^5cinput{/etc/passwd}"
        " \\begin{filecontents}{x.tex}bad\\end{filecontents} More text."
    )
    script = WriterScript(drafts={"method": evil})
    record, folder = _write(make_settings, tmp_path, script)
    tex = (folder / "paper" / "paper.tex").read_text()
    body = tex.split("%%% BEGIN method")[1].split("%%% END method")[0]
    for bad in ("\\input", "\\include", "\\write", "\\openout", "\\csname", "^^5c", "filecontents"):
        assert bad not in body
    assert "root:" not in (folder / "paper" / "paper.tex").read_text()
    assert not (folder / "paper" / "pwned").exists() and record.status == "ok"


@needs_tex
def test_page_limit_triggers_one_shortening_pass(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    long = " ".join([GOOD["method"]] * 60)
    drafts = {name: long for name in ("method", "background", "related_work")}
    script = WriterScript(drafts=drafts, shortens={"method": GOOD["method"]})
    record, _ = _write(make_settings, tmp_path, script, page_limit=2)
    assert record.compile_attempts[0].action == "shorten"
    assert script.count("shorten") == 3  # the three long sections
    assert len(record.compile_attempts) == 2
    assert record.content_pages is not None
    if record.content_pages > 2:
        assert any("over the limit" in w for w in record.warnings)
    assert _section(record, "method").rounds == 1


@needs_tex
def test_citation_round_adds_real_references_with_unique_keys(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    queries = [
        {
            "section": "introduction",
            "claim": "Grokking is delayed generalisation.",
            "query": "grokking generalization",
        },
        {"section": "related_work", "claim": "Layer-wise learning rates", "query": "learning rate"},
    ]
    picks = [
        {
            "paper_id": "offline:power2022grokking",
            "section": "introduction",
            "sentence": "Grokking is delayed generalisation after memorisation.",
        },
        {
            "paper_id": "offline:power2022learning",
            "section": "related_work",
            "sentence": "Prior work described grokking",
        },
    ]
    script = WriterScript(queries=queries, picks=picks)
    literature = FakeLiterature()
    record, folder = _write(
        make_settings, tmp_path, script, literature=literature, citation_rounds=2
    )
    assert literature.queries == ["grokking generalization", "learning rate"]
    keys = sorted(c.key for c in record.citations)
    assert keys == ["power2022grokking", "power2022grokkinga"]
    intro = _section(record, "introduction").text
    assert "memorisation~\\cite{power2022grokking}." in intro
    bib = (folder / "paper" / "references.bib").read_text()
    assert bib.count("@") == 2 and "goodfellow2016deep" not in bib  # only cited entries
    assert "@inproceedings{power2022grokkinga," in bib
    assert record.citation_rounds == 2 and record.status == "ok"
    tex = (folder / "paper" / "paper.tex").read_text()
    assert "\\bibliography{references}" in tex
    assert script.count("select") == 1


def test_selection_schema_only_allows_returned_ids() -> None:
    from pydantic import ValidationError

    from scientist.writeup.citations import selection_schema

    schema = selection_schema(["offline:a", "offline:b"], load_settings("debug").profiles.compact)
    schema.model_validate(
        {"picks": [{"paper_id": "offline:a", "section": "method", "sentence": "x"}]}
    )
    with pytest.raises(ValidationError):
        schema.model_validate(
            {"picks": [{"paper_id": "invented:z", "section": "method", "sentence": "x"}]}
        )
    assert schema.model_json_schema()["$defs"]["CitationPick"]["properties"]["paper_id"]["enum"]


def test_missing_toolchain_fails_before_any_model_call(
    make_settings: SettingsFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "scientist.writeup.compile.shutil.which",
        lambda name: None if name == "chktex" else "/usr/bin/" + name,
    )
    script = WriterScript()
    with pytest.raises(ToolchainMissingError, match=r"chktex.*apt-get install"):
        _write(make_settings, tmp_path, script)
    assert script.calls == []


@needs_tex
def test_template_that_does_not_compile_fails_before_any_model_call(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    bad = tmp_path / "bad" / "template.tex"
    bad.parent.mkdir()
    source = (
        Path(__file__).parents[1] / "fixtures" / "latex_template" / "template.tex"
    ).read_text()
    bad.write_text(source.replace("\\maketitle", "\\maketitle\\nosuchcommand"))
    settings = make_settings("debug", writing={"citation_rounds": 0})
    folder = make_idea_folder(tmp_path / "run", template=bad)
    script = WriterScript()
    deps = WriteupDeps(
        Gateway(settings, backend=ScriptedLLM(script)),
        settings,
        FakeLiterature(),
        LatexmkCompiler(),
    )
    with pytest.raises(TemplateCompileError, match=r"nosuchcommand|Undefined"):
        write_paper(load_idea(), folder, load_record(), deps)
    assert script.calls == []


def test_weasyprint_engine_renders_the_same_content(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    queries = [{"section": "introduction", "claim": "grokking", "query": "grokking"}]
    picks = [
        {
            "paper_id": "offline:power2022grokking",
            "section": "introduction",
            "sentence": "Grokking is delayed generalisation after memorisation.",
        }
    ]
    script = WriterScript(queries=queries, picks=picks)
    record, folder = _write(
        make_settings, tmp_path, script, compiler=WeasyprintCompiler(), citation_rounds=1
    )
    assert record.status == "ok" and record.engine == "weasyprint" and record.pages
    page = (folder / "paper" / "paper.html").read_text()
    assert "<h2>1 Introduction</h2>" in page and '<img src="val_acc.png">' in page
    assert "<table>" in page and "0.9712" in page and "[1]" in page
    assert "Grokking: Generalization Beyond Overfitting" in page
    assert re.search(r"Figure 1: Validation accuracy", page)


@needs_tex
def test_feedback_and_review_reach_every_writer_prompt(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings("debug", writing={"citation_rounds": 0}, llm={"cache_enabled": False})
    folder = make_idea_folder(tmp_path / "run")
    script = WriterScript()
    backend = ScriptedLLM(script)
    deps = WriteupDeps(
        Gateway(settings, backend=backend), settings, FakeLiterature(), LatexmkCompiler()
    )
    write_paper(load_idea(), folder, load_record(), deps)
    script2 = WriterScript()
    backend2 = ScriptedLLM(script2)
    deps2 = WriteupDeps(
        Gateway(settings, backend=backend2), settings, FakeLiterature(), LatexmkCompiler()
    )
    record = write_paper(
        load_idea(),
        folder,
        load_record(),
        deps2,
        feedback="Mention the x/y task first.",
        review="The method is vague.",
    )
    drafts = [r for r, c in zip(backend2.requests, script2.calls, strict=True) if c[0] == "draft"]
    assert len(drafts) == 8
    for request in drafts:
        prompt = request.messages[-1].content
        assert "Mention the x/y task first." in prompt and "The method is vague." in prompt
        assert "The previous version of this section follows" in prompt
    assert record.feedback == "Mention the x/y task first." and record.review


@needs_tex
def test_citation_dropped_by_a_later_rewrite_is_put_back(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    queries = [{"section": "introduction", "claim": "grokking", "query": "grokking"}]
    picks = [
        {
            "paper_id": "offline:power2022grokking",
            "section": "introduction",
            "sentence": "Grokking is delayed generalisation after memorisation.",
        }
    ]
    invented = GOOD["introduction"] + " It is 0.5555 times faster."
    script = WriterScript(
        drafts={"introduction": invented},
        fixes={"introduction": [GOOD["introduction"]]},  # the rewrite loses the \cite
        queries=queries,
        picks=picks,
    )
    record, _ = _write(make_settings, tmp_path, script, citation_rounds=1)
    intro = _section(record, "introduction")
    assert script.count("fix", "introduction") == 1
    assert "memorisation~\\cite{power2022grokking}." in intro.text
    assert [c.key for c in record.citations] == ["power2022grokking"]


@needs_tex
def test_chktex_warnings_and_log_errors_carry_lines(tmp_path: Path) -> None:
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\n\\begin{document}\nSome (unbalanced text.\n"
        "A \\textbf{bold.\n\\end{document}\n"
    )
    compiler = LatexmkCompiler()
    lint = compiler.lint(tmp_path, "paper.tex")
    assert {w.line for w in lint} >= {3, 4}
    result = compiler.compile(tmp_path, "paper.tex", 60)
    assert not result.ok and result.pdf is None
    assert any("File ended while scanning use of \\textbf" in e.message for e in result.errors)


def test_graph_state_survives_a_checkpointer(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from graphs.writeup import build_writeup_graph

    settings = make_settings("debug", writing={"citation_rounds": 1}, llm={"cache_enabled": False})
    folder = make_idea_folder(tmp_path / "run")
    queries = [{"section": "introduction", "claim": "grokking", "query": "grokking"}]
    picks = [{"paper_id": "offline:power2022grokking", "section": "introduction", "sentence": "x"}]
    script = WriterScript(queries=queries, picks=picks)
    deps = WriteupDeps(
        Gateway(settings, backend=ScriptedLLM(script)),
        settings,
        FakeLiterature(),
        WeasyprintCompiler(),
    )
    graph = build_writeup_graph(checkpointer=InMemorySaver())
    inputs = {"idea": load_idea(), "idea_dir": str(folder), "record": load_record()}
    config = {"configurable": {"thread_id": "t1"}}
    state = graph.invoke(inputs, config=config, context=deps)
    assert state["result"].status == "ok"
    saved = graph.get_state(config).values
    assert saved["result"].citations[0].key == "power2022grokking"
    assert set(saved["sections"]) == {s.name for s in state["result"].sections}


# A capable model's normal write-up: past every compact bound, inside the full profile's.
FULL_MODEL = "openai/gpt-4o"
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")
LONG_INTRO = " ".join(
    [GOOD["introduction"]]
    + [
        f"Aspect {a} {b} of delayed generalisation deserves a look."
        for a in WORDS
        for b in WORDS[:4]
    ]
    + ["The introduction ends here."]
)
LONG_CLAIM = "Grokking, the delayed generalisation after memorisation, " * 8


def _papers() -> list[Paper]:
    return [
        Paper(
            paper_id=f"offline:grok{word}",
            title=f"Grokking study {word}",
            authors=["A. Author"],
            year=2022,
            abstract=f"Grokking {word}. " + "A long abstract about delayed generalisation. " * 30,
            bibtex=f"@misc{{grok{word},\n  title={{Grokking study {word}}},\n  year={{2022}}\n}}",
            citation_key=f"grok{word}",
            source="offline",
        )
        for word in WORDS
    ]


def _writeup_for(
    make_settings: SettingsFactory,
    tmp_path: Path,
    script: WriterScript,
    models: dict[str, str],
    literature: FakeLiterature | None = None,
    **writing: Any,
) -> tuple[WriteupRecord, list[tuple[tuple[str, str], LLMRequest]]]:
    settings = make_settings(
        "debug",
        writing={"citation_rounds": 0, "fix_rounds": 0, **writing},
        llm={"cache_enabled": False, "structured_reasks": 1, "models": models},
        literature={"max_results": 10},
    )
    backend = ScriptedLLM(script)
    deps = WriteupDeps(
        Gateway(settings, backend=backend),
        settings,
        literature or FakeLiterature(),
        WeasyprintCompiler(),
    )
    record = write_paper(load_idea(), make_idea_folder(tmp_path / "run"), load_record(), deps)
    return record, list(zip(script.calls, backend.requests, strict=True))


def _prompt(asked: list[tuple[tuple[str, str], LLMRequest]], kind: str, section: str = "") -> str:
    return next(r.messages[-1].content for (k, s), r in asked if (k, s) == (kind, section))


@pytest.mark.parametrize(("writer", "whole"), [(FULL_MODEL, True), ("local", False)])
def test_the_writer_sees_earlier_sections_whole_only_under_the_full_profile(
    make_settings: SettingsFactory, tmp_path: Path, writer: str, whole: bool
) -> None:
    script = WriterScript(drafts={"introduction": LONG_INTRO})
    record, asked = _writeup_for(make_settings, tmp_path, script, {"writer": writer})
    assert record.status == "ok" and len(LONG_INTRO) > 2000
    conclusion = _prompt(asked, "draft", "conclusion")
    assert ("The introduction ends here." in conclusion) is whole
    assert ("[…]" in conclusion) is not whole
    intro = _prompt(asked, "draft", "introduction")
    assert f"Length: about {750 if whole else 500} words." in intro
    caps = {r.max_tokens for (kind, _), r in asked if kind == "draft"}
    assert caps == {4096 if whole else 200}  # the debug preset's compact section cap


def test_a_full_profile_citation_round_keeps_every_pick_and_whole_abstracts(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    papers = _papers()
    queries = [{"section": "introduction", "claim": LONG_CLAIM, "query": "grokking study"}]
    sentence = "Grokking is delayed generalisation after memorisation."
    picks = [
        {"paper_id": p.paper_id, "section": "introduction", "sentence": sentence} for p in papers
    ]
    script = WriterScript(drafts={"introduction": LONG_INTRO}, queries=queries, picks=picks)
    record, asked = _writeup_for(
        make_settings,
        tmp_path,
        script,
        {"citations": FULL_MODEL},
        FakeLiterature(papers),
        citation_rounds=1,
    )
    assert record.status == "ok", record.errors
    assert sorted(c.key for c in record.citations) == sorted(p.citation_key for p in papers)
    assert script.count("select") == 1 and script.count("queries") == 1  # nothing re-asked
    assert "The introduction ends here." in _prompt(asked, "queries")
    select = _prompt(asked, "select")
    assert all(str(p.abstract) in select for p in papers)
    assert "(at most 20)" in select
    assert {r.max_tokens for (k, _), r in asked if k in ("queries", "select")} == {2048}


def test_a_compact_profile_citation_round_keeps_todays_bounds(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    papers = _papers()
    queries = [{"section": "introduction", "claim": "Grokking", "query": "grokking study"}]
    sentence = "Grokking is delayed generalisation after memorisation."
    picks = [
        {"paper_id": p.paper_id, "section": "introduction", "sentence": sentence} for p in papers
    ]
    script = WriterScript(drafts={"introduction": LONG_INTRO}, queries=queries, picks=picks)
    record, asked = _writeup_for(
        make_settings, tmp_path, script, {}, FakeLiterature(papers), citation_rounds=1
    )
    assert record.citations == [] and script.count("select") == 2  # re-asked, then given up
    assert any("no valid selection" in w for w in record.warnings)
    reask = [r for (kind, _), r in asked if kind == "select"][-1].messages[-1].content
    assert "at most 4 items" in reask
    assert "The introduction ends here." not in _prompt(asked, "queries")
    select = _prompt(asked, "select")
    abstract = str(papers[0].abstract)
    assert abstract[:300] in select and abstract not in select and "(at most 4)" in select


def test_citation_claims_are_bounded_by_the_profile() -> None:
    from pydantic import ValidationError

    profiles = load_settings("default").profiles
    reply = {"queries": [{"section": "method", "claim": LONG_CLAIM, "query": "q q"}], "done": False}
    assert citation_queries(profiles.full).model_validate(reply).queries[0].claim == LONG_CLAIM
    assert citation_queries(profiles.full).__name__ == "CitationQueries"
    with pytest.raises(ValidationError, match="at most 200 characters"):
        citation_queries(profiles.compact).model_validate(reply)
