"""Values given in a request from a fixed list: a list's status filter and ordering, the status
a device event reports. The OpenAPI lists the values (an enum); the checks accept any case and
name every allowed value when they refuse one."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from api.errors import ApiError
from domain.statuses import STATUSES, RunKind, parse_status


def status_query(kind: RunKind) -> Any:
    """A list's `status` filter (any case; absent or empty: no filter)."""
    values = list(STATUSES[kind])
    return Query(description=f"{', '.join(values)} (any case)",
                 json_schema_extra={"enum": values})


def ordering_query(values: tuple[str, ...], description: str) -> Any:
    """A list's `ordering` (`name` ascending, `-name` descending)."""
    return Query(description=description, json_schema_extra={"enum": list(values)})


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
