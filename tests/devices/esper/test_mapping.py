"""Esper's words for fleetpipe's, and the settings the gateway refuses to start without."""

from __future__ import annotations

import pytest
from esperclient.models.v0_command_status import V0CommandStatus

from devices.esper.config import EsperConfig, EsperNotConfigured
from devices.esper.mapping import STATE_TO_STATUS, command_args, esper_device_id, status_of
from domain.statuses import CommandStatus
from settings import Settings


def test_esper_states_are_exactly_the_command_statuses() -> None:
    for state in STATE_TO_STATUS:  # the SDK takes each of them
        assert V0CommandStatus(state=state).state == state
    with pytest.raises(ValueError, match="must be one of"):  # and refuses anything else
        V0CommandStatus(state="Command Exploded")
    assert sorted(STATE_TO_STATUS.values()) == sorted(s.value for s in CommandStatus)
    assert status_of("Command In Progress") == "inprogress"
    assert status_of("Command TimeOut") == "timeout"
    with pytest.raises(ValueError, match="Command Queued"):
        status_of("Command Exploded")


def test_operation_args_become_esper_command_args() -> None:
    assert command_args("INSTALL", {"package_name": "p", "app_version": "v", "version_code": 3,
                                    "application_name": "App"}) == {
        "package_name": "p", "app_version": "v"}
    assert command_args("SET_APP_STATE", {"package_name": "p", "state": "HIDE"}) == {
        "package_name": "p", "state": "HIDE", "app_state": "HIDE"}
    assert command_args("UPDATE_DEVICE_CONFIG", {"config": {"a": 1}}) == {
        "custom_settings_config": {"a": 1}}
    assert command_args("REBOOT", {}) == {}


def test_a_device_names_its_esper_device_by_attribute_else_its_id() -> None:
    assert esper_device_id("d1", {"esper_device_id": " e-9 "}) == "e-9"
    assert esper_device_id("d1", {}) == "d1"


def test_missing_settings_are_named() -> None:
    with pytest.raises(EsperNotConfigured) as caught:
        EsperConfig.from_settings(Settings(esper_url="http://x/api", esper_api_key="",
                                           esper_enterprise_id=""))
    message = str(caught.value)
    assert "FLEETPIPE_ESPER_API_KEY" in message and "FLEETPIPE_ESPER_ENTERPRISE_ID" in message
    assert "FLEETPIPE_ESPER_URL" not in message
    with pytest.raises(EsperNotConfigured, match="MAX_REQUESTS_PER_SECOND"):
        EsperConfig.from_settings(Settings(esper_url="u", esper_api_key="k",
                                           esper_enterprise_id="e",
                                           esper_max_requests_per_second=0))
    config = EsperConfig.from_settings(Settings(
        esper_url="https://t-api.esper.cloud/api/", esper_api_key="k", esper_enterprise_id="e",
        esper_max_requests_per_second=4, esper_poll_interval_s=2, esper_poll_max_interval_s=30))
    assert (config.url, config.max_requests_per_second, config.poll_interval_s,
            config.poll_max_interval_s) == ("https://t-api.esper.cloud/api", 4, 2, 30)
