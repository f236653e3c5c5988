"""Idea generation and novelty checking."""
