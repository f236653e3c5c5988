"""litellm, imported lazily (it takes seconds) and configured once for offline use."""

from __future__ import annotations

import os
from functools import cache
from types import ModuleType


@cache
def load_litellm() -> ModuleType:
    """The configured litellm module: bundled price map, no telemetry, no debug banners."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # Else the first Anthropic call fetches a beta-headers config file from GitHub.
    os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm
