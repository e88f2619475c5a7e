"""Whether a run can be started with these inputs, decided before anything is made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.inputs import InvalidInput, SensitiveValues, check_inputs
from settings import Settings

# Gateways that keep a command's args in their own tables until the device fetches them (the
# MQTT job document, the Esper command intent): a sensitive input would be stored there in
# clear, so runs with one are refused while the worker uses them.
GATEWAYS_KEEPING_ARGS = frozenset({"mqtt", "esper"})


def check_run_inputs(settings: Settings, plain: Mapping[str, Any],
                     sensitive: Mapping[str, str]) -> SensitiveValues | None:
    """The run's sensitive inputs as they travel (None without any); InvalidInput for inputs
    that cannot be a run's, or sensitive ones this deployment cannot keep secret."""
    check_inputs(plain, sensitive)
    if not sensitive:
        return None
    if not settings.codec_keyring().configured:
        raise InvalidInput("sensitive_input_values", (
            "sensitive inputs travel encrypted, and no payload codec key is configured: set "
            "FLEETPIPE_CODEC_KEYS (kid:base64key) on the API and every worker, or start the "
            "run without them"))
    if settings.gateway in GATEWAYS_KEEPING_ARGS:
        raise InvalidInput("sensitive_input_values", (
            f"the {settings.gateway} gateway keeps a command's args in its own tables until "
            "the device fetches them, so a sensitive input would be stored in clear: only the "
            "simulated gateway takes them for now"))
    return SensitiveValues(dict(sensitive))
