"""Print the paper graph as mermaid, from the compiled graph (docs/ARCHITECTURE.md embeds it).

    .venv/bin/python docs/architecture_graph.py

``tests/unit/test_architecture.py`` checks that the picture in docs/ARCHITECTURE.md is this
output, so the picture cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphs.paper import build_paper_graph


def paper_mermaid() -> str:
    """The paper graph with its idea subgraph expanded (LangGraph's ``draw_mermaid``)."""
    return str(build_paper_graph().get_graph(xray=1).draw_mermaid()).strip()


if __name__ == "__main__":
    print(paper_mermaid())
