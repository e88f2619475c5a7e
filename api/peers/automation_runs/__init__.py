"""Reference document 002, "automation runs", served at /api/v1/automation-runs over pipeline
runs: list, get, cancel, retry, steps. (Its event stream is served beside it, on the same
router prefix, by the event-stream package.)"""

PREFIX = "/api/v1/automation-runs"
