"""What the run-control service refuses with. Callers map them to their own answers (the API:
400, 404 and 503 envelopes); the service itself knows nothing of HTTP."""

from __future__ import annotations


class ActionRefused(Exception):
    """An action the request or the run's state refuses: names the field at fault and, where
    there is a fixed set, the values that would be accepted."""

    def __init__(self, field: str, message: str, allowed: list[str] | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.allowed = allowed


class ActionConflicts(ActionRefused):
    """Refused for the state the run is in, not for how it was asked (a retry of a run that has
    not finished, or with nothing left to retry): the API answers 409."""


class Missing(LookupError):
    """Something an action needs that is not there yet (a target run's command before it is
    created)."""


class RunsUnavailable(Exception):
    """Temporal cannot be reached, or refused to pass a recorded event on to its run."""


class CodecRefused(Exception):
    """The payload codec endpoint cannot do what was asked: no keys configured (`status` 503),
    or payloads it cannot read (400). The message says which and what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
