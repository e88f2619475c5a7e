"""The audit trail: every operator action (start, promote, pause, resume, cancel, retry, add a
target, cancel a command, create or revoke a token) with who did it, when, and the request.

An action on a run is also written into the run's numbered log (StatusEvent, kind `action`) in
the same transaction, so a run's event stream orders it among the status changes it caused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, func, insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from store.db import transaction
from store.paging import Page
from store.runs.tables import ACTION_EVENT, StatusEvent, serial
from store.shapes import Public, stamp
from store.types import JSONType, utcnow

# Who acted when no API key did: the server-side CLI (tokens), or the service itself.
CLI_ACTOR = "cli"

# An action's outcome: recorded as requested before it is carried to the run, then done (the
# run applied it), accepted (the run has it and was still applying it when the API answered:
# a 202), refused (the run's state refused it) or failed.
REQUESTED, DONE, ACCEPTED, REFUSED, FAILED = "requested", "done", "accepted", "refused", "failed"
OUTCOMES = [REQUESTED, DONE, ACCEPTED, REFUSED, FAILED]

_STATUS_EVENTS = StatusEvent.__table__  # type: ignore[attr-defined]


class OperatorActionBase(SQLModel):
    action: str = Field(description="start, promote, pause, resume, cancel, retry, add_target, "
                        "cancel_target, send_again, cancel_stage, cancel_command, "
                        "token_create, token_revoke")
    pipeline_run_id: UUID | None = Field(default=None, index=True,
                                         description="The run acted on (null for tokens).")
    subject: str = Field(default="", description="What was acted on: pipeline_run, stage_run, "
                         "target_run, command or api_token.")
    subject_id: UUID | None = None
    key_id: UUID | None = Field(default=None, description="The API key that did it (null: the "
                                "server-side CLI).")
    actor: str = Field(default="", description="The key's label, or `cli`.")
    request: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType))
    outcome: str = Field(default=REQUESTED, description=" | ".join(OUTCOMES))
    message: str = Field(default="", description="Why it was refused or failed.")
    at: datetime = stamp()


class OperatorAction(OperatorActionBase, table=True):
    __tablename__ = "operator_action"
    id: int | None = Field(default=None, sa_column=serial())
    enterprise_id: UUID = Field(index=True)


class OperatorActionPublic(OperatorActionBase, Public):
    id: int
    enterprise_id: UUID


@dataclass(frozen=True)
class Actor:
    """Who acts: an API key (id and label) or, with no key, the CLI."""

    key_id: UUID | None = None
    name: str = CLI_ACTOR


@dataclass
class ActionEntry:
    """One action to record (store.audit.record_action)."""

    enterprise_id: UUID
    action: str
    actor: Actor
    pipeline_run_id: UUID | None = None
    subject: str = ""
    subject_id: UUID | None = None
    request: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)


def _log_detail(action_id: int, entry: ActionEntry, outcome: str,
                message: str = "") -> dict[str, Any]:
    return {"action_id": action_id, "action": entry.action, "outcome": outcome,
            "message": message, "subject": entry.subject,
            "subject_id": str(entry.subject_id) if entry.subject_id else None,
            "key_id": str(entry.actor.key_id) if entry.actor.key_id else None,
            "actor": entry.actor.name, "request": entry.request}


def _log(session: Session, action_id: int, entry: ActionEntry, outcome: str,
         message: str = "") -> None:
    if entry.pipeline_run_id is None:
        return
    session.execute(insert(_STATUS_EVENTS).values(
        pipeline_run_id=entry.pipeline_run_id, kind=ACTION_EVENT,
        run_id=entry.subject_id or entry.pipeline_run_id, from_status="", to_status=outcome,
        reason=message, at=utcnow(), detail=_log_detail(action_id, entry, outcome, message)))


def record_action(engine: Engine, entry: ActionEntry, outcome: str = REQUESTED) -> int:
    """Record an action (and, for a run, its entry in the run's log); returns its id."""
    with transaction(engine) as session:
        action_id = session.execute(insert(OperatorAction.__table__).values(  # type: ignore[attr-defined]
            enterprise_id=entry.enterprise_id, action=entry.action,
            pipeline_run_id=entry.pipeline_run_id, subject=entry.subject,
            subject_id=entry.subject_id, key_id=entry.actor.key_id, actor=entry.actor.name,
            request=entry.request, outcome=outcome, message="", at=entry.at,
        ).returning(OperatorAction.__table__.c.id)).scalar_one()  # type: ignore[attr-defined]
        _log(session, action_id, entry, outcome)
        return int(action_id)


def finish_action(engine: Engine, action_id: int, entry: ActionEntry, outcome: str,
                  message: str = "") -> None:
    """Set a recorded action's outcome. A refusal or failure is also logged for the run (its
    stream then says the request changed nothing); success shows in the status changes."""
    with transaction(engine) as session:
        session.execute(update(OperatorAction.__table__)  # type: ignore[attr-defined]
                        .where(col(OperatorAction.id) == action_id)
                        .values(outcome=outcome, message=message))
        if outcome in (REFUSED, FAILED):
            _log(session, action_id, entry, outcome, message)


def list_actions(session: Session, enterprise_id: UUID, *, pipeline_run_id: UUID | None = None,
                 action: str | None = None, limit: int = 20,
                 offset: int = 0) -> Page[OperatorAction]:
    """The enterprise's actions (or one run's), oldest first."""
    where = [col(OperatorAction.enterprise_id) == enterprise_id]
    if pipeline_run_id is not None:
        where.append(col(OperatorAction.pipeline_run_id) == pipeline_run_id)
    if action is not None:
        where.append(col(OperatorAction.action) == action)
    count = session.exec(select(func.count()).select_from(OperatorAction).where(*where)).one()
    rows = session.exec(select(OperatorAction).where(*where).order_by(col(OperatorAction.id))
                        .limit(limit).offset(offset)).all()
    return Page(count=int(count), items=list(rows))


def run_actions(engine: Engine, enterprise_id: UUID, pipeline_run_id: UUID,
                limit: int = 100) -> list[OperatorAction]:
    """A run's latest actions, oldest first: what a run page shows as its history."""
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(select(OperatorAction).where(
            col(OperatorAction.enterprise_id) == enterprise_id,
            col(OperatorAction.pipeline_run_id) == pipeline_run_id)
            .order_by(col(OperatorAction.id).desc()).limit(limit)).all()
    return list(reversed(rows))
