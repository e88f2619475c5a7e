"""The AWS IoT Jobs protocol's rules and payloads, without I/O: job execution statuses and their
command statuses, what a device may change, the shape of every answer and notification, and
the checks that turn a bad request into the documented rejection codes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from domain.statuses import CommandStatus

QUEUED, IN_PROGRESS = "QUEUED", "IN_PROGRESS"
SUCCEEDED, FAILED, REJECTED = "SUCCEEDED", "FAILED", "REJECTED"
TIMED_OUT, CANCELED = "TIMED_OUT", "CANCELED"
PENDING = (QUEUED, IN_PROGRESS)
# What a device may report in an update (the service alone queues, times out and cancels).
DEVICE_STATUSES = (IN_PROGRESS, SUCCEEDED, FAILED, REJECTED)

COMMAND_STATUS: dict[str, str] = {
    QUEUED: CommandStatus.QUEUED, IN_PROGRESS: CommandStatus.INPROGRESS,
    SUCCEEDED: CommandStatus.SUCCESS, FAILED: CommandStatus.FAILURE,
    REJECTED: CommandStatus.FAILURE, TIMED_OUT: CommandStatus.TIMEOUT,
    CANCELED: CommandStatus.CANCELLED,
}
REASONS = {FAILED: "the device reported FAILED", REJECTED: "the device rejected the job",
           TIMED_OUT: "the job execution timed out", CANCELED: "the job execution was canceled"}

VERSION_MISMATCH = "VersionMismatch"
INVALID_STATE_TRANSITION = "InvalidStateTransition"
RESOURCE_NOT_FOUND = "ResourceNotFound"
INVALID_REQUEST = "InvalidRequest"


@dataclass
class Execution:
    """One job execution (one command on one thing), as the store keeps it."""

    job_id: str
    thing_name: str
    status: str
    job_document: dict[str, Any]
    status_details: dict[str, Any] = field(default_factory=dict)
    version_number: int = 1
    execution_number: int = 1
    queued_at: float = 0.0
    started_at: float | None = None
    last_updated_at: float = 0.0

    @property
    def pending(self) -> bool:
        return self.status in PENDING


class Rejection(Exception):
    """A request the service refuses: its code, why, and the execution's state when known."""

    def __init__(self, code: str, message: str, execution: Execution | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.execution = code, message, execution


def job_document(operation_type: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"operation": operation_type, "args": dict(args)}


def command_event_fields(execution: Execution) -> tuple[str, str, dict[str, Any]]:
    """(command status, reason, output) for an execution's status. The final statusDetails
    is the command's output (only the end carries it: the store merges outputs, and progress
    details are not the result); a device's `reason` detail, when given, is the reason."""
    status = COMMAND_STATUS[execution.status]
    if execution.pending:
        return status, "", {}
    reason = ""
    if execution.status in REASONS:
        reason = str(execution.status_details.get("reason") or REASONS[execution.status])
    return status, reason, dict(execution.status_details)


# ---- payloads -------------------------------------------------------------------------------

def _seconds(at: float) -> int:
    return int(at)  # the service speaks whole epoch seconds


def execution_payload(execution: Execution, with_document: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobId": execution.job_id, "thingName": execution.thing_name,
        "status": execution.status, "statusDetails": dict(execution.status_details),
        "queuedAt": _seconds(execution.queued_at),
        "lastUpdatedAt": _seconds(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    }
    if execution.started_at is not None:
        body["startedAt"] = _seconds(execution.started_at)
    if with_document:
        body["jobDocument"] = execution.job_document
    return body


def summary_payload(execution: Execution) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobId": execution.job_id, "queuedAt": _seconds(execution.queued_at),
        "lastUpdatedAt": _seconds(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    }
    if execution.started_at is not None:
        body["startedAt"] = _seconds(execution.started_at)
    return body


def state_payload(execution: Execution) -> dict[str, Any]:
    return {"status": execution.status, "statusDetails": dict(execution.status_details),
            "versionNumber": execution.version_number}


def pending_payload(pending: list[Execution], now: float) -> dict[str, Any]:
    """The `get` answer: in-progress and queued executions, oldest first."""
    return {"inProgressJobs": [summary_payload(e) for e in pending if e.status == IN_PROGRESS],
            "queuedJobs": [summary_payload(e) for e in pending if e.status == QUEUED],
            "timestamp": _seconds(now)}


def next_execution(pending: list[Execution]) -> Execution | None:
    """The thing's next execution: the oldest in progress, else the oldest queued."""
    for status in (IN_PROGRESS, QUEUED):
        for execution in pending:
            if execution.status == status:
                return execution
    return None


def notify_payload(pending: list[Execution], now: float) -> dict[str, Any]:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for status in PENDING:
        listed = [summary_payload(e) for e in pending if e.status == status]
        if listed:
            jobs[status] = listed
    return {"timestamp": _seconds(now), "jobs": jobs}


def notify_next_payload(pending: list[Execution], now: float) -> dict[str, Any]:
    body: dict[str, Any] = {"timestamp": _seconds(now)}
    following = next_execution(pending)
    if following is not None:
        body["execution"] = execution_payload(following)
    return body


def rejected_payload(rejection: Rejection, client_token: str | None,
                     now: float) -> dict[str, Any]:
    body: dict[str, Any] = {"code": rejection.code, "message": rejection.message,
                            "timestamp": _seconds(now)}
    if client_token is not None:
        body["clientToken"] = client_token
    if rejection.execution is not None:
        body["executionState"] = state_payload(rejection.execution)
    return body


def with_token(body: dict[str, Any], client_token: str | None) -> dict[str, Any]:
    if client_token is not None:
        body["clientToken"] = client_token
    return body


# ---- requests -------------------------------------------------------------------------------

def read_request(payload: bytes) -> dict[str, Any]:
    """A request's JSON object (an empty payload is an empty request)."""
    if not payload.strip():
        return {}
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise Rejection(INVALID_REQUEST, "the payload is not valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise Rejection(INVALID_REQUEST, "the payload must be a JSON object")
    return body


def client_token_of(body: dict[str, Any]) -> str | None:
    token = body.get("clientToken")
    return token if isinstance(token, str) else None


def check_client_token(body: dict[str, Any]) -> None:
    token = body.get("clientToken")
    if token is not None and (not isinstance(token, str) or len(token) > 64):
        raise Rejection(INVALID_REQUEST, "clientToken must be a string of at most 64 characters")


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Rejection(INVALID_REQUEST, f"{name} must be a number")
    try:
        return int(value)
    except ValueError:
        raise Rejection(INVALID_REQUEST, f"{name} must be a number") from None


def _optional_bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise Rejection(INVALID_REQUEST, f"{name} must be true or false")
    return value


def _status_details(body: dict[str, Any]) -> dict[str, Any] | None:
    details = body.get("statusDetails")
    if details is not None and not isinstance(details, dict):
        raise Rejection(INVALID_REQUEST, "statusDetails must be an object of name/value pairs")
    return details


@dataclass(frozen=True)
class DescribeRequest:
    execution_number: int | None
    include_job_document: bool

    @classmethod
    def read(cls, body: dict[str, Any]) -> DescribeRequest:
        check_client_token(body)
        return cls(_optional_int(body, "executionNumber"),
                   _optional_bool(body, "includeJobDocument", True))


@dataclass(frozen=True)
class StartNextRequest:
    status_details: dict[str, Any] | None

    @classmethod
    def read(cls, body: dict[str, Any]) -> StartNextRequest:
        check_client_token(body)
        _optional_int(body, "stepTimeoutInMinutes")  # accepted; a stage's timeout governs
        return cls(_status_details(body))


@dataclass(frozen=True)
class UpdateRequest:
    status: str
    status_details: dict[str, Any] | None
    expected_version: int | None
    execution_number: int | None
    include_job_execution_state: bool
    include_job_document: bool

    @classmethod
    def read(cls, body: dict[str, Any]) -> UpdateRequest:
        check_client_token(body)
        status = body.get("status")
        if status not in DEVICE_STATUSES:
            raise Rejection(INVALID_REQUEST,
                            f"status must be one of {', '.join(DEVICE_STATUSES)} (got {status!r})")
        _optional_int(body, "stepTimeoutInMinutes")  # accepted; a stage's timeout governs
        return cls(status=status, status_details=_status_details(body),
                   expected_version=_optional_int(body, "expectedVersion"),
                   execution_number=_optional_int(body, "executionNumber"),
                   include_job_execution_state=_optional_bool(
                       body, "includeJobExecutionState", False),
                   include_job_document=_optional_bool(body, "includeJobDocument", False))


def check_update(execution: Execution, request: UpdateRequest) -> None:
    """Refuse an update the execution cannot take: the wrong execution, a stale version, or
    any change of a finished execution (so a late or repeated update moves nothing back)."""
    if (request.execution_number is not None
            and request.execution_number != execution.execution_number):
        raise Rejection(RESOURCE_NOT_FOUND,
                        f"job {execution.job_id} has no execution {request.execution_number}")
    if (request.expected_version is not None
            and request.expected_version != execution.version_number):
        raise Rejection(VERSION_MISMATCH,
                        f"expected version {request.expected_version}, the execution is at "
                        f"{execution.version_number}", execution)
    if not execution.pending:
        raise Rejection(INVALID_STATE_TRANSITION,
                        f"job {execution.job_id} is {execution.status}; it cannot become "
                        f"{request.status}", execution)
