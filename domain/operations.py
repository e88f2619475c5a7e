"""Operation types a stage can send, and the arguments each one needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# operation type -> required argument names (other arguments are passed through to the device).
REQUIRED_ARGS: dict[str, tuple[str, ...]] = {
    "INSTALL": ("package_name", "app_version"),
    "UNINSTALL": ("package_name",),
    "SET_APP_STATE": ("package_name", "state"),
    "UPDATE_DEVICE_CONFIG": ("config",),
    "REBOOT": (),
    "WIPE": (),
}

OPERATION_TYPES: tuple[str, ...] = tuple(REQUIRED_ARGS)


class InvalidOperation(ValueError):
    """An operation a device could not be sent; the message names the field and allowed values."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def validate_operation(operation_type: str, args: Mapping[str, Any] | None) -> tuple[str, dict]:
    """Normalise and check one operation; returns (TYPE, args) or raises InvalidOperation."""
    normalised = operation_type.strip().upper() if isinstance(operation_type, str) else ""
    if normalised not in REQUIRED_ARGS:
        raise InvalidOperation(
            "operation_type",
            f"operation_type {operation_type!r} is not supported; allowed: "
            + ", ".join(OPERATION_TYPES),
        )
    given = dict(args or {})
    missing = [name for name in REQUIRED_ARGS[normalised] if given.get(name) in (None, "")]
    if missing:
        raise InvalidOperation(
            "args",
            f"{normalised} needs args {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED_ARGS[normalised])})",
        )
    return normalised, given
