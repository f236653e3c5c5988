"""Literature layer: Semantic Scholar, OpenAlex and an offline BM25 index behind one interface.

``build_literature(settings)`` returns the cascade (``search``, ``paper``) that the idea and
write-up stages use; ``Paper.bibtex`` and ``Paper.citation_key`` are ready to cite.
"""

from core.literature.cascade import LiteratureCascade
from core.literature.factory import build_literature
from core.literature.models import Literature, Paper, SearchResult, SourceOutcome

__all__ = [
    "Literature",
    "LiteratureCascade",
    "Paper",
    "SearchResult",
    "SourceOutcome",
    "build_literature",
]
