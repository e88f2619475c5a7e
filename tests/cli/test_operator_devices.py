"""`fleetpipe devices import FILE.csv` over the real API: devices created by name with their
alias, attributes and groups; importing again changes nothing; a changed row updates its
device in place; a bad row is named by its line and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.operator_stack import Stack

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FLEET = """\
name,alias,groups,esper_device_id,thing_name
tab-1,Front desk,lobby;android,esper-111,
tab-2,,android,esper-222,
sensor-1,Boiler,,,boiler-thing
"""


async def _devices(stack: Stack) -> dict[str, dict]:
    return {d["name"]: d for d in (await stack.ok("GET", "/devices?limit=100"))["results"]}


async def _groups(stack: Stack) -> dict[str, set[str]]:
    groups = {}
    for group in (await stack.ok("GET", "/devicegroups"))["results"]:
        detail = await stack.ok("GET", f"/devicegroups/{group['id']}")
        groups[group["name"]] = set(detail["device_ids"])
    return groups


async def test_import_creates_then_changes_nothing_then_updates_by_name(
        stack: Stack, tmp_path: Path) -> None:
    existing = await stack.ok("POST", "/devices", {
        "name": "tab-2", "alias": "old", "attributes": {"sim_behavior": "succeed"}})
    path = tmp_path / "fleet.csv"
    path.write_text(FLEET)
    first = await stack.cli("devices", "import", str(path), "-o", "json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {
        "created": ["tab-1", "sensor-1"], "updated": ["tab-2"], "unchanged": [],
        "groups_created": ["android", "lobby"], "groups_updated": []}
    devices = await _devices(stack)
    assert devices["tab-1"]["alias"] == "Front desk"
    assert devices["tab-1"]["attributes"] == {"esper_device_id": "esper-111"}
    assert devices["sensor-1"]["attributes"] == {"thing_name": "boiler-thing"}
    # Matched by name: the same device, its other attributes kept, its empty alias cell kept.
    assert devices["tab-2"]["id"] == existing["id"]
    assert devices["tab-2"]["attributes"] == {"sim_behavior": "succeed",
                                              "esper_device_id": "esper-222"}
    assert await _groups(stack) == {
        "android": {devices["tab-1"]["id"], devices["tab-2"]["id"]},
        "lobby": {devices["tab-1"]["id"]}}

    again = await stack.cli("devices", "import", str(path))
    assert again.exit_code == 0, again.output
    assert "devices: 0 created, 0 updated, 3 unchanged; groups: 0 created, 0 updated" \
        in again.stdout

    path.write_text(FLEET.replace("esper-222,", "esper-999,")
                    .replace("Boiler,,,boiler", "Boiler,lobby,,boiler"))
    changed = await stack.cli("devices", "import", str(path), "-o", "json")
    assert changed.exit_code == 0, changed.output
    result = json.loads(changed.stdout)
    assert (result["updated"], result["groups_updated"]) == (["tab-2"], ["lobby"])
    devices = await _devices(stack)
    assert devices["tab-2"]["attributes"]["esper_device_id"] == "esper-999"
    assert devices["sensor-1"]["id"] in (await _groups(stack))["lobby"]
    assert len(devices) == 3


async def test_bad_rows_are_named_by_line_and_nothing_is_written(stack: Stack,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,alias\ngood-1,A\n,nameless\ngood-1,twice\ngood-2,B,extra\n")
    result = await stack.cli("devices", "import", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"fleetpipe: {path}:3: name: empty (every device needs a name)",
        f"fleetpipe: {path}:4: name: 'good-1' is already on line 2",
        f"fleetpipe: {path}:5: more cells than the header has columns",
    ]
    assert await _devices(stack) == {}
    path.write_text("alias\nx\n")
    result = await stack.cli("devices", "import", str(path))
    assert result.exit_code == 1 and f"{path}:1: the header needs a `name` column" in result.stderr
