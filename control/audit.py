"""Recording operator actions as they are carried out (store.audit): the request is recorded
before it reaches the run, so the run's log shows it ahead of the changes it causes, and its
outcome once the run answered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Engine

from control.errors import ActionRefused, Missing
from store.audit import (
    ACCEPTED,
    DONE,
    FAILED,
    REFUSED,
    ActionEntry,
    Actor,
    finish_action,
    record_action,
)
from store.definitions.tenants import Caller
from store.tenancy import NotFound

# Who acts when a caller of the service passes no API key's Caller (an internal caller).
SERVICE_ACTOR = Actor(key_id=None, name="service")


def actor_of(caller: Caller | None) -> Actor:
    if caller is None:
        return SERVICE_ACTOR
    return Actor(key_id=caller.key_id, name=caller.key_name)


def action_entry(caller: Caller | None, action: str, pipeline_run_id: UUID | None,
                 request: dict[str, Any] | None, *, enterprise_id: UUID | None = None,
                 subject: str = "pipeline_run", subject_id: UUID | None = None) -> ActionEntry:
    enterprise = caller.enterprise_id if caller is not None else enterprise_id
    if enterprise is None:
        raise ValueError("an action is recorded for an enterprise: pass a Caller or its id")
    return ActionEntry(enterprise_id=enterprise, action=action, actor=actor_of(caller),
                       pipeline_run_id=pipeline_run_id, subject=subject,
                       subject_id=subject_id or pipeline_run_id,
                       request=_plain(request or {}))


def _plain(value: Any) -> Any:
    """The request as JSON can hold it (ids as text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class RecordedAction:
    """An action recorded as requested; `finish` sets how it ended."""

    def __init__(self, engine: Engine, entry: ActionEntry) -> None:
        self._engine = engine
        self.entry = entry
        self.action_id: int | None = None
        self.still_applying = False  # set by the block: the run had not answered yet

    def answered(self, answered: bool) -> None:
        self.still_applying = not answered

    async def begin(self) -> None:
        self.action_id = await asyncio.to_thread(record_action, self._engine, self.entry)

    async def finish(self, outcome: str, message: str = "") -> None:
        if self.action_id is not None:
            await asyncio.to_thread(finish_action, self._engine, self.action_id, self.entry,
                                    outcome, message)


@asynccontextmanager
async def audited(engine: Engine, entry: ActionEntry) -> AsyncIterator[RecordedAction]:
    """Record the action, run the block, and record its outcome: refused (the run's state or
    its workflow refused it), failed (anything else raised), accepted (the block said the run
    had not answered yet) or done."""
    recorded = RecordedAction(engine, entry)
    await recorded.begin()
    try:
        yield recorded
    except (ActionRefused, NotFound, Missing) as refused:
        await recorded.finish(REFUSED, getattr(refused, "message", None) or str(refused))
        raise
    except BaseException as failed:
        # Shielded: a request cancelled mid-action (client gone) still records how it ended.
        await asyncio.shield(recorded.finish(FAILED, type(failed).__name__))
        raise
    else:
        await recorded.finish(ACCEPTED if recorded.still_applying else DONE)
