"""Reference document 002, "automation runs", served at /api/v1/automation-runs over pipeline
runs: list, get, cancel, retry, steps. The document's event stream (`/{run_id}/events`) is
not in this package: it belongs to the event-stream work, and any route mounted under PREFIX
answers errors in this document's shape (api.surfaces)."""

PREFIX = "/api/v1/automation-runs"
