"""``reviewer calibrate``: fit a threshold and an accept-probability calibrator, and score them.

Kept apart: ``data`` (load and validate papers and reviews), ``metrics`` (pure functions),
``fit`` (threshold, calibrators, cross-validation), ``baselines`` and ``evaluate`` (rows of
held-out figures), ``plots`` and ``report`` (files), ``run`` (both modes) and ``cli``.
"""
