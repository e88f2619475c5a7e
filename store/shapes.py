"""What the families of every entity share: timestamps, and the public shapes read from rows.

A family is `XBase` (the fields the shapes share, declared once) -> `XCreate` / `XUpdate` (the
API's input) / `X` (the table) / `XPublic` (what the API shows). A public shape lists its keys
first (`class XPublic(XBase, XKeys)`: the later base's fields come first), so the JSON keeps
the order the API always had.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow


class Public(SQLModel):
    # Read from rows; every field is always written, so the response schema requires each one
    # (a default shared with the table does not make it optional in the API's answers).
    model_config = ConfigDict(  # type: ignore[assignment]
        from_attributes=True, json_schema_serialization_defaults_required=True)


def stamp(optional: bool = False) -> Any:
    """A UTC timestamp column: now by default, or empty until set."""
    if optional:
        return Field(default=None, sa_type=UTCDateTime)
    return Field(default_factory=utcnow, sa_type=UTCDateTime)
