"""Metrics, readiness checks and structured logs: the process-wide plumbing operators watch.
It imports nothing of ours, so every layer may use it."""
