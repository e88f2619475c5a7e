"""Status values given in a request: a list's filter, or the status a device event reports."""

from __future__ import annotations

from api.errors import ApiError
from domain.statuses import STATUSES, RunKind, parse_status


def parse_status_field(kind: RunKind, value: str, field: str = "status") -> str:
    """A status in any case, or a 400 naming every status of that kind."""
    try:
        return parse_status(kind, value)
    except ValueError:
        allowed = list(STATUSES[kind])
        raise ApiError(400, f"{field}: unknown status {value!r}; allowed: {', '.join(allowed)}",
                       field=field, allowed=allowed) from None


def parse_filter(kind: RunKind, value: str | None, field: str = "status") -> str | None:
    """A status filter (absent or empty: no filter)."""
    if value is None or value == "":
        return None
    return parse_status_field(kind, value, field)
