"""`fleetpipe apply -f` against the real API over HTTP: a file creates its pipeline, the same
file again changes nothing, a changed file updates that pipeline in place (same id), and a bad
file changes nothing and names file:line: field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.seed import seed_demo
from tests.cli.operator_stack import Stack

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo-rollout.yaml"

V1 = """\
name: rollout
description: first cut
stages:
  - name: canary
    targets: {devices: [phone-0, phone-1]}
    operations:
      - type: INSTALL
        args: {package_name: com.example.app, app_version: "1.0"}
  - name: fleet
    targets: {devices: [phone-2, phone-3]}
    operations:
      - type: install
        args: {package_name: com.example.app, app_version: "1.0"}
  - name: cleanup
    operations: [{type: REBOOT}]
"""

V2 = """\
name: rollout
description: second cut
timeout_seconds: 86400
stages:
  - name: canary
    timeout_seconds: 600
    targets: {devices: [phone-0]}
    operations:
      - type: INSTALL
        args: {package_name: com.example.app, app_version: "2.0"}
      - type: REBOOT
  - name: lab
    trigger: manual
    targets: {groups: [lab]}
    operations: [{type: REBOOT}]
  - name: fleet
    trigger: automatic
    rollout: {maximum_per_minute: 30, success_threshold_percentage: 90}
    targets: {devices: [phone-2, phone-3, phone-4], groups: [lab]}
    operations:
      - type: INSTALL
        args: {package_name: com.example.app, app_version: "2.0"}
"""


async def _fleet(stack: Stack) -> dict[str, str]:
    ids = {}
    for n in range(5):
        device = await stack.ok("POST", "/devices", {"name": f"phone-{n}"})
        ids[device["name"]] = device["id"]
    await stack.ok("POST", "/devicegroups", {"name": "lab", "device_ids": [ids["phone-4"]]})
    return ids


async def _definition(stack: Stack, pipeline_id: str) -> list[dict]:
    """Each stage as the API now has it: its fields, members and operations."""
    pipeline = await stack.ok("GET", f"/pipelines/{pipeline_id}")
    stages = []
    for stage in pipeline["stages"]:
        devices, groups = set(), set()
        for tl in (await stack.ok("GET", f"/stages/{stage['id']}/targetlists"))["results"]:
            base = f"/pipelines/{pipeline_id}/targetlists/{tl['id']}"
            if tl["target_list_type"] == "DEVICES":
                devices |= {t["device_name"] for t in
                            (await stack.ok("GET", base + "/targets"))["results"]}
            else:
                groups |= {g["name"] for g in
                           (await stack.ok("GET", base + "/devicegroups"))["results"]}
        ops = []
        for list_id in stage["operation_list_ids"]:
            ops += [(o["operation_type"], o["args"]) for o in
                    (await stack.ok("GET", f"/operationlists/{list_id}/operations"))["results"]]
        stages.append({"name": stage["name"], "order": stage["order"],
                       "trigger": stage["trigger"], "timeout": stage["timeout_seconds"],
                       "rate": stage["rollout"]["maximum_per_minute"], "devices": devices,
                       "groups": groups, "ops": ops})
    return stages


async def test_apply_creates_then_changes_nothing_then_updates_in_place(
        stack: Stack, tmp_path: Path) -> None:
    await _fleet(stack)
    path = tmp_path / "rollout.yaml"
    path.write_text(V1)

    created = await stack.cli("apply", "-f", str(path))
    assert created.exit_code == 0, created.output
    assert "pipeline rollout created" in created.stdout
    again = await stack.cli("apply", "-f", str(path), "--output", "json")
    assert again.exit_code == 0, again.output
    result = json.loads(again.stdout)
    assert result["result"] == "unchanged" and result["changes"] == []
    pipeline_id = result["pipeline_id"]
    first = await _definition(stack, pipeline_id)
    assert [(s["name"], s["trigger"]) for s in first] == [
        ("canary", "automatic"), ("fleet", "manual"), ("cleanup", "manual")]
    assert first[1]["devices"] == {"phone-2", "phone-3"}

    path.write_text(V2)
    updated = await stack.cli("apply", "-f", str(path))
    assert updated.exit_code == 0, updated.output
    assert f"pipeline rollout updated ({pipeline_id})" in updated.stdout
    assert "stage cleanup: removed" in updated.stdout and "stage lab: added" in updated.stdout
    pipeline = await stack.ok("GET", f"/pipelines/{pipeline_id}")
    assert (pipeline["description"], pipeline["timeout_seconds"]) == ("second cut", 86400)
    assert len((await stack.ok("GET", "/pipelines?name=rollout"))["results"]) == 1
    assert await _definition(stack, pipeline_id) == [
        {"name": "canary", "order": 1, "trigger": "automatic", "timeout": 600, "rate": None,
         "devices": {"phone-0"}, "groups": set(),
         "ops": [("INSTALL", {"package_name": "com.example.app", "app_version": "2.0"}),
                 ("REBOOT", {})]},
        {"name": "lab", "order": 2, "trigger": "manual", "timeout": 604800, "rate": None,
         "devices": set(), "groups": {"lab"}, "ops": [("REBOOT", {})]},
        {"name": "fleet", "order": 3, "trigger": "automatic", "timeout": 604800, "rate": 30,
         "devices": {"phone-2", "phone-3", "phone-4"}, "groups": {"lab"},
         "ops": [("INSTALL", {"package_name": "com.example.app", "app_version": "2.0"})]},
    ]
    settled = await stack.cli("apply", "-f", str(path))
    assert settled.exit_code == 0, settled.output
    assert "pipeline rollout unchanged" in settled.stdout


async def test_the_example_file_is_the_dev_stacks_demo_pipeline(stack: Stack,
                                                                  tmp_path: Path) -> None:
    demo = seed_demo(stack.engine, tmp_path / "demo-token")
    result = await stack.cli("apply", "-f", str(EXAMPLE), env=stack.env(FLEETPIPE_TOKEN=demo.token))
    assert result.exit_code == 0, result.output
    assert f"pipeline demo-rollout unchanged ({demo.pipeline_id})" in result.stdout


async def test_a_bad_file_changes_nothing_and_names_file_line_and_field(
        stack: Stack, tmp_path: Path) -> None:
    await _fleet(stack)
    path = tmp_path / "bad.yaml"
    path.write_text("""\
name: broken
stages:
  - name: canary
    trigger: sometimes
    targets:
      device: [phone-0]
    operations:
      - type: BOOT
""")
    result = await stack.cli("apply", "-f", str(path))
    assert result.exit_code == 1
    assert f"{path}:4: stages.0.trigger: Input should be 'manual' or 'automatic'" in result.stderr
    assert f"{path}:6: stages.0.targets.device: not a field here" in result.stderr
    assert f"{path}:8: stages.0.operations.0.type: 'BOOT' is not an operation type" \
        in result.stderr

    # Names the API does not know are problems at their lines too, found before any write.
    path.write_text("""\
name: broken
stages:
  - name: canary
    targets:
      devices: [phone-0,
                phone-9]
      groups: [nowhere]
    operations:
      - type: INSTALL
        args: {package_name: com.example.app}
""")
    result = await stack.cli("apply", "-f", str(path))
    assert result.exit_code == 1
    assert (f"{path}:10: stages.0.operations.0.args: INSTALL needs args app_version"
            in result.stderr)
    path.write_text(path.read_text().replace("{package_name: com.example.app}",
                                             "{package_name: x, app_version: '1'}"))
    result = await stack.cli("apply", "-f", str(path))
    assert result.exit_code == 1
    assert f"{path}:6: stages.0.targets.devices.1: no device is named 'phone-9'" in result.stderr
    assert f"{path}:7: stages.0.targets.groups.0: no device group named 'nowhere'" \
        in result.stderr
    assert "Traceback" not in result.output
    assert (await stack.ok("GET", "/pipelines?name=broken"))["count"] == 0

    path.write_text("name: [unclosed\n")
    result = await stack.cli("apply", "-f", str(path))
    assert result.exit_code == 1 and f"{path}:2: not valid YAML" in result.stderr


async def test_two_pipelines_of_one_name_are_refused_by_name(stack: Stack,
                                                              tmp_path: Path) -> None:
    first = await stack.ok("POST", "/pipelines", {"name": "twin"})
    second = await stack.ok("POST", "/pipelines", {"name": "twin"})
    path = tmp_path / "twin.yaml"
    path.write_text("name: twin\nstages: []\n")
    result = await stack.cli("apply", "-f", str(path))
    assert result.exit_code == 1
    assert "2 pipelines are named 'twin'" in result.stderr
    assert first["id"] in result.stderr and second["id"] in result.stderr
    started = await stack.cli("runs", "start", "twin")
    assert started.exit_code == 1 and "name one by its id" in started.stderr
