"""An agent's notes, found again by similarity (MLGym's memory module: write a note, read the
ones closest to a query). TF-IDF over word n-grams with cosine similarity: no model to load,
and notes are a few short lines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity


@dataclass
class NoteMemory:
    """Notes kept during an episode; ``path`` mirrors them as JSON lines (``notes.jsonl``)."""

    path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.notes)

    def add(self, note: str, *, step: int = 0) -> None:
        """Keep ``note`` (blank notes and exact repeats are dropped)."""
        text = note.strip()
        if not text or text in self.notes:
            return
        self.notes.append(text)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": step, "note": text}) + "\n")

    def search(self, query: str, k: int) -> list[str]:
        """The ``k`` notes most similar to ``query``, most similar first; ties (and a query
        that shares no word with any note) fall back to the newest notes."""
        if not self.notes or k <= 0:
            return []
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        try:
            matrix = vectorizer.fit_transform([*self.notes, query])
        except ValueError:  # no word at all (only stop characters): newest first
            return self.notes[::-1][:k]
        scores = cosine_similarity(matrix[-1], matrix[:-1]).ravel()
        order = sorted(range(len(self.notes)), key=lambda i: (-scores[i], -i))
        return [self.notes[i] for i in order[:k]]
