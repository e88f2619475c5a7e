"""Definitions over HTTP: devices, groups, pipelines, stages, target lists, operations, and the
nested create of a whole pipeline, with their bad-input answers."""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from store.definitions.operation_lists import Operation
from store.definitions.pipelines import Pipeline, Stage
from store.definitions.target_lists import TargetList
from tests.api.conftest import Api
from tests.api.test_envelope_auth import assert_error

INSTALL = {"operation_type": "INSTALL",
           "args": {"package_name": "com.example.app", "app_version": "1.2.3"}}


async def make_devices(api: Api, count: int, prefix: str = "dev") -> list[dict]:
    return [await api.ok("POST", "/devices", {"name": f"{prefix}-{i}", "alias": f"a{i}",
                                              "attributes": {"sim_behavior": "succeed"}}, 201)
            for i in range(count)]


def count_rows(api: Api, table: type) -> int:
    with Session(api.engine) as session:
        return len(session.exec(select(table)).all())


async def test_device_crud_and_pagination(api: Api):
    devices = await make_devices(api, 5)
    device = devices[0]
    assert device["attributes"] == {"sim_behavior": "succeed"} and device["alias"] == "a0"
    page = await api.ok("GET", "/devices?limit=2")
    assert page["count"] == 5 and len(page["results"]) == 2 and page["previous"] is None
    # Relative links (no public base URL configured): never built from the Host header.
    assert page["next"] == "/api/pipelines/v0/devices?limit=2&offset=2"
    last = (await api.http.get(page["next"].replace("offset=2", "offset=4"))).json()["content"]
    assert last["next"] is None and len(last["results"]) == 1
    assert last["previous"] == "/api/pipelines/v0/devices?limit=2&offset=2"
    via_alias = (await api.http.get("/v0/devices?limit=2")).json()["content"]
    assert via_alias["next"].startswith("/v0/devices?")  # the client's base
    named = await api.ok("GET", "/devices?name=dev-3")
    assert [d["name"] for d in named["results"]] == ["dev-3"]

    updated = await api.ok("PUT", f"/devices/{device['id']}",
                           {"alias": "renamed", "attributes": {"sim_behavior": "fail"}})
    assert updated["alias"] == "renamed" and updated["name"] == "dev-0"
    assert updated["attributes"] == {"sim_behavior": "fail"}
    assert (await api.ok("GET", f"/devices/{device['id']}"))["alias"] == "renamed"
    await api.ok("DELETE", f"/devices/{device['id']}")
    assert_error(await api.get(f"/devices/{device['id']}"), 404, "device")
    assert_error(await api.get(f"/devices/{uuid.uuid4()}"), 404)
    assert_error(await api.put(f"/devices/{devices[1]['id']}", {"name": ""}), 400, "name")
    assert_error(await api.post("/devices", {"name": "x", "attributes": "nope"}), 400,
                 "attributes")


async def test_device_groups_with_members_and_paged_devices(api: Api):
    devices = await make_devices(api, 3)
    ids = [d["id"] for d in devices]
    group = await api.ok("POST", "/devicegroups", {"name": "canary", "device_ids": ids[:2]}, 201)
    assert group["device_count"] == 2 and set(group["device_ids"]) == set(ids[:2])
    listed = await api.ok("GET", "/devicegroups")
    assert listed["results"][0]["device_count"] == 2 and listed["results"][0]["device_ids"] is None
    members = await api.ok("GET", f"/devicegroups/{group['id']}/devices?limit=1")
    assert members["count"] == 2 and members["next"] is not None
    assert (await api.ok("GET", f"/devices/{ids[0]}"))["group_ids"] == [group["id"]]

    changed = await api.ok("PUT", f"/devicegroups/{group['id']}", {"device_ids": [ids[2]]})
    assert changed["device_ids"] == [ids[2]] and changed["name"] == "canary"
    bad = str(uuid.uuid4())
    body = assert_error(await api.put(f"/devicegroups/{group['id']}",
                                      {"device_ids": [ids[0], bad]}), 400, "device_ids", bad)
    assert body["content"]["errors"][0]["field"] == "device_ids"
    # nothing half-applied: the members are still [ids[2]]
    assert (await api.ok("GET", f"/devicegroups/{group['id']}"))["device_ids"] == [ids[2]]
    assert_error(await api.post("/devicegroups", {"name": "g", "device_ids": ["zzz"]}), 400,
                 "device_ids.0")
    await api.ok("DELETE", f"/devicegroups/{group['id']}")
    assert_error(await api.get(f"/devicegroups/{group['id']}/devices"), 404)


async def test_pipeline_stage_targetlist_operation_crud(api: Api):
    devices = await make_devices(api, 2)
    pipeline = await api.ok("POST", "/pipelines", {"name": "rollout", "description": "d"}, 201)
    pid = pipeline["id"]
    assert pipeline["stages"] == [] and pipeline["timeout_seconds"] == 21 * 24 * 3600
    first = await api.ok("POST", f"/pipelines/{pid}/stages", {"name": "canary"}, 201)
    second = await api.ok("POST", f"/pipelines/{pid}/stages",
                          {"name": "fleet", "timeout_seconds": 600,
                           "rollout": {"maximum_per_minute": 100}}, 201)
    assert (first["trigger"], first["order"]) == ("automatic", 1)
    assert (second["trigger"], second["order"]) == ("manual", 2)
    assert second["timeout_seconds"] == 600 and second["rollout"]["maximum_per_minute"] == 100
    assert first["timeout_seconds"] == 7 * 24 * 3600

    targets = await api.ok("POST", f"/pipelines/{pid}/targetlists",
                           {"name": "canaries", "target_list_type": "devices"}, 201)
    assert targets["target_list_type"] == "DEVICES"
    tl = f"/pipelines/{pid}/targetlists/{targets['id']}"
    added = await api.ok("POST", tl + "/targets", {"device_id": devices[0]["id"]}, 201)
    assert added["device_name"] == "dev-0"
    again = await api.ok("POST", tl + "/targets", {"device_id": devices[0]["id"]}, 201)
    assert again["id"] == added["id"]
    await api.ok("POST", tl + "/targets", {"device_id": devices[1]["id"]}, 201)
    assert (await api.ok("GET", tl + "/targets"))["count"] == 2
    assert (await api.ok("GET", tl))["size"] == 2
    await api.ok("DELETE", f"{tl}/targets/{devices[1]['id']}")  # by device id works too
    assert (await api.ok("GET", tl + "/targets"))["count"] == 1

    group = await api.ok("POST", "/devicegroups", {"name": "g", "device_ids": [devices[1]["id"]]},
                         201)
    groups = await api.ok("POST", f"/pipelines/{pid}/targetlists",
                          {"name": "groups", "target_list_type": "GROUPS"}, 201)
    gl = f"/pipelines/{pid}/targetlists/{groups['id']}"
    assert_error(await api.post(tl + "/devicegroups", {"device_group_id": group["id"]}), 400,
                 "DEVICES")
    assert_error(await api.post(gl + "/targets", {"device_id": devices[0]["id"]}), 400, "GROUPS")
    linked = await api.ok("POST", gl + "/devicegroups", {"device_group_id": group["id"]}, 201)
    assert linked["name"] == "g"
    group_devices = await api.ok("GET", f"{gl}/devicegroups/{group['id']}/devices")
    assert [d["name"] for d in group_devices["results"]] == ["dev-1"]
    assert_error(await api.get(f"{gl}/devicegroups/{uuid.uuid4()}/devices"), 404)

    stage_lists = f"/stages/{first['id']}/targetlists"
    await api.ok("POST", stage_lists, {"target_list_id": targets["id"]}, 201)
    await api.ok("POST", stage_lists, {"target_list_id": groups["id"]}, 201)
    assert (await api.ok("GET", stage_lists))["count"] == 2
    await api.ok("DELETE", f"{stage_lists}/{groups['id']}")
    assert (await api.ok("GET", stage_lists))["count"] == 1
    assert_error(await api.delete(f"{stage_lists}/{groups['id']}"), 404)
    other = await api.ok("POST", "/pipelines", {"name": "other"}, 201)
    foreign = await api.ok("POST", f"/pipelines/{other['id']}/targetlists", {"name": "x"}, 201)
    assert_error(await api.post(stage_lists, {"target_list_id": foreign["id"]}), 400,
                 "target_list_id")

    op_list = await api.ok("POST", f"/stages/{first['id']}/operationlists",
                           {"name": "ops", "pipeline_id": pid}, 201)
    assert_error(await api.post(f"/stages/{first['id']}/operationlists",
                                {"name": "ops", "pipeline_id": other["id"]}), 400, "pipeline_id")
    ops = f"/operationlists/{op_list['id']}/operations"
    install = await api.ok("POST", ops, INSTALL, 201)
    reboot = await api.ok("POST", ops, {"operation_type": "reboot"}, 201)
    assert (install["order"], reboot["order"]) == (0, 1)
    assert reboot["operation_type"] == "REBOOT"
    body = assert_error(await api.post(ops, {"operation_type": "DANCE"}), 400,
                        "operation_type", "INSTALL", "REBOOT")
    assert body["content"]["errors"][0]["field"] == "operation_type"
    assert_error(await api.post(ops, {"operation_type": "INSTALL", "args": {"package_name": "x"}}),
                 400, "app_version")
    assert_error(await api.put(f"{ops}/{install['id']}", {"args": {}}), 400, "package_name")
    changed = await api.ok("PUT", f"{ops}/{install['id']}",
                           {"args": {"package_name": "p", "app_version": "2"}})
    assert changed["args"]["app_version"] == "2"
    assert (await api.ok("GET", ops))["count"] == 2
    await api.ok("DELETE", f"{ops}/{reboot['id']}")

    detail = await api.ok("GET", f"/pipelines/{pid}")
    assert [s["name"] for s in detail["stages"]] == ["canary", "fleet"]
    assert detail["stages"][0]["target_list_ids"] == [targets["id"]]
    assert detail["stages"][0]["operation_list_ids"] == [op_list["id"]]
    renamed = await api.ok("PUT", f"/pipelines/{pid}", {"name": "rollout-2"})
    assert renamed["name"] == "rollout-2" and renamed["description"] == "d"
    assert_error(await api.put(f"/pipelines/{pid}/stages/{first['id']}", {"trigger": "sometimes"}),
                 400, "trigger", "manual", "automatic")
    assert (await api.ok("PUT", f"/pipelines/{pid}/stages/{first['id']}",
                         {"trigger": "MANUAL"}))["trigger"] == "manual"
    assert_error(await api.put(f"/pipelines/{pid}/stages/{first['id']}",
                               {"rollout": {"maximum_per_minute": 0}}), 400,
                 "rollout.maximum_per_minute")
    assert_error(await api.get(f"/pipelines/{other['id']}/stages/{first['id']}"), 404)
    await api.ok("DELETE", f"/pipelines/{pid}/stages/{second['id']}")
    assert (await api.ok("GET", f"/pipelines/{pid}/stages"))["count"] == 1
    await api.ok("DELETE", f"/pipelines/{pid}")
    assert_error(await api.get(f"/pipelines/{pid}"), 404)
    assert_error(await api.get(f"/operationlists/{op_list['id']}"), 404)


async def test_nested_create_builds_the_whole_pipeline(api: Api):
    devices = await make_devices(api, 3)
    group = await api.ok("POST", "/devicegroups",
                         {"name": "rest", "device_ids": [devices[2]["id"]]}, 201)
    pipeline = await api.ok("POST", "/pipelines", {
        "name": "whole", "timeout_seconds": 3600,
        "stages": [
            {"name": "canary", "device_ids": [devices[0]["id"]], "operations": [INSTALL]},
            {"name": "fleet", "device_ids": [devices[1]["id"]], "device_group_ids": [group["id"]],
             "operations": [INSTALL, {"operation_type": "REBOOT"}],
             "rollout": {"maximum_per_minute": 10}},
        ],
    }, 201)
    assert pipeline["timeout_seconds"] == 3600
    canary, fleet = pipeline["stages"]
    assert (canary["trigger"], fleet["trigger"]) == ("automatic", "manual")
    assert len(canary["target_list_ids"]) == 1 and len(fleet["target_list_ids"]) == 2
    ops = await api.ok("GET", f"/operationlists/{fleet['operation_list_ids'][0]}/operations")
    assert [o["operation_type"] for o in ops["results"]] == ["INSTALL", "REBOOT"]


async def test_nested_create_with_any_bad_part_writes_nothing(api: Api):
    devices = await make_devices(api, 1)
    good_stage = {"name": "ok", "device_ids": [devices[0]["id"]], "operations": [INSTALL]}
    before = [count_rows(api, t) for t in (Pipeline, Stage, TargetList, Operation)]
    cases = [
        ({"name": "p", "stages": [good_stage, {"name": "bad", "operations": [
            {"operation_type": "INSTALL", "args": {}}]}]}, "stages.1.operations.0.args"),
        ({"name": "p", "stages": [good_stage, {"name": "bad",
                                               "device_ids": [str(uuid.uuid4())]}]},
         "stages.1.device_ids"),
        ({"name": "p", "stages": [good_stage, {"name": "bad",
                                               "device_group_ids": [str(uuid.uuid4())]}]},
         "stages.1.device_group_ids"),
        ({"name": "p", "stages": [good_stage, {"name": "bad", "trigger": "later"}]},
         "stages.1.trigger"),
        ({"name": "p",
          "stages": [{**good_stage, "rollout": {"success_threshold_percentage": 101}}]},
         "stages.0.rollout.success_threshold_percentage"),
        ({"name": "p", "stages": [{**good_stage, "timeout_seconds": 0}]},
         "stages.0.timeout_seconds"),
        ({"name": "", "stages": [good_stage]}, "name"),
    ]
    for body, field in cases:
        error = assert_error(await api.post("/pipelines", body), 400, field)
        assert error["content"]["errors"][0]["field"] == field
    assert [count_rows(api, t) for t in (Pipeline, Stage, TargetList, Operation)] == before


async def test_unknown_ids_in_paths_are_404(api: Api):
    missing = uuid.uuid4()
    pipeline = await api.ok("POST", "/pipelines", {"name": "p"}, 201)
    for path in [f"/pipelines/{missing}", f"/pipelines/{missing}/stages",
                 f"/pipelines/{pipeline['id']}/stages/{missing}",
                 f"/pipelines/{pipeline['id']}/targetlists/{missing}",
                 f"/pipelines/{pipeline['id']}/targetlists/{missing}/targets",
                 f"/stages/{missing}/targetlists", f"/stages/{missing}/operationlists",
                 f"/operationlists/{missing}/operations", f"/devicegroups/{missing}",
                 f"/devices/{missing}"]:
        assert_error(await api.get(path), 404, str(missing))
    assert_error(await api.post(f"/pipelines/{missing}/stages", {"name": "s"}), 404)
