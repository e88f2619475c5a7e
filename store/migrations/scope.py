"""What the migrations own: the production tables, and nothing else in the database."""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel

import store.schema  # noqa: F401  (registers every production table on SQLModel.metadata)

TARGET_METADATA = SQLModel.metadata


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Compare and migrate our tables only: the simulator's `sim_delivery` (its own MetaData)
    and anything else an operator keeps in the same database are not ours to drop."""
    if type_ == "table":
        return name in TARGET_METADATA.tables
    return True
