"""Example reviews for few-shot prompting, from ``samples/fewshot/`` (licence-checked files)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from reviewer.form import ReviewForm

FEWSHOT_DIR = Path(__file__).resolve().parents[1] / "samples" / "fewshot"


class FewshotExample(BaseModel):
    """A paper excerpt, the review it got, and where both come from."""

    name: str
    source: str = Field(description="Origin of the paper and review.")
    licence: str = Field(description="Licence that allows their use here.")
    paper_excerpt: str
    review: ReviewForm


def load_fewshot(count: int, folder: Path = FEWSHOT_DIR) -> list[FewshotExample]:
    """The first ``count`` examples (sorted by file name); fewer if fewer exist."""
    if count <= 0 or not folder.is_dir():
        return []
    files = sorted(folder.glob("*.json"))[:count]
    return [FewshotExample.model_validate_json(f.read_text(encoding="utf-8")) for f in files]
