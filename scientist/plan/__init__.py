"""The experiment-plan stage: hypotheses, runs, baselines and metrics the Aider rounds follow."""
