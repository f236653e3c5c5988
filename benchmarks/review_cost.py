"""Tokens and dollars per review with GPT-4o: our reviewer against The AI Scientist's.

Both sides use The AI Scientist's configuration (5 reviewers, 5 reflection rounds each, one
few-shot example, a meta-review) on the 6 sample papers in ``../shared/data/papers``, priced
with litellm's bundled price map for ``gpt-4o`` (input, cached input, output per token).

**Ours.** Our review graph (``graphs.review``: ``reviewer.review.pdf_text``, the injection check,
``reviewer.review.excerpt``, ``reviewer.review.fewshot``,
``reviewer.review.reviewing.review_messages``, the
reflection and meta-review prompts, the gateway's structured-output instruction) runs on each
PDF with settings ``review.num_reviewers=5, num_reflections=5, num_fewshot=1`` and
``openai/gpt-4o`` as reviewer and meta-reviewer (the ``full`` profile). A recording backend
keeps every request exactly as it would be sent and answers it, so no call leaves the
machine. Its answers are the real GPT-4o review of that paper
(``NAME.ai-scientist-review.json``, The AI Scientist's own), as our reply JSON: the review
for the first call, the same review with an empty thought and ``done: false`` for each
reflection (no reviewer stops early: every round runs), and a meta-review made of the
review's summary, strengths and weaknesses. Prompt tokens count every message (content, role
and OpenAI's per-message overhead) plus the JSON schema sent as ``response_format``.

*Caching*: the messages our code marks as cache breakpoints (the system prompt with the
guidelines and the example, then the paper) form a prefix. We assume the provider's prompt
cache hits on every repeat of a prefix within the review: the first call that sends a prefix
pays full price for it, every later call reads it at ``cache_read_input_token_cost``. (Calls
run one after another here; concurrent reviewers would miss the cache until the first call
has written it.) The uncached figure prices every prompt token at the input rate.

**Theirs** (issue #14's definition): each call carries their whole prompt (system prompt,
NeurIPS form and reply instructions, one whole example paper and its review, the paper)
plus the conversation so far: 5 reviewers x (1 review + 5 reflections), each reflection
appending the previous reply and the reflection prompt to the history, plus one meta-review
call (form + the 5 reviews); no caching. Their fixed texts were measured once with the same
tokenizer from SakanaAI/AI-Scientist at commit 9dffdc445c2596ffa871b5588377e9f12558febc
(``ai_scientist/perform_review.py`` and ``ai_scientist/fewshot_examples/
132_automated_relational.{txt,json}``, their first example); only the counts are kept here
(``THEIRS``). The paper is the same text our reviewers are shown, and their replies are the
same real review in their reply format (``THOUGHT:`` / ``REVIEW JSON:``), thoughts empty on
both sides (none were stored). Their own code sends the 5 first reviews as one ``n=5`` call
and reflects once on the meta-review; that cheaper schedule is not modelled.

Tokens: tiktoken's ``o200k_base`` (GPT-4o's tokenizer) from the files litellm bundles, so it
runs offline; if that encoding cannot be loaded, ``cl100k_base`` is used and named in the
output. Prints a table per paper, the totals, the prompt's parts, and as the last line one
JSON object. Without ``../shared`` it prints why and ``{"skipped": ...}`` and exits 0.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # litellm's bundled price map, no fetch

from rich.table import Table

from benchmarks._common import emit_json, make_console
from core.settings import Settings, load_settings
from gateway import Gateway
from gateway._litellm import load_litellm
from gateway.prompts import render
from gateway.types import ChatMessage, LLMRequest, LLMResponse
from graphs.review import build_review_graph
from reviewer.review.fewshot import load_fewshot
from reviewer.review.form import ReviewForm
from reviewer.review.reviewing import PROMPTS, ReviewDeps, system_prompt
from tests.fixtures.build_gpt4o_reviews import review_from_ai_scientist

MODEL = "openai/gpt-4o"
PRICE_MODEL = "gpt-4o"
REVIEWERS, REFLECTIONS, FEWSHOT = 5, 5, 1
TARGET_RATIO = 0.5
PAPERS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "papers"
MESSAGE_OVERHEAD = 3  # OpenAI's tokens around each chat message (besides its role)
REPLY_PRIMING = 3  # and before the reply
# The AI Scientist's fixed prompt texts in o200k_base tokens (see the module docstring); they
# stay o200k counts under the cl100k_base fallback, which then only approximates the rest.
THEIRS = {
    "system": 43,  # reviewer_system_prompt_neg (their default)
    "guidelines": 1888,  # neurips_form, with template_instructions (the reply format)
    "example": 19578,  # the few-shot block: header, 132_automated_relational paper + review
    "example_paper": 18974,  # of which the example paper (60,640 characters)
    "paper_wrapper": 14,  # "Here is the paper you are asked to review:" and the fences
    "reflection": 174,  # reviewer_reflection_prompt
    "meta_system": 66,  # meta_reviewer_system_prompt for 5 reviewers
    "meta_review_wrapper": 11,  # "Review i/5:" and the fences around each review
    "reply_wrapper": 12,  # "THOUGHT:" ... "REVIEW JSON:" and the fences of a reply
}
PARTS = ("guidelines", "example", "paper", "previous review", "instructions", "meta-review")


@dataclass
class Call:
    """One LLM call's tokens: prompt (by part), of it read from cache, and completion."""

    kind: str
    parts: Counter[str]
    cached: int
    completion: int

    @property
    def prompt(self) -> int:
        """All prompt tokens of the call."""
        return sum(self.parts.values())


@dataclass
class Prices:
    """Dollars per token for gpt-4o from litellm's bundled price map."""

    input: float
    cached_input: float
    output: float

    def cost(self, calls: list[Call], *, caching: bool) -> float:
        """Dollars for ``calls``, with cached prompt tokens at the cache-read rate or not."""
        total = 0.0
        for call in calls:
            cached = call.cached if caching else 0
            total += (call.prompt - cached) * self.input + cached * self.cached_input
            total += call.completion * self.output
        return total


@dataclass
class Tokenizer:
    """The tokenizer used for every count, and its name."""

    name: str
    encode: Any = field(repr=False)
    _counts: dict[str, int] = field(default_factory=dict, repr=False)

    def count(self, text: str) -> int:
        """Tokens of ``text`` (memoised: the long prompt parts repeat in every call)."""
        if text not in self._counts:
            self._counts[text] = len(self.encode(text, disallowed_special=()))
        return self._counts[text]

    def message(self, role: str, content: str) -> int:
        """Tokens of one chat message, with its role and OpenAI's per-message overhead."""
        return MESSAGE_OVERHEAD + self.count(role) + self.count(content)


def load_tokenizer() -> Tokenizer:
    """GPT-4o's ``o200k_base`` from litellm's bundled tiktoken files; else ``cl100k_base``."""
    load_litellm()
    bundled = resources.files("litellm") / "litellm_core_utils" / "tokenizers"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))
    import tiktoken

    for name in ("o200k_base", "cl100k_base"):
        try:
            return Tokenizer(name, tiktoken.get_encoding(name).encode)
        except Exception:  # not bundled and no network: try the next encoding
            continue
    raise RuntimeError(f"no tiktoken encoding available offline in {bundled}")


def load_prices() -> Prices:
    """gpt-4o's per-token prices from litellm's bundled map (no network)."""
    info = load_litellm().model_cost[PRICE_MODEL]
    return Prices(
        input=info["input_cost_per_token"],
        cached_input=info["cache_read_input_token_cost"],
        output=info["output_cost_per_token"],
    )


def stored_review(pdf: Path) -> dict[str, Any]:
    """The AI Scientist's GPT-4o review of ``pdf`` as they stored it (their field names)."""
    path = pdf.with_name(f"{pdf.stem}.ai-scientist-review.json")
    review: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return review


def _json_schema(request: LLMRequest) -> dict[str, Any]:
    spec: dict[str, Any] = (request.response_format or {}).get("json_schema", {})
    return spec


def schema_name(request: LLMRequest) -> str:
    """The name of the reply schema ``request`` asks for ("" for none)."""
    return str(_json_schema(request).get("name", ""))


class RecordingBackend:
    """Keeps every request and answers with the real review, in the shape each schema asks."""

    def __init__(self, review: ReviewForm) -> None:
        self.review = review.model_dump()
        self.requests: list[tuple[LLMRequest, str]] = []

    def reply_for(self, request: LLMRequest) -> str:
        """Our reply JSON for the schema ``request`` asks for."""
        name = schema_name(request)
        if name == "ReflectionReply":
            return json.dumps({"thought": "", "review": self.review, "done": False})
        if name == "MetaReviewReply":
            keys = {"summary": "Summary", "strengths": "Strengths", "weaknesses": "Weaknesses"}
            return json.dumps({k: self.review[v] for k, v in keys.items()} | {"disagreements": []})
        return json.dumps(self.review)

    def generate(self, request: LLMRequest) -> LLMResponse:
        """Record ``request`` and answer it."""
        text = self.reply_for(request)
        self.requests.append((request, text))
        return LLMResponse(text=text)


def our_settings(data_dir: Path) -> Settings:
    """The AI Scientist's configuration on our reviewer, GPT-4o for every review call."""
    return load_settings(
        "default",
        {
            "data_dir": str(data_dir),
            "runs_dir": str(data_dir / "runs"),
            "llm": {
                "models": {"reviewer": MODEL, "meta_reviewer": MODEL},
                "structured_modes": {MODEL: "json_schema"},
                "cache_enabled": False,
            },
            "review": {
                "num_reviewers": REVIEWERS,
                "num_reflections": REFLECTIONS,
                "num_fewshot": FEWSHOT,
            },
        },
    )


@dataclass
class OurRun:
    """What our graph sent for one paper, and the paper text its reviewers were shown."""

    requests: list[tuple[LLMRequest, str]]
    shown_text: str


def run_ours(pdf: Path, settings: Settings, review: ReviewForm) -> OurRun:
    """Our review graph on ``pdf`` with the recording backend, reviewers one after another."""
    backend = RecordingBackend(review)
    deps = ReviewDeps(
        gateway=Gateway(settings, backend=backend),
        settings=settings,
        fewshot=load_fewshot(settings.review.num_fewshot),
    )
    state = build_review_graph().invoke(
        {"pdf_path": str(pdf)}, config={"max_concurrency": 1}, context=deps
    )
    return OurRun(requests=backend.requests, shown_text=state["shown"].text)


@dataclass
class SystemSplit:
    """Tokens of our system prompt that are the guidelines and the few-shot example."""

    guidelines: int
    example: int


def system_split(settings: Settings, tok: Tokenizer) -> SystemSplit:
    """How much of the reviewer's system prompt the guidelines and the example take."""
    profile = settings.profile(MODEL)
    examples = load_fewshot(settings.review.num_fewshot)
    with_example = tok.count(system_prompt(profile, examples))
    without = tok.count(system_prompt(profile, []))
    guidelines = render(PROMPTS, f"guidelines_{profile.guidelines}.j2")
    return SystemSplit(guidelines=tok.count(guidelines), example=with_example - without)


def request_parts(request: LLMRequest, tok: Tokenizer, split: SystemSplit) -> Counter[str]:
    """Prompt tokens of ``request`` by part: what each message and the schema cost."""
    is_meta = schema_name(request) == "MetaReviewReply"
    parts: Counter[str] = Counter()
    for message in request.messages:
        tokens = tok.message(message.role, message.content)
        if is_meta:
            parts["meta-review"] += tokens
        elif message.role == "system":
            fixed = split.guidelines + split.example
            parts.update({"guidelines": split.guidelines, "example": split.example})
            parts["instructions"] += tokens - fixed
        elif message.role == "assistant":
            parts["previous review"] += tokens
        else:
            parts["paper" if message.cache else "instructions"] += tokens
    # OpenAI bills the response_format schema as prompt tokens; counted as its JSON text.
    schema = json.dumps(_json_schema(request).get("schema"))
    parts["meta-review" if is_meta else "instructions"] += tok.count(schema) + REPLY_PRIMING
    return parts


def _prefixes(messages: list[ChatMessage]) -> Iterator[tuple[int, tuple[tuple[str, str], ...]]]:
    """Each cache-breakpoint prefix of ``messages`` as (messages in it, hashable content)."""
    for end, message in enumerate(messages, start=1):
        if message.cache:
            yield end, tuple((m.role, m.content) for m in messages[:end])


def our_calls(run: OurRun, tok: Tokenizer, split: SystemSplit) -> list[Call]:
    """Our calls for one paper; a prefix sent before in this review counts as cached."""
    seen: set[tuple[tuple[str, str], ...]] = set()
    calls = []
    for request, reply in run.requests:
        cached = 0
        for end, key in _prefixes(request.messages):
            if key in seen:
                cached = sum(tok.message(m.role, m.content) for m in request.messages[:end])
            seen.add(key)
        parts = request_parts(request, tok, split)
        calls.append(Call(schema_name(request), parts, cached, tok.count(reply)))
    return calls


def their_calls(shown_text: str, stored: dict[str, Any], tok: Tokenizer) -> list[Call]:
    """The AI Scientist's calls for one paper as issue #14 counts them (no caching)."""
    reply = THEIRS["reply_wrapper"] + tok.count(json.dumps(stored))
    base = Counter(
        {
            "instructions": tok.message("system", "") + THEIRS["system"] + REPLY_PRIMING,
            "guidelines": THEIRS["guidelines"],
            "example": THEIRS["example"],
            "paper": tok.message("user", "") + THEIRS["paper_wrapper"] + tok.count(shown_text),
        }
    )
    turn = Counter(
        {
            "previous review": tok.message("assistant", "") + reply,
            "instructions": tok.message("user", "") + THEIRS["reflection"],
        }
    )
    calls = []
    for _ in range(REVIEWERS):
        calls.append(Call("review", Counter(base), 0, reply))
        for k in range(1, REFLECTIONS + 1):
            history = Counter({part: n * k for part, n in turn.items()})
            calls.append(Call("reflection", base + history, 0, reply))
    calls.append(their_meta_review(stored, reply, tok))
    return calls


def their_meta_review(stored: dict[str, Any], reply: int, tok: Tokenizer) -> Call:
    """Their area chair's call: system prompt, the form and the 5 reviews; a whole review back."""
    review_block = THEIRS["meta_review_wrapper"] + tok.count(json.dumps(stored))
    prompt = (
        tok.message("system", "")
        + THEIRS["meta_system"]
        + tok.message("user", "")
        + THEIRS["guidelines"]
        + REVIEWERS * review_block
        + REPLY_PRIMING
    )
    return Call("meta", Counter({"meta-review": prompt}), 0, reply)


@dataclass
class PaperFigures:
    """Per-paper totals for one side."""

    prompt: int
    cached: int
    completion: int
    calls: int
    cost_cached: float
    cost_uncached: float
    parts: Counter[str]


def summarise(calls: list[Call], prices: Prices) -> PaperFigures:
    """Totals of ``calls``: tokens, dollars with and without caching, tokens by part."""
    parts: Counter[str] = Counter()
    for call in calls:
        parts.update(call.parts)
    return PaperFigures(
        prompt=sum(c.prompt for c in calls),
        cached=sum(c.cached for c in calls),
        completion=sum(c.completion for c in calls),
        calls=len(calls),
        cost_cached=prices.cost(calls, caching=True),
        cost_uncached=prices.cost(calls, caching=False),
        parts=parts,
    )


def measure_paper(
    pdf: Path, settings: Settings, tok: Tokenizer, prices: Prices, split: SystemSplit
) -> dict[str, PaperFigures]:
    """Ours and theirs on one paper, answered with that paper's real GPT-4o review."""
    stored = stored_review(pdf)
    review = ReviewForm.model_validate(review_from_ai_scientist(stored))
    run = run_ours(pdf, settings, review)
    return {
        "ours": summarise(our_calls(run, tok, split), prices),
        "theirs": summarise(their_calls(run.shown_text, stored, tok), prices),
    }


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("nan")


def tokens_table(results: dict[str, dict[str, PaperFigures]]) -> Table:
    """Per paper: calls and tokens of each side."""
    table = Table(title="Tokens per review (5 reviewers x (1 review + 5 reflections) + meta)")
    for column in ("paper", "side", "calls", "prompt", "of it cached", "completion"):
        table.add_column(column, justify="left" if column in ("paper", "side") else "right")
    rows: list[tuple[str, str, dict[str, Any]]] = [
        (name, side, vars(f)) for name, sides in results.items() for side, f in sides.items()
    ]
    rows += [("mean per review", side, m) for side, m in mean_tokens(results).items()]
    for name, side, m in rows:
        cached = f"{m['cached']:,}" if side == "ours" else "0 (no caching)"
        cells = (str(m["calls"]), f"{m['prompt']:,}", cached, f"{m['completion']:,}")
        table.add_row(name, side, *cells, style="bold" if name == "mean per review" else None)
    return table


def mean_tokens(results: dict[str, dict[str, PaperFigures]]) -> dict[str, dict[str, int]]:
    """Mean calls and tokens per review over the papers, each side."""
    keys = ("calls", "prompt", "cached", "completion")
    return {
        side: {
            k: round(sum(getattr(s[side], k) for s in results.values()) / len(results))
            for k in keys
        }
        for side in ("ours", "theirs")
    }


def dollars_table(results: dict[str, dict[str, PaperFigures]], totals: dict[str, float]) -> Table:
    """Per paper and in total: dollars per review and the ratio ours/theirs."""
    table = Table(title="Dollars per review, gpt-4o prices (litellm's bundled map)")
    columns = ("paper", "ours cached", "ours uncached", "theirs", "ratio cached", "ratio uncached")
    for column in columns:
        table.add_column(column, justify="left" if column == "paper" else "right")
    for name, s in results.items():
        ours, theirs = s["ours"], s["theirs"]
        table.add_row(
            name,
            f"${ours.cost_cached:.3f}",
            f"${ours.cost_uncached:.3f}",
            f"${theirs.cost_uncached:.3f}",
            f"{_ratio(ours.cost_cached, theirs.cost_uncached):.2f}",
            f"{_ratio(ours.cost_uncached, theirs.cost_uncached):.2f}",
        )
    table.add_row(
        "mean per review",
        f"${totals['ours_cached']:.3f}",
        f"${totals['ours_uncached']:.3f}",
        f"${totals['theirs']:.3f}",
        f"{_ratio(totals['ours_cached'], totals['theirs']):.2f}",
        f"{_ratio(totals['ours_uncached'], totals['theirs']):.2f}",
        style="bold",
    )
    return table


def parts_per_review(results: dict[str, dict[str, PaperFigures]], side: str) -> dict[str, int]:
    """Mean prompt tokens per review by part, for ``side``."""
    total: Counter[str] = Counter()
    for sides in results.values():
        total.update(sides[side].parts)
    return {part: round(total[part] / len(results)) for part in PARTS}


def parts_table(parts: dict[str, dict[str, int]]) -> Table:
    """What the prompt tokens of a review are spent on, each side."""
    table = Table(title="Prompt tokens per review by part (mean over the papers)")
    for column in ("part", "ours", "ours %", "theirs", "theirs %"):
        table.add_column(column, justify="left" if column == "part" else "right")
    sums = {side: sum(p.values()) or 1 for side, p in parts.items()}
    for part in PARTS:
        ours, theirs = parts["ours"][part], parts["theirs"][part]
        table.add_row(
            part,
            f"{ours:,}",
            f"{100 * ours / sums['ours']:.0f}",
            f"{theirs:,}",
            f"{100 * theirs / sums['theirs']:.0f}",
        )
    return table


def mean_costs(results: dict[str, dict[str, PaperFigures]]) -> dict[str, float]:
    """Mean dollars per review over the papers."""
    n = len(results)
    return {
        "ours_cached": sum(s["ours"].cost_cached for s in results.values()) / n,
        "ours_uncached": sum(s["ours"].cost_uncached for s in results.values()) / n,
        "theirs": sum(s["theirs"].cost_uncached for s in results.values()) / n,
    }


def figures_json(f: PaperFigures, *, caching: bool) -> dict[str, Any]:
    """One side's figures for one paper, for the JSON line."""
    return {
        "calls": f.calls,
        "prompt_tokens": f.prompt,
        "cached_prompt_tokens": f.cached,
        "completion_tokens": f.completion,
        "usd": round(f.cost_cached if caching else f.cost_uncached, 5),
        "usd_uncached": round(f.cost_uncached, 5),
    }


def skip(reason: str) -> None:
    """Say why nothing was measured, and end with the skipped JSON line."""
    print(f"skipped: {reason}")
    emit_json({"benchmark": "review_cost", "skipped": reason})


def main() -> None:
    """Measure every sample paper and print the tables and the JSON figures."""
    pdfs = sorted(PAPERS.glob("*.pdf")) if PAPERS.is_dir() else []
    pdfs = [p for p in pdfs if p.with_name(f"{p.stem}.ai-scientist-review.json").is_file()]
    if not pdfs:
        skip(f"no sample PDFs with stored GPT-4o reviews in {PAPERS} (../shared is absent)")
        return
    tok, prices = load_tokenizer(), load_prices()
    with tempfile.TemporaryDirectory(prefix="review_cost_") as tmp:
        settings = our_settings(Path(tmp))
        split = system_split(settings, tok)
        results = {pdf.stem: measure_paper(pdf, settings, tok, prices, split) for pdf in pdfs}
    totals = mean_costs(results)
    parts = {side: parts_per_review(results, side) for side in ("ours", "theirs")}
    ratio_cached = _ratio(totals["ours_cached"], totals["theirs"])
    ratio_uncached = _ratio(totals["ours_uncached"], totals["theirs"])
    console = make_console()
    console.print(tokens_table(results))
    console.print(dollars_table(results, totals))
    console.print(parts_table(parts))
    console.print(
        f"tokenizer {tok.name}; prices per 1M tokens: input ${prices.input * 1e6:.2f}, cached "
        f"input ${prices.cached_input * 1e6:.2f}, output ${prices.output * 1e6:.2f}. "
        "Theirs: their measured prompt texts (AI-Scientist 9dffdc4), no caching. Ours cached: "
        "the prompt cache assumed to hit on every repeat of the prefix within a review."
    )
    passed = ratio_cached <= TARGET_RATIO
    console.print(
        f"target: ours (cached) <= {TARGET_RATIO:.0%} of theirs: {ratio_cached:.2f} "
        f"{'PASS' if passed else 'MISS'} (uncached: {ratio_uncached:.2f})"
    )
    emit_json(
        {
            "benchmark": "review_cost",
            "model": PRICE_MODEL,
            "tokenizer": tok.name,
            "config": {"reviewers": REVIEWERS, "reflections": REFLECTIONS, "fewshot": FEWSHOT},
            "prices_per_token": vars(prices),
            "papers": {
                name: {
                    "ours": figures_json(s["ours"], caching=True),
                    "theirs": figures_json(s["theirs"], caching=False),
                }
                for name, s in results.items()
            },
            "tokens_per_review": mean_tokens(results),
            "usd_per_review": {k: round(v, 4) for k, v in totals.items()},
            "prompt_tokens_per_review_by_part": parts,
            "target_ratio": TARGET_RATIO,
            "ratio_cached": round(ratio_cached, 3),
            "ratio_uncached": round(ratio_uncached, 3),
            "pass": passed,
        }
    )


if __name__ == "__main__":
    main()
