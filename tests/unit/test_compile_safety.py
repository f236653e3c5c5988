"""The LaTeX compile is a box (issue #15): latexmk with ``-norc`` in a fresh folder that holds
only the files the write-up chose, under a scrubbed environment; and model LaTeX loses the
``@``-command escapes. Every attack here runs the real latexmk/pdflatex on real files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.settings import Settings
from gateway import Gateway, ScriptedLLM
from graphs.writeup import write_paper
from scientist.writeup.compile import LatexmkCompiler, latex_environment
from scientist.writeup.deps import WriteupDeps
from scientist.writeup.latex import clean_model_latex, strip_forbidden
from tests.fixtures.writeup.fake_literature import FakeLiterature
from tests.fixtures.writeup.idea_folder import (
    draw_figures,
    load_idea,
    load_record,
    make_idea_folder,
)
from tests.fixtures.writeup.script import WriterScript

SettingsFactory = Callable[..., Settings]
needs_tex = pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed")
KEY = "sk-test-4f1c9e77d2a8b3c5e6f7a8b9c0d1e2f3"
SECRET = "STRAYSECRETCONTENT"
STYLE = "\\newcommand{\\boxstyled}{STYLELOADED}\n"


def _tex(body: str, preamble: str = "") -> str:
    return (
        "\\documentclass{article}\n\\usepackage{graphicx}\n"
        f"{preamble}\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )


def _pdf_text(pdf: Path) -> str:
    return " ".join(page.extract_text() or "" for page in PdfReader(str(pdf)).pages)


def _files_holding(root: Path, needle: str) -> list[Path]:
    """Every file under ``root`` whose bytes or name contain ``needle``."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and (needle.encode() in path.read_bytes() or needle in path.name)
    ]


def _rc_attack(marker: Path) -> str:
    """A latexmkrc (Perl) that copies the API key and the environment out, if it is run."""
    return (
        f'open(my $f, ">", "{marker}"); print $f "KEY=$ENV{{OPENAI_API_KEY}}\\n";\n'
        'print $f "$_=$ENV{$_}\\n" for sort keys %ENV; close($f);\n'
        'open(my $g, ">", "rc_leak.txt"); print $g "$ENV{OPENAI_API_KEY}\\n"; close($g);\n'
        'print STDOUT "LEAK $ENV{OPENAI_API_KEY}\\n";\n'
        'print STDERR "LEAK $ENV{OPENAI_API_KEY}\\n";\n'
        "1;\n"
    )


@needs_tex
@pytest.mark.parametrize("where", ["latexmkrc", ".latexmkrc", "HOME/.latexmkrc"])
def test_a_planted_latexmkrc_is_never_run_and_the_key_stays_out_of_every_output(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "idea" / "paper"
    folder.mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("HOME", str(home))
    marker = tmp_path / "rc_ran.txt"
    rc = home / ".latexmkrc" if where.startswith("HOME/") else folder / where
    rc.write_text(_rc_attack(marker), encoding="utf-8")
    (folder / "paper.tex").write_text(_tex("Hello, box."), encoding="utf-8")

    result = LatexmkCompiler().compile(folder, "paper.tex", 120)

    assert result.ok, [e.render() for e in result.errors]
    assert result.pdf == folder / "paper.pdf" and "Hello, box." in _pdf_text(result.pdf)
    assert (folder / "paper.log").is_file()
    assert not marker.exists(), "the planted latexmkrc ran"
    assert not (folder / "rc_leak.txt").exists()
    assert _files_holding(tmp_path, KEY) == []


@needs_tex
def test_the_build_sees_only_the_chosen_files_and_brings_back_pdf_and_log(tmp_path: Path) -> None:
    folder = tmp_path / "idea" / "paper"
    folder.mkdir(parents=True)
    draw_figures(folder)
    (folder / "stray.txt").write_text(SECRET, encoding="utf-8")
    (folder / "notes.tex").write_text(SECRET, encoding="utf-8")
    (folder / "boxstyle.sty").write_text(STYLE, encoding="utf-8")
    (folder / "references.bib").write_text(
        "@article{a2020, title={A Referenced Work}, author={Doe, Jane},\n"
        "  journal={J}, year={2020}}\n",
        encoding="utf-8",
    )
    body = (
        "\\boxstyled{} \\IfFileExists{stray.txt}{STRAYVISIBLE}{STRAYABSENT} "
        "\\IfFileExists{notes.tex}{NOTESVISIBLE}{NOTESABSENT} \\cite{a2020}\n"
        "\\includegraphics[width=3cm]{val_acc.png} \\includegraphics[width=3cm]{train_loss}\n"
        "\\bibliographystyle{plain}\\bibliography{references}"
    )
    (folder / "paper.tex").write_text(_tex(body, "\\usepackage{boxstyle}\n"), encoding="utf-8")

    result = LatexmkCompiler().compile(folder, "paper.tex", 120)

    assert result.ok, [e.render() for e in result.errors]
    text = _pdf_text(folder / "paper.pdf")
    assert "STYLELOADED" in text and "Jane Doe" in text
    assert "STRAYABSENT" in text and "NOTESABSENT" in text
    assert "VISIBLE" not in text and SECRET not in text
    for output in ("paper.pdf", "paper.log", "paper.blg"):
        assert (folder / output).is_file(), output
    assert not (folder / "paper.aux").exists(), "the build ran in the paper folder"


@needs_tex
def test_tex_probing_the_environment_finds_no_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kpathsea expands $VARIABLES in file names: with the key set to "paper", \openin of
    # $OPENAI_API_KEY finds paper.tex exactly when the key is in the compiler's environment.
    monkeypatch.setenv("OPENAI_API_KEY", "paper")
    probe = (
        "{\\catcode`\\$=12 \\catcode`\\_=12 \\immediate\\openin3=$OPENAI_API_KEY\\relax}"
        "\\ifeof3 KEYHIDDEN\\else KEYVISIBLE\\fi"
    )
    (tmp_path / "paper.tex").write_text(_tex(probe), encoding="utf-8")

    result = LatexmkCompiler().compile(tmp_path, "paper.tex", 120)

    assert result.ok, [e.render() for e in result.errors]
    text = _pdf_text(tmp_path / "paper.pdf")
    assert "KEYHIDDEN" in text and "KEYVISIBLE" not in text


def test_the_compiler_environment_is_an_allow_list_with_paranoid_tex_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY", "TEXMFOUTPUT"):
        monkeypatch.setenv(name, KEY)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = latex_environment()
    assert KEY not in " ".join(env.values())
    assert env["PATH"] == "/usr/bin:/bin"
    assert env["openin_any"] == env["openout_any"] == "p" and env["shell_escape"] == "f"


@needs_tex
def test_a_symlink_planted_at_the_pdf_is_replaced_not_written_through(tmp_path: Path) -> None:
    folder = tmp_path / "paper"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    (folder / "paper.pdf").symlink_to(victim)
    (folder / "paper.log").symlink_to(victim)
    (folder / "paper.tex").write_text(_tex("Hello."), encoding="utf-8")

    result = LatexmkCompiler().compile(folder, "paper.tex", 120)

    assert result.ok and victim.read_bytes() == b"keep me"
    assert not (folder / "paper.pdf").is_symlink() and "Hello." in _pdf_text(folder / "paper.pdf")


@needs_tex
def test_preflight_ignores_a_latexmkrc_planted_in_the_template_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tmp_path / "idea" / "latex"
    template.mkdir(parents=True)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    marker = tmp_path / "rc_ran.txt"
    (template / "latexmkrc").write_text(_rc_attack(marker), encoding="utf-8")
    (template / "template.tex").write_text(_tex("Template."), encoding="utf-8")

    LatexmkCompiler().preflight(template, "template.tex", 120)

    assert not marker.exists() and _files_holding(tmp_path, KEY) == []


@pytest.mark.parametrize(
    ("evil", "gone"),
    [
        ("\\makeatletter\\@@input{/etc/hostname}\\makeatother", "\\@@input"),
        ("\\makeatletter \\@input{/etc/hostname}", "\\@input"),
        ("\\makeatletter \\@iinput{/etc/hostname}", "\\@iinput"),
        ("\\makeatletter \\@namedef{input}{/etc/hostname}", "\\@namedef"),
        ("\\makeatletter \\@nameuse{@@input}{/etc/hostname}", "\\@nameuse"),
        ("\\csname @@input\\endcsname{/etc/hostname}", "\\csname"),
        ("\\UseName{@@input}{/etc/hostname}", "\\UseName"),
        ("\\ExplSyntaxOn \\file_input:n{/etc/hostname}", "\\ExplSyntaxOn"),
        ("\\pdffiledump length 64 {/etc/hostname}", "\\pdffiledump"),
    ],
)
def test_at_commands_and_other_name_tricks_are_stripped(evil: str, gone: str) -> None:
    text, removed = strip_forbidden(f"Before. {evil} After.")
    assert gone in removed
    for bad in ("\\makeatletter", "\\@", "\\csname", "\\UseName", "\\Expl", "\\pdffile"):
        assert bad not in text
    assert text.startswith("Before.") and text.endswith("After.")


def test_the_space_factor_command_and_ordinary_text_survive() -> None:
    text, removed = strip_forbidden("An RNN\\@. And e-mail user@example.org stays.")
    assert text == "An RNN\\@. And e-mail user@example.org stays." and removed == []


def test_removed_at_commands_are_listed_like_the_other_forbidden_commands() -> None:
    _, notes = clean_model_latex("Text \\makeatletter\\@@input{/etc/hostname}\\makeatother", "X")
    assert {"removed \\makeatletter", "removed \\@@input", "removed \\makeatother"} <= set(notes)


@needs_tex
def test_model_at_input_cannot_pull_a_file_into_the_paper(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(
        "debug",
        writing={"citation_rounds": 0, "fix_rounds": 1, "page_limit": 8},
        llm={"cache_enabled": False},
    )
    folder = make_idea_folder(tmp_path / "run")
    (folder / "paper").mkdir()
    (folder / "paper" / "stray.txt").write_text(SECRET, encoding="utf-8")
    evil = "Fine text. \\makeatletter\\@@input{stray.txt}\\makeatother More text."
    script = WriterScript(drafts={"method": evil}, fixes={"method": [evil]})
    deps = WriteupDeps(
        gateway=Gateway(settings, backend=ScriptedLLM(script)),
        settings=settings,
        literature=FakeLiterature(),
        compiler=LatexmkCompiler(),
    )
    record = write_paper(load_idea(), folder, load_record(), deps)

    assert record.status == "ok"
    assert SECRET not in _pdf_text(folder / "paper" / "paper.pdf")
    body = (folder / "paper" / "paper.tex").read_text().split("%%% BEGIN method")[1]
    assert "@@input" not in body.split("%%% END method")[0]
    method = next(s for s in record.sections if s.name == "method")
    assert "removed \\@@input" in method.warnings
