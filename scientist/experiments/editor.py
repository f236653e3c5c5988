"""The code editor seam: Aider's CLI edits an idea folder's files with the ``coder`` model.

Aider lives in its own virtualenv (``.venv-aider``, made by ``make setup``): it pins about
110 exact versions that clash with the app's (see FACTS.md). It runs once per round,
non-interactively, in its own process group, bounded by ``aider_round_timeout_s``; output
tokens are capped through its model settings (``max_tokens``), and a model-metadata file
plus ``LITELLM_LOCAL_MODEL_COST_MAP`` keep it from fetching price lists off the internet.
API keys reach the Aider process only (its environment), never the command line we record
and never the experiment sandbox.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from core.isolation import (
    INSIDE_TMP,
    box_for,
    bwrap_command,
    check_bwrap,
    interpreter_paths,
    lent_to,
)
from core.resources import in_checkout
from core.settings import Settings
from gateway._litellm import load_litellm
from gateway.gateway import LOCAL_KEY
from gateway.local import LOCAL_ALIAS, shared_server
from scientist.experiments.errors import AiderNotFoundError
from scientist.experiments.runner import LOG_DIR, kill_group

# Aider's own virtualenv, where `make setup` puts it in a checkout (None in an installed wheel).
CHECKOUT_AIDER = in_checkout(".venv-aider", "bin", "aider")
INSTALL_AIDER = (
    "install it into a virtualenv of its own (it pins ~110 exact versions): "
    "`python3 -m venv ~/.venv-aider && ~/.venv-aider/bin/pip install aider-chat==0.86.2`, "
    "then set experiments.aider_bin=~/.venv-aider/bin/aider (AUTOSCHOLAR_EXPERIMENTS__AIDER_BIN) "
    "or put it on PATH; in a checkout, `make setup` does this"
)
DEFAULT_CONTEXT_TOKENS = 32768
_TOKENS = re.compile(
    r"Tokens: (?P<sent>[\d.]+[kM]?) sent(?:, [\d.]+[kM]? cache write)?"
    r"(?:, [\d.]+[kM]? cache hit)?, (?P<received>[\d.]+[kM]?) received\."
)
# When a reply hits the output cap Aider prints approximate counts instead of "Tokens:".
_LIMIT_IN = re.compile(r"Input tokens: ~(?P<n>[\d,]+) of")
_LIMIT_OUT = re.compile(r"Output tokens: ~(?P<n>[\d,]+) of")
_COST = re.compile(r"Cost: \$(?P<message>[\d.]+) message, \$(?P<session>[\d.]+) session\.")
# Flags that make one Aider run a non-interactive, offline, bounded edit of named files.
FIXED_FLAGS = (
    "--no-git",
    "--no-auto-commits",
    "--no-dirty-commits",
    "--no-check-update",
    "--analytics-disable",
    "--no-show-model-warnings",
    "--no-show-release-notes",
    "--yes-always",
    "--no-stream",
    "--no-pretty",
    "--no-fancy-input",
    "--no-auto-lint",
    "--no-auto-test",
    "--no-suggest-shell-commands",
    "--no-detect-urls",
    "--disable-playwright",
    "--no-restore-chat-history",
    "--map-tokens",
    "0",
    "--encoding",
    "utf-8",
)


class EditResult(BaseModel):
    """What one editor call did (the round logic diffs the files itself)."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(description="The command line, without secrets.")
    exit_code: int | None = Field(description="None when it was killed at the time limit.")
    timed_out: bool = False
    seconds: float
    output_tail: str = ""
    log_path: str | None = Field(None, description="Full output, relative to the idea folder.")
    tokens_sent: int | None = None
    tokens_received: int | None = None
    cost_usd: float | None = None


class CodeEditor(Protocol):
    """Edits files in a folder as asked; tests use a scripted double."""

    def edit(
        self, workdir: Path, files: Sequence[str], message: str, *, log_stem: str
    ) -> EditResult:
        """Ask for ``message`` to be carried out on ``files`` (relative to ``workdir``)."""
        ...


@dataclass(frozen=True)
class AiderModel:
    """How Aider reaches the coder model: its name, base URL, output cap and environment."""

    name: str
    api_base: str | None
    metadata: dict[str, Any]
    max_tokens: int  # per reply: the profile's coder_max_tokens, within the model's own limit
    env: dict[str, str] = field(default_factory=dict, repr=False)


def resolve_aider_bin(configured: Path | None) -> Path:
    """The aider executable: the setting, else a checkout's ``.venv-aider``, else PATH."""
    if configured is not None:
        if not Path(configured).expanduser().is_file():
            raise AiderNotFoundError(
                f"experiments.aider_bin is {configured}, which does not exist: fix the "
                f"setting, or {INSTALL_AIDER}."
            )
        return Path(configured).expanduser()
    if CHECKOUT_AIDER is not None and CHECKOUT_AIDER.is_file():
        return CHECKOUT_AIDER
    found = shutil.which("aider")
    if found:
        return Path(found)
    raise AiderNotFoundError(f"Aider is not installed: {INSTALL_AIDER}.")


def aider_model(settings: Settings, local_base_url: Callable[[], str] | None = None) -> AiderModel:
    """The coder role's model, wired for Aider (the embedded server for ``local``)."""
    coder = settings.llm.models.coder
    cap = settings.profile(coder).coder_max_tokens
    if coder == LOCAL_ALIAS:
        resolve = local_base_url or shared_server(settings.local, settings.data_dir).base_url
        metadata = _zero_cost_metadata(settings.local.n_ctx, cap)
        return AiderModel(
            f"openai/{LOCAL_ALIAS}", resolve(), metadata, cap, {"OPENAI_API_KEY": "local"}
        )
    metadata = _known_metadata(coder) or _zero_cost_metadata(DEFAULT_CONTEXT_TOKENS, cap)
    # A provider rejects a max_tokens above the model's own output limit (gpt-4-turbo: 4096),
    # so the profile's cap is lowered to it where litellm knows it.
    cap = min(cap, metadata.get("max_output_tokens") or cap)
    api_base = settings.llm.api_bases.get(coder)
    env: dict[str, str] = {}
    if api_base and coder.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
        # As in the gateway: an OpenAI-compatible server often needs no key, but the client
        # refuses to send a request without one (Aider would print the error and exit 0).
        env["OPENAI_API_KEY"] = LOCAL_KEY
    return AiderModel(coder, api_base, metadata, cap, env)


def _zero_cost_metadata(context: int, cap: int) -> dict[str, Any]:
    return {
        "max_input_tokens": context,
        "max_output_tokens": cap,
        "max_tokens": cap,
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        "litellm_provider": "openai",
        "mode": "chat",
    }


def _known_metadata(model: str) -> dict[str, Any] | None:
    """litellm's bundled entry for ``model`` (so Aider need not download the price list)."""
    try:
        info = load_litellm().get_model_info(model)
    except Exception:  # litellm raises bare Exception for an unknown model
        return None
    keep = (
        "max_input_tokens",
        "max_output_tokens",
        "max_tokens",
        "input_cost_per_token",
        "output_cost_per_token",
        "litellm_provider",
        "mode",
    )
    return {k: info[k] for k in keep if info.get(k) is not None}


def parse_usage(output: str) -> tuple[int | None, int | None, float | None]:
    """(tokens sent, tokens received, session cost) from Aider's "Tokens: …" lines."""
    sent = received = 0
    matches = list(_TOKENS.finditer(output))
    for match in matches:
        sent += _count(match["sent"])
        received += _count(match["received"])
    costs = list(_COST.finditer(output))
    cost = float(costs[-1]["session"]) if costs else None
    if matches:
        return sent, received, cost
    limit_in, limit_out = _LIMIT_IN.findall(output), _LIMIT_OUT.findall(output)
    if limit_in and limit_out:
        return _count(limit_in[-1]), _count(limit_out[-1]), cost
    return None, None, cost


def _count(text: str) -> int:
    """Aider's compact counts: ``145``, ``3.1k``, ``12k``, ``1.2M``, ``3,698``."""
    scale = {"k": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return round(float(text.rstrip("kM").replace(",", "")) * scale)


class AiderCLI:
    """Runs ``aider`` once per edit, non-interactively, in the idea folder."""

    def __init__(
        self,
        settings: Settings,
        *,
        local_base_url: Callable[[], str] | None = None,
        aider_bin: Path | None = None,
    ) -> None:
        self.settings = settings
        self.aider_bin = resolve_aider_bin(aider_bin or settings.experiments.aider_bin)
        self._local_base_url = local_base_url
        self._model: AiderModel | None = None
        isolation = settings.experiments.isolation
        self._bwrap = check_bwrap() if isolation == "bwrap" else None

    def model(self) -> AiderModel:
        """The coder model's wiring, resolved once (this may start the embedded server)."""
        if self._model is None:
            self._model = aider_model(self.settings, self._local_base_url)
        return self._model

    def edit(
        self, workdir: Path, files: Sequence[str], message: str, *, log_stem: str
    ) -> EditResult:
        """One Aider run on ``files`` with ``message``; killed at the round's time limit."""
        logs = workdir / LOG_DIR
        logs.mkdir(parents=True, exist_ok=True)
        command = self.command(workdir, files, message, log_stem)
        log_path = logs / f"{log_stem}.aider.txt"
        timeout = self.settings.experiments.aider_round_timeout_s
        start = time.monotonic()
        with log_path.open("wb") as log:
            exit_code = self._run(command, workdir, log, timeout)
        output = log_path.read_text(encoding="utf-8", errors="replace")
        sent, received, cost = parse_usage(output)
        return EditResult(
            command=command,
            exit_code=exit_code,
            timed_out=exit_code is None,
            seconds=round(time.monotonic() - start, 3),
            output_tail="\n".join(output.rstrip().splitlines()[-30:]),
            log_path=str(log_path.relative_to(workdir)),
            tokens_sent=sent,
            tokens_received=received,
            cost_usd=cost,
        )

    def command(
        self, workdir: Path, files: Sequence[str], message: str, log_stem: str
    ) -> list[str]:
        """The full aider command line for one edit (it holds no secrets)."""
        model = self.model()
        logs = workdir / LOG_DIR
        message_file = logs / f"{log_stem}.message.txt"
        message_file.write_text(message, encoding="utf-8")
        metadata_file = logs / "aider.model-metadata.json"
        metadata_file.write_text(json.dumps({model.name: model.metadata}, indent=1))
        settings_file = logs / "aider.model-settings.yml"
        # JSON is YAML; "aider/extra_params" merges into every model's own tuned settings.
        params = {"max_tokens": model.max_tokens}
        settings_file.write_text(
            json.dumps([{"name": "aider/extra_params", "extra_params": params}])
        )
        # The weak model (summaries) is the coder too: Aider's default for a known model is
        # another one (gpt-4o-mini), outside the metadata file, whose price list it downloads.
        command = [str(self.aider_bin), "--model", model.name, "--weak-model", model.name]
        if model.api_base:
            command += ["--openai-api-base", model.api_base]
        command += [
            "--edit-format",
            self.settings.experiments.aider_edit_format,
            "--model-metadata-file",
            str(metadata_file),
            "--model-settings-file",
            str(settings_file),
            "--timeout",
            f"{self.settings.experiments.aider_round_timeout_s:g}",
            "--chat-history-file",
            str(logs / f"{log_stem}.chat.md"),
            "--input-history-file",
            str(logs / f"{log_stem}.input.txt"),
            "--env-file",
            str(logs / "no.env"),
            *FIXED_FLAGS,
        ]
        for name in files:
            command += ["--file", name]
        return [*command, "--message-file", str(message_file)]

    def _run(self, command: list[str], workdir: Path, log: Any, timeout_s: float) -> int | None:
        """Aider in the box experiments use (``experiments.isolation``), but with the network:
        it must reach its model. It may write only the idea folder; its home is the box's
        private /tmp."""
        if self._bwrap is None:
            return _run_bounded(command, workdir, self._env(), log, timeout_s)
        aider_python = self.aider_bin.parent / "python"
        python = str(aider_python) if aider_python.exists() else sys.executable
        venv = self.aider_bin.parent.parent
        own = venv if (venv / "pyvenv.cfg").is_file() else self.aider_bin
        readable = [own, *interpreter_paths(sys.executable)]
        box = box_for(workdir, readable, python, network=True)
        env = self._env() | {"HOME": str(INSIDE_TMP)}
        with lent_to(box):
            return _run_bounded(
                bwrap_command(box, command, self._bwrap), workdir, env, log, timeout_s
            )

    def _env(self) -> dict[str, str]:
        """The user's environment (provider keys) minus our settings and Aider's own config."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOSCHOLAR_", "AIDER_"))}
        home = self.settings.data_dir / "aider-home"
        home.mkdir(parents=True, exist_ok=True)
        env |= {
            "HOME": str(home),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            "TERM": "dumb",
        }
        return env | self.model().env


def _run_bounded(
    command: list[str], workdir: Path, env: dict[str, str], log: Any, timeout_s: float
) -> int | None:
    """Run in a new session; on timeout kill the whole group and return None."""
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(process.pid)
        process.wait()
        return None
    kill_group(process.pid, grace_s=0.5)
    return process.returncode
