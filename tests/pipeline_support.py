"""Fast fakes for whole-pipeline tests: a schema-filling scripted model, editor, runner,
compiler and literature. Also a command-line entry (``python -m tests.pipeline_support``)
so a test can run the pipeline in a subprocess and kill it.

The scripted model is for tests only; nothing outside tests/ can select it.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.literature.models import Paper, SearchResult, SourceOutcome
from core.runstore import RunPaths
from core.settings import Settings
from gateway import Gateway
from gateway.cache import ResponseCache
from gateway.ledger import Ledger
from gateway.scripted import ScriptedLLM
from gateway.types import LLMRequest
from graphs.paper import STAGE_GRAPHS
from reviewer.review.reviewing import ReviewDeps
from scientist.experiments.editor import EditResult
from scientist.experiments.models import GroupResult, ProcessOutcome, RunOutcome
from scientist.ideas.template import load_template
from scientist.pipeline.deps import PipelineDeps
from scientist.runs.wiring import RunRequest
from scientist.writeup.compile import CompileResult, LintWarning

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PDF = ROOT / "samples" / "papers" / "multi_style_adapter.pdf"
WORDS = (
    "alpha",
    "bravo",
    "cobalt",
    "delta",
    "ember",
    "falcon",
    "garnet",
    "harbor",
    "indigo",
    "jasper",
    "kestrel",
    "lumen",
    "meadow",
    "nectar",
    "onyx",
    "prism",
    "quartz",
    "raven",
)
# A tiny valid PNG (1x1 pixel), so plots exist without running matplotlib.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f650000000049454e44ae426082"
)


# ----------------------------------------------------------------------------- the model


class SchemaFiller:
    """Builds a valid instance of any JSON schema; distinct words keep ideas apart."""

    def __init__(self, overrides: dict[str, Any] | None = None) -> None:
        self.counter = itertools.count()
        self.overrides = {
            "done": True,
            "decision": "novel",
            "Ethical_Concerns": False,
            **(overrides or {}),
        }

    def fill(self, schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
        """A value that satisfies ``schema``."""
        defs = defs if defs is not None else schema.get("$defs", {})
        if "$ref" in schema:
            return self.fill(defs[schema["$ref"].split("/")[-1]], defs)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [s for s in schema[key] if s.get("type") != "null"]
                return self.fill(options[0], defs)
        if "enum" in schema:
            return schema["enum"][0]
        if "const" in schema:
            return schema["const"]
        return self._typed(schema, defs)

    def _typed(self, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
        kind = schema.get("type", "object")
        if kind == "object":
            props = schema.get("properties", {})
            return {k: self._field(k, v, defs) for k, v in props.items()}
        if kind == "array":
            count = max(1, schema.get("minItems", 1))
            return [self.fill(schema.get("items", {}), defs) for _ in range(count)]
        if kind in ("integer", "number"):
            low, high = schema.get("minimum", 1), schema.get("maximum", 10)
            return (low + high) // 2 if kind == "integer" else (low + high) / 2
        if kind == "boolean":
            return False
        n = next(self.counter)
        text = f"{WORDS[n % len(WORDS)]}_{n}"
        return text.ljust(schema.get("minLength", 0), "x")[: schema.get("maxLength", 10_000)]

    def _field(self, name: str, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        if name == "Title":
            n = next(self.counter)
            return f"On {WORDS[n % len(WORDS)]} and {WORDS[(n * 7 + 3) % len(WORDS)]} {n}"
        if name == "query":
            return "grokking modular arithmetic"
        return self.fill(schema, defs)


PLAIN_TEXT = (
    "We study how the method behaves on the task described in the introduction. "
    "The design follows the template's baseline and changes one component at a time."
)


class PipelineModel:
    """Answers any request: a filled schema, or a fixed paragraph for plain text.

    Each request's (schema title, hash of the messages) is appended to ``log`` so a test
    can see which calls were made again after a resume. With ``pause_on``, the first
    request for that schema writes ``pause_marker`` and sleeps ``pause_s`` before it is
    logged (a kill test kills the process there: that request never reached the model).
    """

    def __init__(
        self,
        log: Path | None = None,
        delay_s: float = 0.0,
        *,
        pause_on: str | None = None,
        pause_marker: Path | None = None,
        pause_s: float = 0.0,
    ) -> None:
        self.filler = SchemaFiller()
        self.log = log
        self.delay_s = delay_s
        self.pause_on = pause_on
        self.pause_marker = pause_marker
        self.pause_s = pause_s
        self._lock = threading.Lock()

    def __call__(self, request: LLMRequest) -> str:
        fmt = request.response_format or {}
        schema = fmt.get("schema") or fmt.get("json_schema", {}).get("schema")
        title = str((schema or {}).get("title", "text"))
        marker = self.pause_marker
        if title == self.pause_on and marker is not None and not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(self.pause_s)
        self._record(title, request)
        if self.delay_s:
            time.sleep(self.delay_s)
        if not schema:
            return PLAIN_TEXT
        with self._lock:
            return json.dumps(self.filler.fill(schema))

    def _record(self, title: str, request: LLMRequest) -> None:
        if self.log is None:
            return
        digest = hashlib.sha256(
            json.dumps([m.model_dump() for m in request.messages]).encode()
        ).hexdigest()[:16]
        with self._lock, self.log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"schema": title, "hash": digest}) + "\n")


# ----------------------------------------------------------------------------- the fakes


class FakeEditor:
    """Appends a comment to each file it is asked to edit; may pause once (kill tests)."""

    def __init__(self, pause_marker: Path | None = None, pause_s: float = 0.0) -> None:
        self.pause_marker = pause_marker
        self.pause_s = pause_s
        self.calls = 0

    def edit(
        self, workdir: Path, files: Sequence[str], message: str, *, log_stem: str
    ) -> EditResult:
        """Edit the files; the first call pauses when a marker path is set."""
        self.calls += 1
        if self.pause_marker is not None and not self.pause_marker.exists():
            self.pause_marker.write_text(str(os.getpid()))
            time.sleep(self.pause_s)
        for name in files:
            path = workdir / name
            comment = "#" if name.endswith(".py") else ""
            with path.open("a", encoding="utf-8") as handle:
                handle.write(f"\n{comment} edit {self.calls}: figure shows the loss curve\n")
        return EditResult(command=["fake-editor", *files], exit_code=0, seconds=0.0)


class FakeRunner:
    """Writes a plausible final_info.json; the first ``crashes`` ideas' runs raise."""

    def __init__(self, crashes: int = 0) -> None:
        self.crashes = crashes
        self.crashed: set[str] = set()

    def run_experiment(self, workdir: Path, run_name: str) -> RunOutcome:
        """Pretend to run experiment.py."""
        if workdir.name in self.crashed or len(self.crashed) < self.crashes:
            self.crashed.add(workdir.name)
            raise RuntimeError(f"simulated crash of {workdir.name}'s experiment")
        out = workdir / run_name
        out.mkdir(parents=True, exist_ok=True)
        value = 0.5 + 0.01 * len(run_name)
        info = {"toy": {"means": {"accuracy": value}, "stderrs": {"accuracy": 0.01}}}
        (out / "final_info.json").write_text(json.dumps(info))
        for name in ("stdout.txt", "stderr.txt"):
            (out / name).write_text("")
        return RunOutcome(
            run_name=run_name,
            status="ok",
            exit_code=0,
            seconds=0.0,
            results={"toy": GroupResult(means={"accuracy": value}, stderrs={"accuracy": 0.01})},
            stdout_path=f"{run_name}/stdout.txt",
            stderr_path=f"{run_name}/stderr.txt",
        )

    def run_plot(self, workdir: Path) -> ProcessOutcome:
        """Pretend to run plot.py: one PNG."""
        (workdir / "accuracy.png").write_bytes(PNG)
        return ProcessOutcome(
            status="ok", exit_code=0, seconds=0.0, stdout_path="plot.out", stderr_path="plot.err"
        )


class FakeCompiler:
    """'Compiles' by copying a real sample PDF next to the .tex."""

    engine = "latex"

    def preflight(self, template_dir: Path, tex_name: str, timeout_s: float) -> None:
        """Nothing to check."""

    def compile(
        self, folder: Path, tex_name: str, timeout_s: float, *, bibliography: bool = True
    ) -> CompileResult:
        """Copy the sample PDF."""
        pdf = folder / (Path(tex_name).stem + ".pdf")
        shutil.copyfile(SAMPLE_PDF, pdf)
        return CompileResult(ok=True, pdf=pdf)

    def lint(self, folder: Path, tex_name: str) -> list[LintWarning]:
        """No warnings."""
        return []


class FakeLiterature:
    """One well-known paper for every query."""

    PAPER = Paper(
        paper_id="offline:power2022grokking",
        title="Grokking: Generalization Beyond Overfitting on Small Algorithmic Datasets",
        authors=["Alethea Power", "Yuri Burda"],
        year=2022,
        venue="arXiv",
        abstract="Networks generalise long after overfitting on modular arithmetic.",
        bibtex="@article{power2022grokking,\n  title={Grokking},\n  author={Power, Alethea},\n"
        "  journal={arXiv},\n  year={2022}\n}",
        citation_key="power2022grokking",
        source="offline",
    )

    def search(self, query: str, limit: int) -> SearchResult:
        """The one paper."""
        return SearchResult(
            query=query,
            papers=[self.PAPER],
            outcomes=[SourceOutcome(source="offline", ok=True, results=1)],
        )

    def paper(self, paper_id: str) -> Paper | None:
        """The one paper, by id."""
        return self.PAPER if paper_id == self.PAPER.paper_id else None


def fake_deps_factory(
    model: Callable[[LLMRequest], str] | ScriptedLLM,
    *,
    editor: FakeEditor | None = None,
    runner: FakeRunner | None = None,
    copilot: Any = None,
    literature: Any = None,
) -> Callable[[Settings, RunPaths, RunRequest], PipelineDeps]:
    """A deps factory for run_pipeline / resume_pipeline with every side effect faked
    (``literature``: a fake cascade of the test's own; default ``FakeLiterature``)."""

    def build(settings: Settings, run: RunPaths, request: RunRequest) -> PipelineDeps:
        llm = model if isinstance(model, ScriptedLLM) else ScriptedLLM(model)
        cache = ResponseCache(settings.cache_file()) if settings.llm.cache_enabled else None
        ledger = Ledger(run.ledger, resume=True)
        gateway = Gateway(settings, backend=llm, ledger=ledger, cache=cache)
        # The review's checks look up in it too, never the network.
        cascade = literature if literature is not None else FakeLiterature()
        return PipelineDeps(
            settings=settings,
            gateway=gateway,
            graphs=STAGE_GRAPHS,
            review=ReviewDeps.from_settings(settings, gateway, literature=cascade),
            template=load_template(request.template),
            run=run,
            literature=cascade,
            editor=editor or FakeEditor(),
            runner=runner or FakeRunner(),
            compiler=FakeCompiler(),
            copilot=copilot or request.copilot,
            on_event=request.on_event,
        )

    return build


def fast_overrides(tmp: Path, *, cache: bool = False) -> list[str]:
    """Small, fast settings for pipeline tests, private folders, the response cache off
    unless ``cache`` (then in the private data folder, as ``real_deps`` would have it)."""
    return [
        f"data_dir={tmp / 'data'}",
        f"runs_dir={tmp / 'runs'}",
        f"llm.cache_enabled={'true' if cache else 'false'}",
        "ideas.num_ideas=1",
        "ideas.num_reflections=1",
        "ideas.novelty_rounds=1",
        "experiments.max_rounds=1",
        "writing.citation_rounds=1",
        "writing.fix_rounds=0",
        "writing.page_limit=20",
        "review.num_reviewers=1",
        "review.num_reflections=0",
        "review.num_fewshot=0",
    ]


def main() -> None:
    """Run or resume a pipeline with the fakes (used by the kill test)."""
    from scientist.runs.run import resume_pipeline, run_pipeline

    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["start", "resume"])
    parser.add_argument("--tmp", type=Path, required=True)
    parser.add_argument("--template", default="grokking")
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--pause-marker", type=Path)
    parser.add_argument("--pause-s", type=float, default=0.0)
    parser.add_argument("--pause-on", help="pause the model at this schema, not the editor")
    parser.add_argument("--cache", action="store_true", help="turn the response cache on")
    args = parser.parse_args()
    log = args.tmp / "calls.jsonl"
    if args.pause_on:
        marker, pause_s = args.pause_marker, args.pause_s
        model = PipelineModel(log, pause_on=args.pause_on, pause_marker=marker, pause_s=pause_s)
        editor = FakeEditor()
    else:
        model = PipelineModel(log)
        editor = FakeEditor(args.pause_marker, args.pause_s)
    factory = fake_deps_factory(model, editor=editor)
    if args.action == "start":
        overrides = fast_overrides(args.tmp, cache=args.cache)
        request = RunRequest(template=args.template, preset="debug", overrides=overrides)
        run, manifest = run_pipeline(request, deps_factory=factory)
    else:
        run, manifest = resume_pipeline(str(args.run_dir), deps_factory=factory)
    print(json.dumps({"run_dir": str(run.root), "status": manifest.status}))


if __name__ == "__main__":
    main()
