"""The production tables: importing this module registers every one of them on
`SQLModel.metadata`, which is what the migrations (store/migrations/) take as their target.
The store's schema is made and changed only by the migrations (`fleetpipe db upgrade`)."""

from __future__ import annotations

# Every module that declares production tables, so that they are all registered.
import store.audit  # noqa: F401
import store.definitions.devices  # noqa: F401
import store.definitions.operation_lists  # noqa: F401
import store.definitions.pipelines  # noqa: F401
import store.definitions.target_lists  # noqa: F401
import store.definitions.tenants  # noqa: F401
import store.runs.commands  # noqa: F401
import store.runs.events  # noqa: F401
import store.runs.tables  # noqa: F401
