"""What the paper graph's nodes need, passed as LangGraph's runtime context (tests swap parts)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from core.clock import Clock
from core.runstore import RunPaths
from core.settings import BudgetSettings, Settings
from gateway import Gateway
from gateway.ledger import Ledger, ScopedLedger
from reviewer.review.reviewing import ReviewDeps
from scientist.ideas.models import Idea
from scientist.ideas.template import Template
from scientist.pipeline.models import CopilotReply, CopilotRequest, IdeaOutcome, PipelineEvent

if TYPE_CHECKING:
    from core.literature.models import Literature
    from reviewer.review.form import ReviewReport
    from scientist.experiments.editor import CodeEditor
    from scientist.experiments.models import ExperimentRecord
    from scientist.experiments.runner import Runner
    from scientist.ideas.records import IdeasFile
    from scientist.survey.models import LiteratureReview
    from scientist.writeup.compile import LatexCompiler
    from scientist.writeup.models import WriteupRecord

Copilot = Callable[[CopilotRequest], CopilotReply]


class IdeaRunner(Protocol):
    """Runs one idea's whole pipeline as a task of its own (a Ray task on some node, or in
    this process on the idea's own checkpoints) and returns how it ended."""

    @property
    def parallel(self) -> int:
        """How many ideas of one run it takes at once."""
        ...

    def __call__(self, idea: Idea, deps: PipelineDeps) -> IdeaOutcome:
        """Run (or resume) ``idea``'s pipeline in ``deps.run``; block until it ends."""
        ...


@dataclass(frozen=True)
class StageGraphs:
    """The stage graphs the paper graph's nodes run, one call each (``graphs.paper``'s
    ``STAGE_GRAPHS``: the runners of graphs/ideas.py, survey.py, experiments.py, writeup.py
    and review.py). Passed in, so the pipeline's nodes never import graphs; each inner graph
    checkpoints under the paper graph's checkpointer, in the calling node's namespace."""

    ideas: Callable[..., IdeasFile]
    survey: Callable[..., LiteratureReview]
    experiments: Callable[..., ExperimentRecord]
    writeup: Callable[..., WriteupRecord]
    review: Callable[..., ReviewReport]


@dataclass
class PipelineDeps:
    """Gateway, literature, code editor, runner, LaTeX compiler and review inputs of one run."""

    settings: Settings
    gateway: Gateway
    graphs: StageGraphs
    review: ReviewDeps
    template: Template
    run: RunPaths
    literature: Literature
    editor: CodeEditor
    runner: Runner
    compiler: LatexCompiler
    copilot: Copilot | None = None
    on_event: Callable[[PipelineEvent], None] | None = None
    clock: Clock = time.time
    idea_runner: IdeaRunner | None = None
    _idea_gateways: dict[str, Gateway] = field(default_factory=dict, repr=False)

    def notify(self, event: PipelineEvent) -> None:
        """Report progress if anyone listens."""
        if self.on_event is not None:
            self.on_event(event)

    def idea_gateway(self, name: str) -> Gateway:
        """The gateway of one idea: its own ledger and budget, chained to the run's."""
        if name not in self._idea_gateways:
            pipeline = self.settings.pipeline
            budget = BudgetSettings(
                max_cost_usd=pipeline.idea_max_cost_usd,
                max_total_tokens=pipeline.idea_max_total_tokens,
            )
            path = self.run.idea(name).root / "ledger.jsonl"
            ledger = ScopedLedger(path, self.gateway.ledger, budget, resume=True)
            self._idea_gateways[name] = self.gateway.with_ledger(ledger)
        return self._idea_gateways[name]

    @property
    def run_ledger(self) -> Ledger:
        """The run's ledger (every call of every idea)."""
        return self.gateway.ledger
