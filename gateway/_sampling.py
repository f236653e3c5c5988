"""Grammar-last sampling for the embedded llama.cpp model (used inside the server process).

llama-cpp-python puts the JSON grammar first in its sampler chain, so every generated token
checks all 49,152 vocabulary entries against the grammar: about 13 ms per token here, more
than the model's own forward pass. llama.cpp's own samplers do it the other way round: sample
without the grammar, keep the token when the grammar accepts it, and only otherwise apply
the grammar to the whole vocabulary and sample again. Under greedy decoding both give the
same token (the best token overall, when allowed, is also the best allowed one); under
temperature sampling the accepted token has the same probability either way, up to top-k/p
truncation.

``install()`` swaps llama-cpp-python's sampler factory for grammar-constrained requests;
nothing else changes. Importing this module needs ``llama_cpp`` (the ``local`` extra).
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals

TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
_ORIGINAL: dict[str, Callable[..., Any]] = {}


@dataclass
class SamplingStats:
    """How often the grammar accepted the freely sampled token (``kept``) or not."""

    kept: int = 0
    resampled: int = 0


STATS = SamplingStats()


class GrammarLastSampler:
    """Drop-in for ``_internals.LlamaSampler`` (``sample``/``close``) with the grammar last."""

    def __init__(self, chain: Any, grammar: Any, n_vocab: int) -> None:
        self.chain = chain  # the request's sampler chain, built without the grammar
        self.grammar = grammar  # a chain holding only the grammar sampler
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._buffer = np.zeros(n_vocab, dtype=TOKEN_DATA)
        self._one = np.zeros(1, dtype=TOKEN_DATA)

    def sample(self, ctx: Any, idx: int) -> int:
        """The next token: the free choice when the grammar allows it, else a grammar pick."""
        token = self._select(ctx, idx, with_grammar=False)
        if self._allowed(token):
            STATS.kept += 1
        else:
            STATS.resampled += 1
            token = self._select(ctx, idx, with_grammar=True)
        llama_cpp.llama_sampler_accept(self.grammar.sampler, token)
        llama_cpp.llama_sampler_accept(self.chain.sampler, token)
        return token

    def close(self) -> None:
        """Free both native sampler chains."""
        self.chain.close()
        self.grammar.close()

    def _select(self, ctx: Any, idx: int, *, with_grammar: bool) -> int:
        """Apply (grammar, then) the chain to fresh logits; return the selected token id."""
        logits = llama_cpp.llama_get_logits_ith(ctx.ctx, idx)
        self._buffer["logit"] = np.ctypeslib.as_array(logits, shape=(len(self._buffer),))
        self._buffer["p"] = 0.0
        self._buffer["id"] = self._ids  # samplers sort the buffer in place
        array = _token_array(self._buffer)
        if with_grammar:
            llama_cpp.llama_sampler_apply(self.grammar.sampler, ctypes.byref(array))
        llama_cpp.llama_sampler_apply(self.chain.sampler, ctypes.byref(array))
        if not 0 <= array.selected < array.size:
            raise RuntimeError(f"the sampler chain selected no token (index {array.selected})")
        return int(array.data[array.selected].id)

    def _allowed(self, token: int) -> bool:
        """Whether the grammar, in its current state, accepts ``token`` next."""
        self._one[0] = (token, 0.0, 0.0)
        array = _token_array(self._one)
        llama_cpp.llama_sampler_apply(self.grammar.sampler, ctypes.byref(array))
        return not math.isinf(float(array.data[0].logit))


def _token_array(buffer: np.ndarray) -> Any:
    """A ``llama_token_data_array`` viewing ``buffer`` (no copy)."""
    return llama_cpp.llama_token_data_array(
        data=buffer.ctypes.data_as(llama_cpp.llama_token_data_p),
        size=len(buffer),
        selected=-1,
        sorted=False,
    )


def _init_sampler(self: Any, **kwargs: Any) -> Any:
    """``Llama._init_sampler`` with the grammar moved out of the chain and applied last."""
    grammar = kwargs.pop("grammar", None)
    chain = _ORIGINAL["_init_sampler"](self, **kwargs)
    if grammar is None:
        return chain
    only_grammar = _internals.LlamaSampler()
    only_grammar.add_grammar(self._model, grammar)
    return GrammarLastSampler(chain, only_grammar, self._n_vocab)


def install() -> None:
    """Make every ``llama_cpp.Llama`` sample grammar-constrained replies grammar-last."""
    if "_init_sampler" not in _ORIGINAL:
        llama: Any = llama_cpp.Llama  # typed Any: we replace one of its methods on purpose
        _ORIGINAL["_init_sampler"] = llama._init_sampler
        llama._init_sampler = _init_sampler


def uninstall() -> None:
    """Restore llama-cpp-python's own grammar-first sampling."""
    original = _ORIGINAL.pop("_init_sampler", None)
    if original is not None:
        llama: Any = llama_cpp.Llama
        llama._init_sampler = original


@contextmanager
def grammar_last() -> Iterator[SamplingStats]:
    """Grammar-last sampling inside the block (tests, benchmarks); counts are reset."""
    STATS.kept = STATS.resampled = 0
    install()
    try:
        yield STATS
    finally:
        uninstall()
