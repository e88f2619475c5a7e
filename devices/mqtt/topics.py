"""The Jobs topics under one root (`{root}/{thing}/jobs/...`): what fleetpipe subscribes to,
what a request topic means, and where answers and notifications go."""

from __future__ import annotations

from dataclasses import dataclass

GET, START_NEXT, DESCRIBE, UPDATE = "get", "start-next", "describe", "update"
_WILDCARDS = ("+", "#")


class TopicRootError(ValueError):
    """FLEETPIPE_MQTT_TOPIC_ROOT cannot be a topic prefix."""


@dataclass(frozen=True)
class Request:
    """A device's request, read off its topic."""

    thing: str
    operation: str  # GET | START_NEXT | DESCRIBE | UPDATE
    job_id: str = ""
    topic: str = ""

    def answer_topic(self, accepted: bool) -> str:
        return f"{self.topic}/{'accepted' if accepted else 'rejected'}"


def valid_thing_name(name: str) -> bool:
    """A name that is one topic level (AWS allows [a-zA-Z0-9:_-]; we refuse only what breaks
    a topic)."""
    return bool(name) and not any(c in name for c in ("/", "+", "#", "\x00"))


class Topics:
    def __init__(self, root: str) -> None:
        root = root.strip().rstrip("/")
        if not root or any(w in root for w in _WILDCARDS):
            raise TopicRootError(f"FLEETPIPE_MQTT_TOPIC_ROOT {root!r} must be a topic prefix "
                                 "without wildcards, e.g. $aws/things")
        self.root = root
        self._depth = root.count("/") + 1

    def request_filters(self) -> list[str]:
        jobs = f"{self.root}/+/jobs"
        return [f"{jobs}/get", f"{jobs}/start-next", f"{jobs}/+/get", f"{jobs}/+/update"]

    def parse(self, topic: str) -> Request | None:
        """The request a topic carries, or None for anything else (answers included)."""
        if not topic.startswith(self.root + "/"):
            return None
        levels = topic.split("/")[self._depth:]
        if len(levels) == 3 and levels[1] == "jobs" and levels[2] in (GET, START_NEXT):
            return Request(levels[0], levels[2], topic=topic)
        if len(levels) == 4 and levels[1] == "jobs" and levels[3] in ("get", "update"):
            operation = DESCRIBE if levels[3] == "get" else UPDATE
            return Request(levels[0], operation, job_id=levels[2], topic=topic)
        return None

    def notify(self, thing: str) -> str:
        return f"{self.root}/{thing}/jobs/notify"

    def notify_next(self, thing: str) -> str:
        return f"{self.root}/{thing}/jobs/notify-next"
