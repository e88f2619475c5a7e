"""Every input the store or the workflows cannot take is a 400 in the envelope naming the field,
on SQLite and PostgreSQL alike, and nothing is written: integers past their column or past a
representable deadline, booleans for numbers, NaN and Infinity, NUL characters in bodies and
query filters, JSON nested too deep, offsets past the store's range. Also the OpenAPI's
enums and answers, the 405's Allow header, and page links that ignore a forged Host."""

from __future__ import annotations

import uuid

import pytest

from domain.bounds import (
    INT32_MAX,
    MAX_BODY_DEPTH,
    MAX_JSON_DEPTH,
    MAX_PIPELINE_TIMEOUT_SECONDS,
    MAX_STAGE_TIMEOUT_SECONDS,
)
from store.definitions.pipelines import Pipeline
from tests.api.conftest import BASE, Api, api_for, settings_for
from tests.api.test_definitions import INSTALL, count_rows
from tests.api.test_envelope_auth import assert_error


def field_of(body: dict) -> str | None:
    return body["content"]["errors"][0]["field"]


async def pipeline_with_stage(api: Api) -> tuple[str, str, str]:
    """(pipeline id, stage id, operation list id) of a pipeline with one INSTALL operation."""
    pipeline = await api.ok("POST", "/pipelines", {"name": "p", "stages": [
        {"name": "s", "operations": [INSTALL]}]}, 201)
    stage = pipeline["stages"][0]
    return pipeline["id"], stage["id"], stage["operation_list_ids"][0]


def nested(depth: int) -> dict:
    """A JSON object `depth` levels deep ({"a": {"a": ... {}}})."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# ---- integers: the column's range, and a deadline that stays a date --------------------------


@pytest.mark.parametrize("field, value", [
    ("timeout_seconds", 10**12),  # the run that failed its workflow task for ever
    ("timeout_seconds", MAX_PIPELINE_TIMEOUT_SECONDS + 1),
    ("timeout_seconds", 2**63),
])
async def test_a_pipeline_timeout_past_three_years_is_400(any_api: Api, field, value):
    body = assert_error(await any_api.post("/pipelines", {"name": "p", field: value}), 400,
                        field)
    assert field_of(body) == field
    assert count_rows(any_api, Pipeline) == 0
    pipeline_id, _, _ = await pipeline_with_stage(any_api)
    body = assert_error(await any_api.put(f"/pipelines/{pipeline_id}", {field: value}), 400)
    assert field_of(body) == field
    ok = await any_api.ok("PUT", f"/pipelines/{pipeline_id}",
                          {field: MAX_PIPELINE_TIMEOUT_SECONDS})
    assert ok["timeout_seconds"] == MAX_PIPELINE_TIMEOUT_SECONDS


async def test_a_stage_timeout_past_a_year_and_an_order_past_int32_are_400(any_api: Api):
    pipeline_id, stage_id, _ = await pipeline_with_stage(any_api)
    stages = f"/pipelines/{pipeline_id}/stages"
    for body_in, field in [
        ({"name": "t", "timeout_seconds": MAX_STAGE_TIMEOUT_SECONDS + 1}, "timeout_seconds"),
        ({"name": "t", "order": INT32_MAX + 1}, "order"),
        ({"name": "t", "order": 2**63}, "order"),
    ]:
        assert field_of(assert_error(await any_api.post(stages, body_in), 400)) == field
        assert field_of(assert_error(await any_api.put(f"{stages}/{stage_id}", body_in),
                                     400)) == field
    nested_stage = {"name": "p", "stages": [{"name": "s", "order": INT32_MAX + 1}]}
    body = assert_error(await any_api.post("/pipelines", nested_stage), 400)
    assert field_of(body) == "stages.0.order"
    made = await any_api.ok("POST", stages, {"name": "edge", "order": INT32_MAX,
                                             "timeout_seconds": MAX_STAGE_TIMEOUT_SECONDS}, 201)
    assert made["order"] == INT32_MAX  # the column holds it, on both databases
    assert (await any_api.ok("GET", f"{stages}/{made['id']}"))["order"] == INT32_MAX


async def test_no_default_order_after_the_largest_one(any_api: Api):
    """A stage or operation added without an order goes after the last one: past INT32_MAX
    that is a 400 asking for an order, not an overflow of the column (found by the fuzzer)."""
    pipeline_id, _, list_id = await pipeline_with_stage(any_api)
    stages = f"/pipelines/{pipeline_id}/stages"
    await any_api.ok("POST", stages, {"name": "last", "order": INT32_MAX}, 201)
    body = assert_error(await any_api.post(stages, {"name": "after"}), 400, "give this one")
    assert field_of(body) == "order"
    assert (await any_api.ok("POST", stages, {"name": "before", "order": 5}, 201))["order"] == 5
    ops = f"/operationlists/{list_id}/operations"
    await any_api.ok("POST", ops, {**INSTALL, "order": INT32_MAX}, 201)
    body = assert_error(await any_api.post(ops, INSTALL), 400, "give this one")
    assert field_of(body) == "order"


async def test_an_operation_order_past_int32_is_400(any_api: Api):
    _, _, list_id = await pipeline_with_stage(any_api)
    ops = f"/operationlists/{list_id}/operations"
    body = assert_error(await any_api.post(ops, {**INSTALL, "order": INT32_MAX + 1}), 400)
    assert field_of(body) == "order"
    made = await any_api.ok("POST", ops, {**INSTALL, "order": INT32_MAX}, 201)
    body = assert_error(await any_api.put(f"{ops}/{made['id']}", {"order": -1}), 400)
    assert field_of(body) == "order"


async def test_a_rollout_count_past_int32_is_400(any_api: Api):
    pipeline_id, _, _ = await pipeline_with_stage(any_api)
    rollout = {"abort_criteria": [{"failure_type": "FAILED", "threshold_percentage": 10,
                                   "min_number_of_executed_things": INT32_MAX + 1}]}
    body = assert_error(await any_api.post(f"/pipelines/{pipeline_id}/stages",
                                           {"name": "r", "rollout": rollout}), 400)
    assert field_of(body) == "rollout.abort_criteria.0.min_number_of_executed_things"


async def test_a_device_event_sequence_past_int32_or_an_empty_status_is_400(any_api: Api):
    events = f"/commands/{uuid.uuid4()}/events"
    for body_in, field in [({"status": "success", "sequence": INT32_MAX + 1}, "sequence"),
                           ({"status": "success", "sequence": 2**64}, "sequence"),
                           ({"status": "success", "sequence": True}, "sequence"),
                           ({"status": ""}, "status"),
                           ({"status": "   "}, "status")]:
        body = assert_error(await any_api.post(events, body_in), 400)
        assert field_of(body) == field, body


async def test_an_offset_past_the_store_range_is_400_on_every_list(any_api: Api):
    pipeline_id, stage_id, _ = await pipeline_with_stage(any_api)
    for path in ["/devices", "/runs", "/pipelines", f"/pipelines/{pipeline_id}/stages",
                 f"/stages/{stage_id}/operationlists", "/devicegroups"]:
        for offset in (2**31, 2**63, 10**30):
            body = assert_error(await any_api.get(f"{path}?offset={offset}"), 400, "offset")
            assert field_of(body) == "offset"
        page = await any_api.ok("GET", f"{path}?offset={INT32_MAX}")
        assert page["results"] == []


async def test_a_run_number_filter_past_int32_is_400(any_api: Api):
    # Found by the fuzz on PostgreSQL: the integer column refused the value with a 500.
    pipeline_id, _, _ = await pipeline_with_stage(any_api)
    runs = f"/pipelines/{pipeline_id}/runs"
    for number in (2**31, 96307077971):
        body = assert_error(await any_api.get(f"{runs}?run_number={number}"), 400, "run_number")
        assert field_of(body) == "run_number"
    assert (await any_api.ok("GET", f"{runs}?run_number={INT32_MAX}"))["results"] == []


# ---- strict types and finite numbers -----------------------------------------------------------


@pytest.mark.parametrize("body_in, field", [
    ({"name": "p", "timeout_seconds": True}, "timeout_seconds"),
    ({"name": "p", "timeout_seconds": 60.0}, "timeout_seconds"),
    ({"name": "p", "timeout_seconds": "60"}, "timeout_seconds"),
    ({"name": "p", "stages": [{"name": "s", "order": True}]}, "stages.0.order"),
    ({"name": "p", "stages": [{"name": "s", "rollout": {"maximum_per_minute": True}}]},
     "stages.0.rollout.maximum_per_minute"),
    ({"name": "p", "stages": [{"name": "s", "rollout": {
        "success_threshold_percentage": False}}]},
     "stages.0.rollout.success_threshold_percentage"),
])
async def test_a_boolean_or_text_for_a_number_is_400(any_api: Api, body_in, field):
    body = assert_error(await any_api.post("/pipelines", body_in), 400)
    assert field_of(body) == field
    assert count_rows(any_api, Pipeline) == 0


@pytest.mark.parametrize("token, where", [
    ("NaN", "success_threshold_percentage"), ("Infinity", "success_threshold_percentage"),
    ("-Infinity", "success_threshold_percentage"), ("1e999", "success_threshold_percentage"),
    ("NaN", "args.x"),
])
async def test_nan_and_infinity_are_400_wherever_they_are(any_api: Api, token, where):
    if where == "args.x":
        raw = ('{"name": "p", "stages": [{"name": "s", "operations": [{"operation_type": '
               '"REBOOT", "args": {"x": TOKEN}}]}]}').replace("TOKEN", token)
        expected = "stages.0.operations.0.args.x"
    else:
        raw = ('{"name": "p", "stages": [{"name": "s", "rollout": '
               '{"success_threshold_percentage": TOKEN}}]}').replace("TOKEN", token)
        expected = "stages.0.rollout.success_threshold_percentage"
    response = await any_api.http.post(BASE + "/pipelines", content=raw.encode(),
                                       headers={"content-type": "application/json"})
    body = assert_error(response, 400, "finite")
    assert field_of(body) == expected
    assert count_rows(any_api, Pipeline) == 0


# ---- NUL characters ----------------------------------------------------------------------------


async def test_nul_in_any_body_field_is_400(any_api: Api):
    pipeline_id, stage_id, list_id = await pipeline_with_stage(any_api)
    cases = [
        ("POST", "/devices", {"name": "a\x00b"}, "name"),
        ("POST", "/devices", {"name": "d", "attributes": {"k": "v\x00"}}, "attributes.k"),
        ("POST", "/devices", {"name": "d", "attributes": {"k\x00": "v"}}, "attributes"),
        ("POST", "/pipelines", {"name": "p", "description": "\x00"}, "description"),
        ("POST", "/pipelines", {"name": "p", "stages": [{"name": "s\x00"}]}, "stages.0.name"),
        ("PUT", f"/pipelines/{pipeline_id}/stages/{stage_id}", {"name": "\x00"}, "name"),
        ("POST", f"/operationlists/{list_id}/operations",
         {"operation_type": "INSTALL", "args": {"package_name": "a\x00", "app_version": "1"}},
         "args.package_name"),
        ("POST", f"/pipelines/{pipeline_id}/targetlists", {"name": "\x00"}, "name"),
        ("POST", f"/commands/{uuid.uuid4()}/events", {"status": "success", "reason": "\x00"},
         "reason"),
    ]
    for method, path, body_in, field in cases:
        response = await any_api.http.request(method, BASE + path, json=body_in)
        body = assert_error(response, 400, "NUL")
        assert field_of(body) == field, (path, body)
    assert (await any_api.ok("GET", "/devices"))["count"] == 0


@pytest.mark.parametrize("query", [
    "/devices?name=%00", "/pipelines?name=a%00b", "/runs?pipeline_name=%00",
    "/runs?status=%00", "/runs?ordering=%00", "/devices?na%00me=x",
])
async def test_nul_in_a_query_filter_is_400(any_api: Api, query):
    body = assert_error(await any_api.get(query), 400, "NUL")
    name = query.split("?")[1].split("=")[0].replace("%00", "\\u0000")
    assert field_of(body) == name


# ---- depth -------------------------------------------------------------------------------------


async def test_operation_args_nested_past_the_limit_are_400(any_api: Api):
    _, _, list_id = await pipeline_with_stage(any_api)
    ops = f"/operationlists/{list_id}/operations"
    made = await any_api.ok("POST", ops, {"operation_type": "UPDATE_DEVICE_CONFIG",
                                          "args": {"config": nested(MAX_JSON_DEPTH - 1)}}, 201)
    assert made["args"]["config"]
    too_deep = {"operation_type": "UPDATE_DEVICE_CONFIG",
                "args": {"config": nested(MAX_JSON_DEPTH)}}
    body = assert_error(await any_api.post(ops, too_deep), 400, "nested deeper")
    assert field_of(body) == "args"
    body = assert_error(await any_api.put(f"{ops}/{made['id']}", {"args": too_deep["args"]}),
                        400, "nested deeper")
    assert field_of(body) == "args"
    whole = {"name": "p", "stages": [{"name": "s", "operations": [too_deep]}]}
    body = assert_error(await any_api.post("/pipelines", whole), 400, "nested deeper")
    assert field_of(body) == "stages.0.operations.0.args"


async def test_a_body_nested_past_any_limit_is_400_not_a_crash(any_api: Api):
    for depth in (MAX_BODY_DEPTH + 1, 100_000):
        raw = b'{"name": "d", "attributes": ' + b"[" * depth + b"]" * depth + b"}"
        response = await any_api.http.post(BASE + "/devices", content=raw,
                                           headers={"content-type": "application/json"})
        body = assert_error(response, 400, "nested deeper")
        assert (field_of(body) or "").startswith(("attributes", "body"))
    event = {"status": "success", "output": nested(MAX_JSON_DEPTH + 1)}
    body = assert_error(await any_api.post(f"/commands/{uuid.uuid4()}/events", event), 400,
                        "nested deeper")
    assert field_of(body) == "output"


# ---- the OpenAPI, 405 and page links -----------------------------------------------------------


async def test_the_openapi_states_the_bounds_enums_and_answers(api: Api):
    spec = (await api.http.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]

    def integer(schema: dict) -> dict:
        return next(s for s in schema.get("anyOf", [schema]) if s.get("type") == "integer")

    assert integer(schemas["PipelineCreate"]["properties"]["timeout_seconds"])["maximum"] == (
        MAX_PIPELINE_TIMEOUT_SECONDS)
    assert integer(schemas["StageCreate"]["properties"]["timeout_seconds"])["maximum"] == (
        MAX_STAGE_TIMEOUT_SECONDS)
    assert integer(schemas["StageCreate"]["properties"]["order"])["maximum"] == INT32_MAX
    assert integer(schemas["DeviceEventIn"]["properties"]["sequence"])["maximum"] == INT32_MAX
    assert schemas["StagePublic"]["properties"]["trigger"]["enum"] == ["manual", "automatic"]
    assert schemas["TargetListPublic"]["properties"]["target_list_type"]["enum"] == [
        "DEVICES", "GROUPS"]
    assert "timeout" in schemas["PipelineRunPublic"]["properties"]["status"]["enum"]
    assert schemas["PipelineRunAction"]["properties"]["status"]["enum"] == [
        "cancelled", "waiting", "running"]
    runs = spec["paths"][BASE + "/runs"]["get"]
    params = {p["name"]: p["schema"] for p in runs["parameters"]}
    assert "-run_number" in params["ordering"]["enum"] and "waiting" in params["status"]["enum"]
    assert params["offset"]["maximum"] == INT32_MAX
    for template, path in spec["paths"].items():
        # Reference 002's paths answer bad input with its 422, never a 400.
        expected = ({"401", "404", "405", "413", "422"} if template.startswith("/api/v1/")
                    else {"400", "401", "404", "405", "413"})
        for operation in path.values():
            assert expected <= set(operation["responses"]), template
    action = spec["paths"][BASE + "/pipelines/{pipeline_id}/runs/{pipeline_run_id}"]["put"]
    assert {"200", "202", "503"} <= set(action["responses"])
    assert "503" in spec["paths"][BASE + "/commands/{command_id}/events"]["post"]["responses"]


async def test_a_405_lists_every_method_of_the_path(api: Api):
    response = await api.http.patch(BASE + "/devices")
    body = assert_error(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert body["content"]["allowed"] == ["GET", "HEAD", "POST"]
    one = await api.http.post(BASE + f"/devices/{uuid.uuid4()}", json={})
    assert one.status_code == 405 and one.headers["allow"] == "DELETE, GET, HEAD, PUT"


async def test_page_links_never_use_a_forged_host(any_api: Api):
    for i in range(3):
        await any_api.ok("POST", "/devices", {"name": f"d{i}"}, 201)
    forged = {"host": "evil.example", "x-forwarded-host": "evil.example"}
    page = (await any_api.get("/devices?limit=1&offset=1", headers=forged)).json()["content"]
    assert page["next"] == "/api/pipelines/v0/devices?limit=1&offset=2"
    assert page["previous"] == "/api/pipelines/v0/devices?limit=1&offset=0"
    configured = settings_for(public_base_url="https://fleet.example.com/")
    async with api_for(any_api.engine, enterprise="other", settings=configured) as other:
        await other.ok("POST", "/devices", {"name": "x"}, 201)
        await other.ok("POST", "/devices", {"name": "y"}, 201)
        page = (await other.get("/devices?limit=1&name=", headers=forged)).json()["content"]
    assert page["next"] == (
        "https://fleet.example.com/api/pipelines/v0/devices?name=&limit=1&offset=1")


def test_a_public_base_url_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="FLEETPIPE_PUBLIC_BASE_URL"):
        settings_for(public_base_url="fleet.example.com")
