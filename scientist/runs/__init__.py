"""Start, resume and batch paper runs: build the dependencies, drive graphs.paper under its
checkpointer, answer co-pilot pauses. Used by the scientist CLI and the service."""
