"""Literature layer: Semantic Scholar, OpenAlex and an offline BM25 index behind one interface."""
