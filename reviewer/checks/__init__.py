"""Checks of a paper that need no LLM: references, citations, numbers, cross-references."""
