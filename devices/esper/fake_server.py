"""A fake Esper tenant for tests and trials: the Commands V2 paths and JSON that Esper's SDK
(`esperclient`) calls and parses, with devices that walk their commands through Esper's states
over time, and faults to inject (latency, 429, 5xx, held or lost answers).

Run it as its own process on loopback:

    python -m devices.esper.fake_server --api-key KEY --enterprise-id ENT [--port N]

It prints `fake esper listening on http://127.0.0.1:PORT/api` (the SDK's host) once it
accepts connections. A device's behaviour comes from its Esper id: `fail-...` ends
`Command Failure`, `offline-...` stays `Command Queued`, anything else succeeds; each state
lasts --step-s seconds. The control endpoints under /_fake (no auth) show what it received
and set faults:

    GET  /_fake/requests   every API request: at (epoch), method, path, kind, status
    GET  /_fake/commands   every command request created
    POST /_fake/faults     {"latency_s", "fail": [statuses], "fail_kind", "hold_creates",
                            "hold_s"}: answer the next requests of a kind (create, status,
                            list, or any) with these statuses; record the next N creates but
                            hold their answers until /_fake/release or hold_s (a lost answer
                            when that outlasts the client's timeout)
    POST /_fake/release    answer the held creates now
    POST /_fake/config     {"api_key", "step_s"} (e.g. revoke the key mid-run)
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API = "/api/v0/enterprise/{enterprise_id}"
COMMANDS = ("REBOOT", "UPDATE_HEARTBEAT", "UPDATE_DEVICE_CONFIG", "INSTALL", "UNINSTALL",
            "SET_NEW_POLICY", "ADD_WIFI_AP", "REMOVE_WIFI_AP", "SET_KIOSK_APP",
            "SET_DEVICE_LOCKDOWN_STATE", "SET_APP_STATE", "WIPE", "UPDATE_LATEST_DPC")
WALK = ("Command Queued", "Command Initiated", "Command Acknowledged", "Command In Progress")
FAILURE_REASON = "the fake device failed the command"
PAGE = 20  # Esper's default page size


@dataclass
class FakeCommand:
    id: str
    body: dict[str, Any]
    device: str
    created: float  # epoch seconds

    def state(self, step_s: float, now: float) -> tuple[str, str]:
        """(state, reason) of its device now: it moves one state every step_s."""
        steps = int((now - self.created) / step_s) if step_s > 0 else len(WALK)
        if self.device.startswith("offline-"):
            return WALK[0], ""
        if steps < len(WALK):
            return WALK[steps], ""
        if self.device.startswith("fail-"):
            return "Command Failure", FAILURE_REASON
        return "Command Success", ""

    def as_request(self, step_s: float, now: float) -> dict[str, Any]:
        state, _ = self.state(step_s, now)
        return {**self.body, "id": self.id, "created_on": _iso(self.created),
                "status": [{"state": state, "total": 1}]}

    def as_status(self, step_s: float, now: float) -> dict[str, Any]:
        state, reason = self.state(step_s, now)
        return {"id": f"{self.id}:{self.device}", "request": self.id, "device": self.device,
                "state": state, "reason": reason, "created_on": _iso(self.created),
                "updated_on": _iso(now)}


@dataclass
class Faults:
    latency_s: float = 0.0
    fail: list[int] = field(default_factory=list)
    fail_kind: str = "any"
    hold_creates: int = 0
    hold_s: float = 3600.0


class FakeEsper:
    def __init__(self, api_key: str, enterprise_id: str, step_s: float) -> None:
        self.api_key = api_key
        self.enterprise_id = enterprise_id
        self.step_s = step_s
        self.commands: dict[str, FakeCommand] = {}
        self.requests: list[dict[str, Any]] = []
        self.faults = Faults()
        self.release = asyncio.Event()

    # ---- the Commands V2 API -------------------------------------------------------------
    async def create(self, request: Request) -> JSONResponse:
        refused = await self._gate(request, "create")
        if refused:
            return refused
        body = await request.json()
        problem = _invalid(body)
        if problem:
            return self._answer(request, "create", 400, {"errors": [problem], "message": problem,
                                                         "status": 400})
        command = FakeCommand(id=str(uuid.uuid4()), device=body["devices"][0],
                              created=time.time(),
                              body={"enterprise": self.enterprise_id, "groups": [],
                                    "schedule": "IMMEDIATE", "schedule_args": None,
                                    "issued_by": "fake-user", "device_type": "active", **body})
        self.commands[command.id] = command
        if self.faults.hold_creates:
            self.faults.hold_creates -= 1
            try:
                await asyncio.wait_for(self.release.wait(), self.faults.hold_s)
            except TimeoutError:
                pass
        return self._answer(request, "create", 201,
                            command.as_request(self.step_s, time.time()))

    async def list_requests(self, request: Request) -> JSONResponse:
        refused = await self._gate(request, "list")
        if refused:
            return refused
        q = request.query_params
        devices = set(filter(None, (q.get("devices") or "").split(",")))
        found = [c for c in self.commands.values()
                 if (not devices or c.device in devices)
                 and (not q.get("command") or c.body.get("command") == q["command"])
                 and (not q.get("command_type") or c.body.get("command_type") == q["command_type"])]
        found.sort(key=lambda c: c.created)
        return self._answer(request, "list", 200, self._page(
            request, [c.as_request(self.step_s, time.time()) for c in found]))

    async def status(self, request: Request) -> JSONResponse:
        refused = await self._gate(request, "status")
        if refused:
            return refused
        command = self.commands.get(request.path_params["request_id"])
        if command is None:
            return self._answer(request, "status", 404, {"errors": [], "status": 404,
                                                         "message": "Not found."})
        rows = [command.as_status(self.step_s, time.time())]
        device, state = request.query_params.get("device"), request.query_params.get("state")
        rows = [r for r in rows if (not device or r["device"] == device)
                and (not state or r["state"] == state)]
        return self._answer(request, "status", 200, self._page(request, rows))

    # ---- control ---------------------------------------------------------------------------
    async def show_requests(self, request: Request) -> JSONResponse:
        return JSONResponse(self.requests)

    async def show_commands(self, request: Request) -> JSONResponse:
        now = time.time()
        return JSONResponse([c.as_request(self.step_s, now) for c in self.commands.values()])

    async def set_faults(self, request: Request) -> JSONResponse:
        body = await request.json()
        for name, value in body.items():
            if not hasattr(self.faults, name):
                return JSONResponse({"message": f"unknown fault {name!r}"}, 400)
            setattr(self.faults, name, value)
        if body.get("hold_creates"):
            self.release = asyncio.Event()
        return JSONResponse(vars(self.faults))

    async def release_held(self, request: Request) -> JSONResponse:
        self.release.set()
        return JSONResponse({"released": True})

    async def set_config(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.api_key = body.get("api_key", self.api_key)
        self.step_s = float(body.get("step_s", self.step_s))
        return JSONResponse({"api_key_set": bool(self.api_key), "step_s": self.step_s})

    # ---- internals ---------------------------------------------------------------------------
    async def _gate(self, request: Request, kind: str) -> JSONResponse | None:
        """Latency, auth, the enterprise and injected failures, in that order."""
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._answer(request, kind, 401, {
                "errors": [], "status": 401,
                "message": "Authentication credentials were not provided or are invalid."})
        if request.path_params.get("enterprise_id") != self.enterprise_id:
            return self._answer(request, kind, 404, {"errors": [], "status": 404,
                                                     "message": "Enterprise not found."})
        if self.faults.fail and self.faults.fail_kind in ("any", kind):
            status = int(self.faults.fail.pop(0))
            headers = {"Retry-After": "1"} if status == 429 else None
            message = "Rate limit exceeded" if status == 429 else "Internal server error"
            return self._answer(request, kind, status, {"errors": [], "status": status,
                                                        "message": message}, headers)
        return None

    def _page(self, request: Request, rows: list[dict[str, Any]]) -> dict[str, Any]:
        limit = int(request.query_params.get("limit") or PAGE)
        offset = int(request.query_params.get("offset") or 0)
        nxt = None
        if offset + limit < len(rows):
            nxt = str(request.url.include_query_params(limit=limit, offset=offset + limit))
        return {"count": len(rows), "next": nxt, "previous": None,
                "results": rows[offset:offset + limit]}

    def _answer(self, request: Request, kind: str, status: int, body: Any,
                headers: dict[str, str] | None = None) -> JSONResponse:
        self._log(request, kind, status)
        return JSONResponse(body, status, headers=headers)

    def _log(self, request: Request, kind: str, status: int) -> None:
        self.requests.append({"at": time.time(), "method": request.method,
                              "path": request.url.path, "query": str(request.url.query),
                              "kind": kind, "status": status})


def _invalid(body: Any) -> str:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if body.get("command_type") not in ("DEVICE", "GROUP", "DYNAMIC"):
        return "command_type must be one of DEVICE, GROUP, DYNAMIC"
    if body.get("command_type") != "DEVICE":
        return "this fake serves command_type DEVICE only"
    devices = body.get("devices")
    if not isinstance(devices, list) or len(devices) != 1 or not isinstance(devices[0], str):
        return "devices must list exactly one device id (the fake's limit)"
    if body.get("command") not in COMMANDS:
        return f"command must be one of {', '.join(COMMANDS)}"
    if body.get("device_type", "active") not in ("active", "inactive", "all"):
        return "device_type must be one of active, inactive, all"
    args = body.get("command_args") or {}
    if body["command"] in ("INSTALL", "UNINSTALL") and not args.get("package_name"):
        return f"{body['command']} requires package_name in command_args"
    return ""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def build_app(fake: FakeEsper) -> Starlette:
    return Starlette(routes=[
        Route(f"{API}/command/", fake.create, methods=["POST"]),
        Route(f"{API}/command/", fake.list_requests, methods=["GET"]),
        Route(f"{API}/command/{{request_id}}/status/", fake.status, methods=["GET"]),
        Route("/_fake/requests", fake.show_requests, methods=["GET"]),
        Route("/_fake/commands", fake.show_commands, methods=["GET"]),
        Route("/_fake/faults", fake.set_faults, methods=["POST"]),
        Route("/_fake/release", fake.release_held, methods=["POST"]),
        Route("/_fake/config", fake.set_config, methods=["POST"]),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--enterprise-id", required=True)
    parser.add_argument("--step-s", type=float, default=0.2,
                        help="how long a device stays in each state")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)  # connections wait in the backlog until the server takes them
    fake = FakeEsper(args.api_key, args.enterprise_id, args.step_s)
    server = uvicorn.Server(uvicorn.Config(build_app(fake), log_level="warning",
                                           access_log=False))
    port = sock.getsockname()[1]
    print(f"fake esper listening on http://{args.host}:{port}/api", flush=True)  # noqa: T201
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
