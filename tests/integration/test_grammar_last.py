"""Grammar-last sampling against llama-cpp-python's grammar-first order, on the real model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from core.settings import Settings
from gateway.local import prepare_model_file
from gateway.structured import MAX_GRAMMAR_LENGTH, grammar_safe

# llama-cpp-python is third-party and optional (the `local` extra, which `make test`
# installs); only its absence skips. Our own module is imported plainly: if it fails to
# import, that is a failure of ours and must show as one.
llama_cpp = pytest.importorskip(
    "llama_cpp", reason="needs the `local` extra (llama-cpp-python): pip install -e '.[local]'"
)
from llama_cpp.llama_grammar import LlamaGrammar  # noqa: E402

from gateway import _sampling  # noqa: E402

pytestmark = pytest.mark.integration

PROMPT = (
    "<|im_start|>user\nReview a paper that claims weight decay speeds up grokking on modular "
    "addition. Answer in JSON.<|im_end|>\n<|im_start|>assistant\n"
)


class Review(BaseModel):
    summary: str = Field(max_length=300)
    strengths: list[Annotated[str, Field(max_length=80)]] = Field(max_length=3)
    overall: int = Field(ge=1, le=10)


@pytest.fixture(scope="module")
def llm(embedded_settings: Settings) -> Iterator[Any]:
    """The embedded model loaded in this process (no server), as the server loads it."""
    local = embedded_settings.local
    path = prepare_model_file(local, embedded_settings.data_dir)
    model = llama_cpp.Llama(
        str(path),
        n_ctx=2048,
        n_threads=local.n_threads,
        n_threads_batch=local.n_threads_batch,
        flash_attn=local.flash_attn,
        verbose=False,
    )
    yield model
    model.close()


def _complete(llm: Any, **sampling: Any) -> str:
    schema = json.dumps(grammar_safe(Review.model_json_schema()))
    grammar = LlamaGrammar.from_json_schema(schema, verbose=False)
    llm.reset()  # evaluate the whole prompt every time: a reused prefix changes the last logits
    out = llm.create_completion(PROMPT, grammar=grammar, **{"max_tokens": 160, **sampling})
    return str(out["choices"][0]["text"])


def test_greedy_tokens_equal_grammar_first_and_both_paths_run(llm: Any) -> None:
    first = _complete(llm, temperature=0.0)
    with _sampling.grammar_last() as stats:
        last = _complete(llm, temperature=0.0)
    assert last == first
    # the model's free choice was kept for most tokens and overruled by the grammar for some
    assert stats.kept > stats.resampled > 0


def test_sampled_replies_still_follow_the_schema(llm: Any) -> None:
    with _sampling.grammar_last() as stats:
        texts = [_complete(llm, temperature=0.8, seed=seed, max_tokens=400) for seed in (1, 2)]
    for text in texts:
        Review.model_validate(json.loads(text, strict=False))
    assert stats.resampled > 0


def test_uninstall_restores_grammar_first(llm: Any) -> None:
    with _sampling.grammar_last():
        pass
    sampler = llm._init_sampler(grammar=None)
    assert not isinstance(sampler, _sampling.GrammarLastSampler)


class Note(BaseModel):
    note: str = Field(max_length=MAX_GRAMMAR_LENGTH)


def test_the_longest_string_bound_kept_parses_and_holds(llm: Any) -> None:
    schema = grammar_safe(Note.model_json_schema())
    assert schema["properties"]["note"]["maxLength"] == MAX_GRAMMAR_LENGTH
    grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    llm.reset()
    with _sampling.grammar_last():
        out = llm.create_completion(
            PROMPT, grammar=grammar, max_tokens=MAX_GRAMMAR_LENGTH + 40, temperature=1.0, seed=5
        )
    assert out["choices"][0]["finish_reason"] == "stop"  # closed by the grammar, not cut off
    Note.model_validate(json.loads(out["choices"][0]["text"], strict=False))  # <= 800 chars
