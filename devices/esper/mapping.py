"""Esper's words for fleetpipe's: command states to command statuses, operation args to
Esper's `command_args`, and the Esper device a fleetpipe device names."""

from __future__ import annotations

from typing import Any

from domain.statuses import CommandStatus

_C = CommandStatus

# Exactly the states the SDK accepts (V0CommandStatus refuses any other) and the command
# statuses of the same names.
STATE_TO_STATUS: dict[str, str] = {
    "Command Scheduled": _C.SCHEDULED,
    "Command Queued": _C.QUEUED,
    "Command Initiated": _C.INITIATED,
    "Command Acknowledged": _C.ACKNOWLEDGED,
    "Command In Progress": _C.INPROGRESS,
    "Command Success": _C.SUCCESS,
    "Command Failure": _C.FAILURE,
    "Command TimeOut": _C.TIMEOUT,
    "Command Cancelled": _C.CANCELLED,
}
STATUS_TO_STATE: dict[str, str] = {status: state for state, status in STATE_TO_STATUS.items()}

# The fields of the SDK's V0CommandArgs: anything else would be dropped by the SDK's model.
COMMAND_ARG_FIELDS = ("device_alias_name", "custom_settings_config", "app_version",
                      "package_name", "policy_url", "wifi_access_points", "state", "message",
                      "app_state")
# fleetpipe's argument names that Esper spells differently, per operation.
_RENAMED: dict[str, dict[str, str]] = {
    "SET_APP_STATE": {"state": "app_state"},
    "UPDATE_DEVICE_CONFIG": {"config": "custom_settings_config"},
}

ESPER_DEVICE_ATTRIBUTE = "esper_device_id"


def status_of(state: str) -> str:
    """The command status for an Esper state; ValueError naming the known states otherwise."""
    try:
        return STATE_TO_STATUS[state]
    except KeyError:
        raise ValueError(f"unknown Esper command state {state!r}; known: "
                         + ", ".join(STATE_TO_STATUS)) from None


def command_args(operation_type: str, args: dict[str, Any]) -> dict[str, Any]:
    """The operation's args as Esper's command_args: its own field names, nothing else."""
    renamed = _RENAMED.get(operation_type.upper(), {})
    out: dict[str, Any] = {}
    for name, value in args.items():
        if value is None:
            continue
        if name in COMMAND_ARG_FIELDS:
            out[name] = value
        if name in renamed:
            out.setdefault(renamed[name], value)
    for name, value in args.items():  # an arg given under Esper's own name wins
        if name in renamed.values() and value is not None:
            out[name] = value
    return out


def esper_device_id(device_id: str, attributes: dict[str, str]) -> str:
    """The Esper device a fleetpipe device stands for: its `esper_device_id`, else its id."""
    return (attributes.get(ESPER_DEVICE_ATTRIBUTE) or "").strip() or device_id
