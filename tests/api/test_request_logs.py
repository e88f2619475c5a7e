"""Every API request: its request id (given or made, echoed back), one log line and its metrics
by route template; never an API key in any line, whatever the request carried (a good key, a
wrong one, either scheme) or a careless message said."""

from __future__ import annotations

import io
import json
import logging

from prometheus_client import REGISTRY

from tests.api.conftest import BASE, Api


async def test_no_api_key_in_any_line(api: Api, every_line: io.StringIO) -> None:
    wrong = "fp_" + "x" * 43
    for headers in ({}, {"Authorization": f"Bearer {api.key}"},
                    {"Authorization": f"Token {wrong}"}, {"X-Request-ID": "req-7"}):
        await api.http.get(f"{BASE}/pipelines", headers=headers)
    async with api.make_client(scheme="Bearer") as client:
        response = await client.get(f"{BASE}/no-such-path", headers={"X-Request-ID": "req-8"})
        assert response.headers["x-request-id"] == "req-8"
    # A careless message is masked too.
    logging.getLogger("fleetpipe.test").error("auth failed for Authorization: Token %s", api.key)
    logging.getLogger("fleetpipe.test").error("raw key %s", wrong)

    text = every_line.getvalue()
    assert api.key not in text and wrong not in text
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [line for line in lines if line["logger"] == "fleetpipe.api.requests"]
    assert len(requests) == 5
    assert {line["route"] for line in requests} == {f"{BASE}/pipelines", "unmatched"}
    tagged = {line["request_id"]: line for line in requests}
    assert tagged["req-7"]["status"] == 200 and tagged["req-8"]["status"] == 404
    assert all(len(line["request_id"]) == 32 for line in requests  # made up when not given
               if line["request_id"] not in ("req-7", "req-8"))
    assert "Token [redacted]" in text and "raw key [redacted]" in text


async def test_a_request_id_that_is_not_a_plain_token_is_replaced(api: Api) -> None:
    response = await api.http.get(f"{BASE}/pipelines", headers={"X-Request-ID": "a b\tc"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] != "a b\tc"
    assert len(response.headers["x-request-id"]) == 32


async def test_metrics_count_by_route_template_whatever_the_alias(api: Api) -> None:
    route = f"{BASE}/pipelines/{{pipeline_id}}"
    labels = {"method": "GET", "route": route, "status": "404"}
    before = REGISTRY.get_sample_value("fleetpipe_api_requests_total", labels) or 0.0
    missing = "00000000-0000-0000-0000-000000000000"
    for path in (f"{BASE}/pipelines/{missing}", f"/v0/pipelines/{missing}/",
                 f"/pipelines/v0/pipelines/{missing}"):
        assert (await api.http.get(path)).status_code == 404
    assert REGISTRY.get_sample_value("fleetpipe_api_requests_total", labels) == before + 3
    scraped = await api.http.get("/metrics")  # no key needed, no envelope
    async with api.make_client(token=None) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert f'route="{route}",status="404"' in scraped.text
    assert missing not in scraped.text
