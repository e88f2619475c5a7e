"""domain.operations: the operation types and their required arguments."""

from __future__ import annotations

import pytest

from domain.operations import OPERATION_TYPES, InvalidOperation, validate_operation

# The Esper v0 model names these types; INSTALL needs at least the package and the version.
VALID = {
    "INSTALL": {"package_name": "com.example.app", "app_version": "1.2.3"},
    "UNINSTALL": {"package_name": "com.example.app"},
    "SET_APP_STATE": {"package_name": "com.example.app", "state": "HIDE"},
    "UPDATE_DEVICE_CONFIG": {"config": {"wifi": {"ssid": "plant-4"}}},
    "REBOOT": {},
    "WIPE": {},
}
REQUIRED = {
    "INSTALL": ["package_name", "app_version"],
    "UNINSTALL": ["package_name"],
    "SET_APP_STATE": ["package_name", "state"],
    "UPDATE_DEVICE_CONFIG": ["config"],
}


def test_the_types_of_the_design_are_all_supported():
    assert set(OPERATION_TYPES) == set(VALID)


@pytest.mark.parametrize("operation_type", list(VALID))
def test_every_operation_type_with_its_args(operation_type):
    normalised, args = validate_operation(operation_type, VALID[operation_type])
    assert normalised == operation_type
    assert args == VALID[operation_type]


def test_other_args_are_passed_through():
    given = {"package_name": "com.example.app", "app_version": "1.2.3", "version_code": 42,
             "version_name": "1.2.3-beta", "application_name": "Example"}
    assert validate_operation("INSTALL", given) == ("INSTALL", given)


def test_the_args_returned_are_a_copy():
    given = {"package_name": "com.example.app"}
    _, args = validate_operation("UNINSTALL", given)
    args["package_name"] = "changed"
    assert given == {"package_name": "com.example.app"}


@pytest.mark.parametrize("operation_type", ["REBOOT", "WIPE"])
def test_types_without_required_args_accept_none(operation_type):
    assert validate_operation(operation_type, None) == (operation_type, {})


MISSING_CASES = [
    pytest.param(op, name, missing_value, id=f"{op}-{name}-{label}")
    for op, names in REQUIRED.items()
    for name in names
    for label, missing_value in (("absent", ...), ("none", None), ("empty", ""))
]


@pytest.mark.parametrize("operation_type, name, missing_value", MISSING_CASES)
def test_missing_required_arg_is_named(operation_type, name, missing_value):
    args = dict(VALID[operation_type])
    if missing_value is ...:
        del args[name]
    else:
        args[name] = missing_value
    with pytest.raises(InvalidOperation) as raised:
        validate_operation(operation_type, args)
    assert raised.value.field == "args"
    message = str(raised.value)
    assert f"needs args {name}" in message
    assert operation_type in message


def test_every_missing_arg_is_named_at_once():
    with pytest.raises(InvalidOperation) as raised:
        validate_operation("INSTALL", {})
    assert "needs args package_name, app_version" in str(raised.value)


@pytest.mark.parametrize("operation_type", [
    pytest.param("REBOOT_NOW", id="unknown"),
    pytest.param("INSTAL", id="typo"),
    pytest.param("", id="empty"),
    pytest.param(None, id="none"),
    pytest.param(7, id="not-a-string"),
])
def test_unknown_type_lists_the_allowed_ones(operation_type):
    with pytest.raises(InvalidOperation) as raised:
        validate_operation(operation_type, {})
    assert raised.value.field == "operation_type"
    message = str(raised.value)
    assert repr(operation_type) in message
    for allowed in VALID:
        assert allowed in message


def test_invalid_operation_is_a_value_error():
    # The API maps ValueError-family input errors to 400s.
    assert issubclass(InvalidOperation, ValueError)


@pytest.mark.parametrize("given, expected", [
    pytest.param("install", "INSTALL", id="lower"),
    pytest.param("Install", "INSTALL", id="title"),
    pytest.param(" reboot ", "REBOOT", id="padded"),
    pytest.param("set_app_state", "SET_APP_STATE", id="snake-lower"),
    pytest.param("Update_Device_Config", "UPDATE_DEVICE_CONFIG", id="mixed"),
])
def test_type_is_case_insensitive(given, expected):
    args = VALID[expected]
    assert validate_operation(given, args) == (expected, args)


def test_a_lower_case_type_still_needs_its_args():
    with pytest.raises(InvalidOperation) as raised:
        validate_operation("uninstall", {})
    assert "UNINSTALL needs args package_name" in str(raised.value)
