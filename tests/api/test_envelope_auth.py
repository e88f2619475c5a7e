"""The envelope on every response, the base paths and their aliases, auth, and bad input that
is not about any one resource (malformed JSON, size limit, unknown routes, crashes)."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from tests.api.conftest import BASE, Api, GuardedClient, settings_for


def assert_error(response: httpx.Response, code: int, *words: str) -> dict:
    body = response.json()
    assert response.status_code == code, body
    assert body["code"] == code
    assert set(body) == {"code", "message", "content"}
    assert "Traceback" not in response.text
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body


@pytest.mark.parametrize("path", [
    "/api/pipelines/v0/devices", "/api/pipelines/v0/devices/",
    "/v0/devices", "/v0/devices/", "/pipelines/v0/devices", "/pipelines/v0/devices/",
])
async def test_every_base_and_trailing_slash_reaches_the_route_without_redirect(api: Api, path):
    await api.ok("POST", "/devices", {"name": "d1"}, 201)
    response = await api.http.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 200 and body["message"] == "OK"
    assert body["content"]["count"] == 1
    assert body["content"]["results"][0]["name"] == "d1"


async def test_reference_literal_paths_work(api: Api):
    # 003 writes /pipelines/v0/pipelines/{id}/runs; 001 and 000 write /v0/runs/..., /v0/stageruns
    pipeline = await api.ok("POST", "/pipelines", {"name": "p"}, 201)
    response = await api.http.get(f"/pipelines/v0/pipelines/{pipeline['id']}/runs")
    assert response.status_code == 200 and response.json()["content"]["count"] == 0
    response = await api.http.get("/v0/runs/")
    assert response.status_code == 200 and response.json()["content"]["results"] == []


async def test_unknown_route_and_wrong_method_are_envelopes(api: Api):
    assert_error(await api.http.get("/nothing/here"), 404, "/nothing/here")
    assert_error(await api.http.get(BASE + "/runs/x/y/z"), 404)
    assert_error(await api.http.delete("/v0/runs"), 405, "DELETE", "/v0/runs")
    assert_error(await api.http.patch(BASE + "/pipelines"), 405)


async def test_missing_unknown_and_malformed_keys_are_401(api: Api):
    for client in (api.make_client(None), api.make_client("fp_not_a_key"),
                   api.make_client(api.key, scheme="Basic")):
        async with client:
            body = assert_error(await client.get("/v0/runs"), 401)
            assert body["content"]["errors"][0]["field"] == "Authorization"
    async with api.make_client(None) as anonymous:
        response = await anonymous.post("/v0/devices", json={"bad": True})
        assert_error(response, 401)  # auth is checked before the body
        assert response.headers["www-authenticate"] == "Token"


async def test_token_and_bearer_are_both_accepted(api: Api):
    for scheme in ("Token", "Bearer", "token", "bearer"):
        async with api.make_client(api.key, scheme=scheme) as client:
            assert (await client.get("/v0/runs")).status_code == 200


async def test_malformed_json_wrong_types_and_missing_fields_name_the_field(api: Api):
    body = assert_error(await api.http.post(BASE + "/devices", content=b'{"name": ',
                                            headers={"content-type": "application/json"}),
                        400, "malformed JSON")
    assert body["content"]["errors"][0]["field"] == "body"
    body = assert_error(await api.post("/devices", {"name": 12}), 400, "name")
    assert body["content"]["errors"][0]["field"] == "name"
    assert_error(await api.post("/devices", {}), 400, "name", "required")
    assert_error(await api.post("/devices", ["not", "an", "object"]), 400)
    assert_error(await api.http.post(BASE + "/devices", content=b"name=x",
                                     headers={"content-type": "text/plain"}), 400,
                 "Content-Type: application/json")
    assert_error(await api.post("/devices", {"name": "x", "attributes": {"a": [1]}}), 400,
                 "attributes.a")


async def test_a_body_without_content_type_is_read_as_json(api: Api):
    response = await api.http.post(BASE + "/devices", content=b'{"name": "raw"}')
    assert response.status_code == 201, response.text


async def test_malformed_ids_and_paging_values_are_400(api: Api):
    assert_error(await api.get("/devices/not-a-uuid"), 400, "device_id")
    assert_error(await api.get("/pipelines/123/runs"), 400, "pipeline_id")
    assert_error(await api.get("/devices?limit=0"), 400, "limit")
    assert_error(await api.get("/devices?limit=1001"), 400, "limit")
    assert_error(await api.get("/devices?limit=abc"), 400, "limit")
    assert_error(await api.get("/devices?offset=-1"), 400, "offset")


async def test_body_over_the_limit_is_413_announced_or_streamed(sqlite_engine):
    from tests.api.conftest import api_for

    async with api_for(sqlite_engine, settings=settings_for(max_request_bytes=1000)) as api:
        big = {"name": "x", "attributes": {"k": "v" * 2000}}
        assert_error(await api.post("/devices", big), 413, "1000 bytes")

        async def chunks():
            for _ in range(5):
                yield b" " * 400

        response = await api.http.post(BASE + "/devices", content=chunks(),
                                       headers={"content-type": "application/json"})
        assert_error(response, 413)
        assert (await api.post("/devices", {"name": "small"})).status_code == 201


async def test_unexpected_errors_are_a_generic_500_without_stack_trace(sqlite_engine):
    app = create_app(settings_for(), engine=sqlite_engine)

    @app.get(BASE + "/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    async with GuardedClient(transport=httpx.ASGITransport(app=app),
                           base_url="http://testserver") as client:
        response = await client.get("/v0/boom")
    assert_error(response, 500, "internal server error")
    assert "secret" not in response.text


async def test_openapi_and_docs_describe_every_route(api: Api):
    spec = (await api.http.get("/openapi.json")).json()
    operations = [(template, op) for template, path in spec["paths"].items()
                  for op in path.values()]
    assert len(operations) >= 60
    for template, operation in operations:
        assert operation["summary"] and operation["operationId"]
        # Only reference 002's paths answer bad input with a 422 (its own shape).
        assert ("422" in operation["responses"]) == template.startswith("/api/v1/"), template
        assert "401" in operation["responses"]
    for path in ["/runs", "/pipelines/{pipeline_id}/runs/{pipeline_run_id}",
                 "/runs/{pipeline_run_id}/stageruns/{stage_run_id}",
                 "/stageruns/{stage_run_id}/operations/{stage_run_operation_id}",
                 "/stageruns/{stage_run_id}/targetruns/{target_run_id}/command/{command_id}"]:
        assert BASE + path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert set(schemas["PipelineRunPublicEnvelope"]["properties"]) == {"code", "message",
                                                                        "content"}
    assert {"count", "next", "previous", "results"} <= set(
        schemas["TargetRunPublicList"]["properties"])
    assert "SCAPIAuthToken" in spec["components"]["securitySchemes"]
    docs = await api.http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_another_enterprises_objects_are_404(api: Api, other_api: Api):
    device = await api.ok("POST", "/devices", {"name": "mine"}, 201)
    pipeline = await api.ok("POST", "/pipelines", {"name": "mine"}, 201)
    assert_error(await other_api.get(f"/devices/{device['id']}"), 404)
    assert_error(await other_api.put(f"/devices/{device['id']}", {"name": "theirs"}), 404)
    assert_error(await other_api.delete(f"/pipelines/{pipeline['id']}"), 404)
    assert_error(await other_api.get(f"/pipelines/{pipeline['id']}/runs"), 404)
    assert (await other_api.ok("GET", "/devices"))["count"] == 0
    # and their ids in a body are unknown ids, not a way in
    assert_error(await other_api.post("/devicegroups", {"name": "g", "device_ids": [device["id"]]}),
                 400, "device_ids")
    assert (await api.ok("GET", f"/devices/{device['id']}"))["name"] == "mine"
