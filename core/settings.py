"""One settings object for every stage, built from a named preset, the environment and overrides.

Priority, highest first: explicit overrides (CLI ``--set``), ``AUTOSCHOLAR_*`` environment
variables (nested with ``__``, e.g. ``AUTOSCHOLAR_LLM__MODELS__WRITER``), the preset JSON,
the defaults below. Each stage reads its own section; the gateway's sections (``llm``,
``budget``, ``local``) are defined in ``core.settings``.
"""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from core.job_policy import JobPolicySettings
from gateway.errors import SettingsError
from gateway.profiles import OutputProfile, ProfileSettings
from gateway.settings import BudgetSettings, LLMSettings, LocalModelSettings, Role, RoleModels

__all__ = [
    "BudgetSettings",
    "ExperimentsSettings",
    "IdeasSettings",
    "LLMSettings",
    "LiteratureSettings",
    "LocalModelSettings",
    "PipelineSettings",
    "PlanSettings",
    "ReviewSettings",
    "Role",
    "RoleModels",
    "ServiceSettings",
    "Settings",
    "SurveySettings",
    "WritingSettings",
    "deep_merge",
    "flatten",
    "load_settings",
    "nest",
    "parse_assignments",
    "preset_names",
    "read_preset",
    "set_path",
]

PRESET_DIR = Path(__file__).parent / "presets"
LiteratureSource = Literal["semantic_scholar", "openalex", "offline"]
DEFAULT_SOURCES: tuple[LiteratureSource, ...] = ("semantic_scholar", "openalex", "offline")
Persona = Literal["balanced", "critical", "generous"]
DEFAULT_PERSONAS: tuple[Persona, ...] = ("balanced", "critical", "generous")


# A researcher brings a few ideas of their own; each one costs a novelty check.
MAX_GIVEN_IDEAS = 10


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdeasSettings(_Strict):
    """Idea generation and novelty checking."""

    num_ideas: int = Field(3, ge=1, description="Ideas generated per template.")
    num_reflections: int = Field(3, ge=0, description="Refinement rounds per idea.")
    novelty_rounds: int = Field(
        5, ge=0, description="Model rounds per novelty check; 0 skips the check."
    )
    novelty_check: bool = Field(True, description="Check each kept idea against the literature.")
    include_seed_ideas: bool = Field(
        False, description="Also novelty-check the template's seed ideas and list them."
    )
    duplicate_title_ratio: float = Field(
        0.85,
        ge=0,
        le=1,
        description="Titles at least this similar (difflib ratio) mark an idea as a duplicate.",
    )
    temperature: float | None = Field(
        None, ge=0, le=2, description="Sampling temperature; default llm.temperature."
    )
    given: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_GIVEN_IDEAS,
        description="The researcher's own ideas (ideas.json's idea objects: Name, Title, "
        "Experiment), used instead of generated ones and novelty-checked; their scores are "
        "not the researcher's to give and are dropped. `scientist run --idea FILE.md` or "
        "--idea-json sets it; checked by the ideas stage.",
    )
    refine_given: bool = Field(
        False,
        description="Refine a researcher's own idea with the reflection step (num_reflections "
        "rounds, which also score it); off: it is used verbatim.",
    )
    topic: str | None = Field(
        None,
        max_length=2000,
        description="The researcher's direction for idea generation (`--topic`): it goes "
        "into the generation prompt and is recorded in ideas.json.",
    )


class LiteratureSettings(_Strict):
    """Semantic Scholar, OpenAlex and the offline index."""

    sources: list[LiteratureSource] = Field(
        default_factory=lambda: list(DEFAULT_SOURCES),
        description="Sources tried in order.",
    )
    s2_api_key: SecretStr | None = Field(
        None, description="Semantic Scholar key (optional); else the S2_API_KEY variable."
    )
    s2_api_url: str | None = Field(
        None, description="Semantic Scholar API base URL; default the public API."
    )
    s2_min_interval_s: float = Field(
        1.1, ge=0, description="Seconds between Semantic Scholar requests (1 req/s unkeyed)."
    )
    openalex_mailto: str | None = Field(None, description="E-mail for OpenAlex's polite pool.")
    openalex_url: str = Field("https://api.openalex.org", description="OpenAlex API base URL.")
    openalex_min_interval_s: float = Field(
        0.15, ge=0, description="Seconds between OpenAlex requests."
    )
    timeout_s: float = Field(
        20.0, gt=0, description="Deadline of one source call, retries and waits included."
    )
    connect_timeout_s: float = Field(
        3.0, gt=0, description="Connect timeout: an unreachable host fails this fast."
    )
    max_retries: int = Field(
        2, ge=0, le=5, description="Retries of HTTP 429 and 5xx per call, within timeout_s."
    )
    backoff_s: float = Field(1.0, ge=0, description="First wait before a retry; doubles.")
    skip_after_failures: int = Field(
        2, ge=1, description="Consecutive failures after which a source is skipped for a while."
    )
    skip_for_s: float = Field(
        300.0, ge=0, description="How long a failing source is skipped before it is tried again."
    )
    cache_enabled: bool = Field(True, description="Serve repeated queries from the SQLite cache.")
    cache_ttl_days: float = Field(30.0, gt=0, description="Age after which cached answers expire.")
    cache_path: Path | None = Field(
        None, description="Response cache; default <data_dir>/literature/cache.sqlite."
    )
    index_path: Path | None = Field(
        None, description="Offline index; default <data_dir>/literature/index.sqlite."
    )
    max_results: int = Field(10, ge=1, le=100, description="Results shown per query.")


class SurveySettings(_Strict):
    """The literature review of each idea, before its experiments (scientist.survey)."""

    enabled: bool = Field(
        True,
        description="Review the literature on each idea (literature_review.json/.md) before "
        "its experiments; off: the run skips the stage.",
    )
    queries: int = Field(
        4, ge=1, le=20, description="Search queries generated from the idea and searched."
    )
    papers_kept: int = Field(
        8,
        ge=1,
        le=50,
        description="Papers kept after deduplication and ranking (the most relevant), each "
        "summarised and cited by the write-up.",
    )


class PlanSettings(_Strict):
    """The experiment plan of each idea, between its review and its experiments."""

    enabled: bool = Field(
        True,
        description="Plan each idea's experiments (plan.json/.md: hypotheses, one run per "
        "coding round, baselines, metrics) before the coding rounds, which follow it; off: "
        "the run skips the stage and the rounds go as the coder sees fit.",
    )


class ExperimentsSettings(_Strict):
    """Aider-driven experiment rounds and the sandboxed runner."""

    max_rounds: int = Field(4, ge=1, le=10, description="Coding rounds per idea.")
    run_timeout_s: float = Field(600.0, gt=0, description="Wall-clock limit of one run.")
    memory_limit_mb: int = Field(4096, ge=64, description="Address-space limit of one run.")
    cpu_limit: int = Field(2, ge=1, description="CPUs one run may use.")
    isolation: Literal["bwrap", "none"] = Field(
        "bwrap",
        description="bwrap: every run in a bubblewrap box (read-only system, the idea folder "
        "its only writable place, no network, own pid namespace, dies with its worker); none: "
        "rlimits only, with a warning (LLM-written code can then read and write what the "
        "worker can).",
    )
    max_processes: int = Field(
        256, ge=8, le=4096, description="Processes a run may add (RLIMIT_NPROC; stops fork bombs)."
    )
    max_file_mb: int = Field(
        2048, ge=1, description="Largest file a run may write, MB (RLIMIT_FSIZE)."
    )
    max_open_files: int = Field(1024, ge=64, description="Open files per process (RLIMIT_NOFILE).")
    max_cpu_s: float | None = Field(
        None,
        gt=0,
        description="CPU seconds one run may burn (RLIMIT_CPU); default: every pinned CPU "
        "busy for the whole run timeout.",
    )
    aider_bin: Path | None = Field(
        None, description="The aider executable; default .venv-aider/bin/aider or PATH."
    )
    aider_round_timeout_s: float = Field(600.0, gt=0, description="Wall-clock limit per round.")
    aider_edit_format: Literal["diff", "whole", "udiff", "diff-fenced"] = Field(
        "diff", description="How Aider asks the coder to write edits (SEARCH/REPLACE by default)."
    )
    plot_timeout_s: float = Field(300.0, gt=0, description="Wall-clock limit of one plot.py run.")
    plot_attempts: int = Field(
        2, ge=1, le=5, description="Plot rounds: a failing plot.py goes back to the coder."
    )
    stop_after_no_change: int = Field(
        2,
        ge=1,
        description="Consecutive coding rounds in which the coder changed nothing that end the "
        "loop early (it has nothing more to try).",
    )
    error_tail_lines: int = Field(
        40, ge=5, le=400, description="Lines of a failed run's stderr fed back to the coder."
    )
    reuse_template_baseline: bool = Field(
        True,
        description="Copy the template's run_0 (from `scientist baseline`) when its "
        "experiment.py and its environment (requirements.txt, Python) are unchanged, instead "
        "of running the baseline again.",
    )
    template_envs: bool = Field(
        True,
        description="A template with a requirements.txt runs in its own virtualenv (made once, "
        "cached by a hash of the requirements and the Python version); false: every template "
        "runs on autoscholar's own interpreter.",
    )
    env_dir: Path | None = Field(
        None, description="Where template virtualenvs are kept; default <data_dir>/envs."
    )
    env_python: str | None = Field(
        None,
        description="The interpreter that makes template virtualenvs (a template's "
        ".python-version may ask for another); default the one running autoscholar.",
    )
    env_install_timeout_s: float = Field(
        1800.0, gt=0, description="Wall-clock limit of the pip install that makes one virtualenv."
    )


class WritingSettings(_Strict):
    """LaTeX write-up."""

    page_limit: int = Field(8, ge=1, description="Pages before references.")
    citation_rounds: int = Field(5, ge=0, description="Rounds of citation search.")
    fix_rounds: int = Field(3, ge=0, description="Compile-and-fix rounds.")
    compile_timeout_s: float = Field(120.0, gt=0, description="Timeout of one latexmk call.")
    isolation: Literal["bwrap", "none"] = Field(
        "bwrap",
        description="bwrap: latexmk runs in the bubblewrap box experiments use (TeX read-only, "
        "a fresh folder its only writable place, no network); none: a fresh folder and "
        "paranoid TeX file access only.",
    )
    pdf_engine: Literal["latex", "weasyprint"] = Field("latex", description="PDF renderer.")
    refine_rounds: int = Field(
        1, ge=0, le=3, description="Checklist-driven refinement passes per section."
    )
    max_citation_queries: int = Field(
        3, ge=1, le=8, description="Literature queries the model may issue per citation round."
    )
    shorten_rounds: int = Field(
        1, ge=0, le=3, description="Shortening passes when the paper exceeds page_limit."
    )
    max_log_lines: int = Field(
        20, ge=1, description="Compiler log lines and chktex warnings shown per fix round."
    )
    novelty_citations: int = Field(
        3,
        ge=0,
        le=20,
        description="Related Work always cites the closest papers the idea's novelty check "
        "named; when it named none, it cites this many top results of the check's queries "
        "instead (0: none).",
    )


class ReviewSettings(_Strict):
    """The reviewer ensemble."""

    num_reviewers: int = Field(3, ge=1, le=10, description="Independent reviewers in the ensemble.")
    num_reflections: int = Field(3, ge=0, le=10, description="Self-reflection rounds per reviewer.")
    num_fewshot: int = Field(1, ge=0, le=3, description="Example reviews shown to each reviewer.")
    temperature: float = Field(0.75, ge=0, le=2, description="Sampling temperature of reviews.")
    personas: list[Persona] = Field(
        default_factory=lambda: list(DEFAULT_PERSONAS),
        min_length=1,
        description="Reviewer personas, assigned to reviewers in turn.",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Models assigned to reviewers in turn; empty means llm.models.reviewer.",
    )
    max_paper_tokens: int | None = Field(
        None, ge=500, description="Cap on the paper excerpt shown (below the context budget)."
    )
    accept_threshold: float = Field(
        6.0, ge=1, le=10, description="Mean Overall needed to accept when no calibration is used."
    )
    calibration_path: Path | None = Field(
        None, description="A calibration.json from `reviewer calibrate` (threshold + calibrator)."
    )
    calibration_data: Path | None = Field(
        None,
        description="Papers with human decisions (JSONL) that `reviewer calibrate` reads when "
        "given no --data; the ICLR 2022 data is not shipped.",
    )
    max_concurrent_papers: int = Field(2, ge=1, description="Papers reviewed at once (folders).")
    max_pages: int = Field(50, ge=1, description="Longest PDF accepted.")
    max_pdf_mb: float = Field(30.0, gt=0, description="Largest PDF accepted.")
    pdf_timeout_s: float = Field(
        60.0, gt=0, description="Time reading one PDF may take (a bounded child process)."
    )
    pdf_memory_mb: int = Field(
        2048, ge=256, description="Address space of the child that reads a PDF (MB)."
    )


class ChecksSettings(_Strict):
    """The reviewer's checks (no LLM): references looked up, numbers and cross-references
    checked against the paper itself, closest prior work retrieved."""

    enabled: bool = Field(
        True, description="Run the checks before a review and give the findings to reviewers."
    )
    verify_references: bool = Field(
        True, description="Look each bibliography entry up in the literature cascade."
    )
    max_references: int = Field(
        150, ge=0, description="Bibliography entries looked up at most (the rest: unchecked)."
    )
    lookup_workers: int = Field(4, ge=1, le=32, description="Reference lookups at once.")
    time_budget_s: float = Field(
        60.0,
        gt=0,
        description="Wall time all lookups of one paper may take; entries not looked up by "
        "then are `unchecked` (never `not_found`).",
    )
    prior_work: int = Field(
        5, ge=0, le=50, description="Closest prior papers listed (0: do not retrieve)."
    )


class ServiceSettings(_Strict):
    """The HTTP service."""

    host: str = Field("127.0.0.1", description="Bind address; loopback unless you mean it.")
    port: int = Field(8000, ge=1, le=65535, description="Port.")
    workers: int = Field(1, ge=1, description="Worker processes running jobs.")
    tokens: dict[str, SecretStr] = Field(
        default_factory=dict, description="Bearer tokens by user name."
    )
    max_upload_mb: float = Field(30.0, gt=0, description="Largest upload.")
    rate_limit_per_minute: int = Field(
        30,
        ge=1,
        description="Job submissions per token in any 60 s (sliding window); more get HTTP 429 "
        "with Retry-After. Reading status and results is not limited.",
    )
    max_concurrent_jobs: int = Field(4, ge=1, description="Unfinished jobs per token.")
    max_queued_jobs: int | None = Field(
        None,
        ge=1,
        description="Queued jobs (all users) at which a new submission gets HTTP 429 with "
        "Retry-After, before its upload is read; None: no limit.",
    )
    max_batch_files: int = Field(
        50,
        ge=1,
        le=1000,
        description="PDFs in one POST /v1/reviews:batch; more get HTTP 400 too_many_files "
        "before any is stored. Each file is then checked and queued as one review job.",
    )
    max_batch_mb: float = Field(
        300.0,
        gt=0,
        description="Largest POST /v1/reviews:batch body (all its PDFs together); a larger "
        "one gets HTTP 413 before more than this is read. Each PDF is also held to "
        "max_upload_mb.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token GET /metrics requires (Prometheus: authorization.credentials)"
        "; None: /metrics is open like /healthz (aggregates only: no users, job ids or files).",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Worker log lines: text, or json (one object per line with the job id).",
    )
    data_dir: Path | None = Field(
        None,
        description="The job database, uploads, results and graph checkpoints; "
        "default <data_dir>/service. The API and every worker must share it.",
    )
    lease_s: float = Field(
        60.0,
        gt=0,
        description="How long a worker's claim on a job lasts without renewal; a worker renews "
        "it every lease_s/3. A job whose lease ran out, or whose worker process on this host "
        "is gone, is claimed again and resumes from its checkpoint.",
    )
    poll_interval_s: float = Field(
        1.0, gt=0, description="How often an idle worker looks for queued jobs."
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="Claims of one job before it is failed; stops a job that kills its "
        "worker every time from looping forever.",
    )
    pdf_check_workers: int = Field(
        2, ge=1, le=16, description="Warm child processes that check uploaded PDFs."
    )
    pdf_check_timeout_s: float = Field(
        20.0, gt=0, description="Time one upload check may take in its child."
    )
    pdf_check_memory_mb: int = Field(
        1024, ge=128, description="Address space of each upload-check child (MB)."
    )
    job_max_wall_s: float = Field(
        21600.0,
        gt=0,
        description="Wall-clock limit of one job from its first start, across resumes; lease "
        "renewal cannot extend it. A job past it is failed, and its worker process exits "
        "(the pool starts a new one), taking the job's boxed processes with it.",
    )
    cookie_secure: bool = Field(
        False, description="Send the web login cookie only over HTTPS (set it behind TLS)."
    )
    max_form_kb: float = Field(
        64.0,
        gt=0,
        description="Largest request body other than a PDF upload (the login and run forms, "
        "POST /v1/runs); a larger one gets HTTP 413 before more than this is read.",
    )
    max_form_fields: int = Field(
        10,
        ge=1,
        description="Fields in one form (the upload form's PDF not counted); more get HTTP 400.",
    )
    max_form_field_kb: float = Field(
        8.0, gt=0, description="Longest value of one form field; a longer one gets HTTP 400."
    )
    login_max_failures: int = Field(
        10,
        ge=1,
        description="Failed web logins from one client address in any login_window_s; after "
        "that every login from it gets HTTP 429 with Retry-After until the oldest failure "
        "leaves the window. Successful logins are not counted.",
    )
    login_window_s: float = Field(
        300.0, gt=0, description="The sliding window of login_max_failures, in seconds."
    )
    jobs_per_worker: int = Field(
        1,
        ge=1,
        le=64,
        description="Jobs one worker process runs at once, each in its own thread. A review "
        "waits on provider latency, not CPU: raise it for remote models (llm."
        "max_inflight_per_model caps their calls); keep 1 for the embedded model.",
    )
    worker_niceness: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU niceness added to worker processes, so that the API stays responsive "
        "while jobs run on the same cores (0: same priority as the API).",
    )
    job_policy: JobPolicySettings = Field(
        default_factory=JobPolicySettings,
        description="What a job's own settings may change: allowed fields, bounds, "
        "lower-only budgets and limits, models (core/job_policy.py).",
    )


class PipelineSettings(_Strict):
    """The paper pipeline around the stages: which ideas go on, per-idea budgets, extras."""

    ideas_to_run: int = Field(
        1, ge=1, description="Best-scoring ideas taken through experiments, write-up and review."
    )
    skip_not_novel: bool = Field(
        True, description="Leave out ideas the novelty check found not novel (undecided go on)."
    )
    skip_given_not_novel: bool = Field(
        False,
        description="Leave out a researcher's own idea (ideas.given) that the novelty check "
        "found not novel (`--stop-if-not-novel`); off: the verdict is reported and it runs.",
    )
    rank_by: Literal["Interestingness", "Feasibility", "Novelty", "sum"] = Field(
        "sum", description="Idea score that picks which ideas run."
    )
    idea_max_cost_usd: float | None = Field(None, ge=0, description="Spend cap in USD per idea.")
    idea_max_total_tokens: int | None = Field(None, ge=1, description="Token cap per idea.")
    idea_max_wall_s: float | None = Field(
        None, gt=0, description="Wall-clock cap per idea, checked between stages."
    )
    max_concurrent_ideas: int = Field(
        1, ge=1, description="Idea pipelines run at once within a run (threads)."
    )
    improve: bool = Field(
        False, description="Revise the paper once from its review, then review it again."
    )


class ClusterSettings(_Strict):
    """Batch runs and the service's run jobs on a Ray cluster (``--executor ray``)."""

    address: str | None = Field(
        None,
        description="Ray cluster to join: 'auto' (the one `ray start` made on this machine), "
        "the head's 'HOST:PORT', or 'ray://HOST:10001' (Ray Client); None starts a private "
        "Ray instance on this machine.",
    )
    num_cpus: float = Field(
        1.0, gt=0, description="CPUs reserved per idea pipeline (one Ray task each)."
    )
    num_gpus: float = Field(
        0.0,
        ge=0,
        description="GPUs reserved per idea pipeline (a template's resources.json wins).",
    )
    memory_mb: int | None = Field(
        None,
        ge=1,
        description="Memory reserved per idea pipeline when Ray places it (a reservation, "
        "not a limit); None reserves none.",
    )
    artefacts: Literal["shared", "transfer"] = Field(
        "shared",
        description="shared: runs_dir is on storage every node mounts at the same path; "
        "transfer: each idea pipeline works in scratch_dir on its node and its idea folder "
        "is sent back (tar.gz through Ray's object store) and unpacked into the run folder "
        "on the machine that started the batch.",
    )
    scratch_dir: Path | None = Field(
        None,
        description="Where a transfer-mode idea pipeline works on its node, and where "
        "templates are unpacked (None: the node's temp folder/autoscholar-runs); a retry on "
        "the same node resumes from it.",
    )
    max_retries: int = Field(
        3,
        ge=0,
        description="Retries of an idea pipeline whose worker process or node died; each "
        "resumes from the idea's checkpoints (one that fails on its own is never retried).",
    )
    local_cpus: int | None = Field(
        None, ge=1, description="CPUs of the private instance (address None); None: all."
    )
    embedded_per_node: bool = Field(
        True,
        description="One embedded model server per node, shared by every run on it (a "
        "detached Ray actor); false: one per Ray worker process.",
    )
    ideas_in_flight: int = Field(
        64,
        ge=1,
        description="Idea pipelines of one run submitted to the cluster at once (Ray queues "
        "them until a node has their resources).",
    )
    service_runs: bool = Field(
        False,
        description="`scientist serve`: send run jobs to the Ray cluster at address (review "
        "jobs stay in the local workers).",
    )


_PRESET_DATA: ContextVar[dict[str, Any] | None] = ContextVar("preset_data", default=None)


class _PresetSource(PydanticBaseSettingsSource):
    """The chosen preset's JSON, below the environment in priority."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_PRESET_DATA.get() or {})


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "autoscholar"


class Settings(BaseSettings):
    """Everything autoscholar can be told, nested per stage."""

    model_config = SettingsConfigDict(
        env_prefix="AUTOSCHOLAR_", env_nested_delimiter="__", extra="forbid"
    )

    preset: str = Field("default", description="The preset these settings were built from.")
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Caches, the re-quantised model, the offline literature index.",
    )
    runs_dir: Path = Field(Path("runs"), description="Where run folders are created.")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="Models and the gateway.")
    budget: BudgetSettings = Field(default_factory=BudgetSettings, description="Run budgets.")
    local: LocalModelSettings = Field(
        default_factory=LocalModelSettings, description="The embedded model server."
    )
    ideas: IdeasSettings = Field(default_factory=IdeasSettings, description="Idea stage.")
    literature: LiteratureSettings = Field(
        default_factory=LiteratureSettings, description="Literature sources."
    )
    survey: SurveySettings = Field(
        default_factory=SurveySettings, description="Literature review stage."
    )
    plan: PlanSettings = Field(default_factory=PlanSettings, description="Experiment plan stage.")
    experiments: ExperimentsSettings = Field(
        default_factory=ExperimentsSettings, description="Experiment stage."
    )
    writing: WritingSettings = Field(default_factory=WritingSettings, description="Write-up.")
    review: ReviewSettings = Field(default_factory=ReviewSettings, description="Reviewer.")
    checks: ChecksSettings = Field(
        default_factory=ChecksSettings, description="The reviewer's checks (no LLM)."
    )
    pipeline: PipelineSettings = Field(
        default_factory=PipelineSettings, description="The paper pipeline around the stages."
    )
    service: ServiceSettings = Field(default_factory=ServiceSettings, description="Service.")
    cluster: ClusterSettings = Field(
        default_factory=ClusterSettings, description="Batch runs and run jobs on a Ray cluster."
    )
    profiles: ProfileSettings = Field(
        default_factory=ProfileSettings,
        description="Output profiles (compact, full): reply sizes, output caps and prompt "
        "sizes per model.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _PresetSource(settings_cls), file_secret_settings)

    def profile(self, model: str) -> OutputProfile:
        """The output profile of ``model`` (the one place that decides it)."""
        return self.profiles.for_model(model)

    def cache_file(self) -> Path:
        """The response-cache file these settings point at."""
        return self.llm.cache_path or self.data_dir / "cache" / "llm.sqlite"


def preset_names() -> list[str]:
    """Names of the presets shipped with autoscholar."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def read_preset(name_or_path: str) -> dict[str, Any]:
    """A preset's JSON by shipped name or by file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise SettingsError(
            f"Unknown preset {name_or_path!r}: choose one of {', '.join(preset_names())} "
            "or give the path of a JSON file."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SettingsError(f"Preset {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"Preset {path} must hold a JSON object, not {type(data).__name__}.")
    return data


def load_settings(preset: str | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the effective settings: overrides > environment > preset > defaults."""
    name = preset or os.environ.get("AUTOSCHOLAR_PRESET") or "default"
    data = read_preset(name)
    data.setdefault("preset", name)
    token = _PRESET_DATA.set(data)
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise SettingsError(
            f"Invalid settings (preset {name!r}, AUTOSCHOLAR_* environment, --set): {problems}"
        ) from exc
    finally:
        _PRESET_DATA.reset(token)


# Output caps that were stage settings before output profiles decided them per model.
MOVED_TO_PROFILES: dict[str, str] = {
    "llm.max_output_tokens": "default_max_tokens",
    "ideas.max_output_tokens": "idea_max_tokens",
    "ideas.max_code_chars": "idea_code_chars",
    "ideas.abstract_chars": "novelty_abstract_chars",
    "writing.section_max_tokens": "section_max_tokens",
    "review.max_output_tokens": "review_max_tokens",
    "experiments.aider_max_output_tokens": "coder_max_tokens",
}


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    if where in MOVED_TO_PROFILES:
        field = MOVED_TO_PROFILES[where]
        return (
            f"{where} is now set per output profile: use profiles.compact.{field} (the embedded "
            f"model) or profiles.full.{field} (provider models)"
        )
    return f"{where}: {error['msg']} (got {error.get('input')!r})"


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["llm.models.writer=openai/gpt-4o", ...]`` into a nested override dict.

    Values are parsed as JSON when they parse (numbers, booleans, lists), else kept as text.
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"Override {pair!r} must look like section.field=value.")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        set_path(result, key.strip(), value)
    return result


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data["a"]["b"]["c"] = value`` for ``"a.b.c"``, creating the sections on the way."""
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def flatten(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` and ``{"a.b": 1}`` both as ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` as ``{"a": {"b": 1}}``."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        set_path(nested, key, value)
    return nested
