"""Experiment stage: sandboxed runner and Aider-driven coding rounds."""
