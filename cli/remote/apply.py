"""`fleetpipe apply -f FILE`: make the API's pipeline of that name what the file says.

A new name is created whole in one request (the API checks it all before writing). An existing
pipeline is read back, compared field by field with the file, and only the differences are sent
through the definition routes (stages, their target lists and operation lists). Everything the
file names (devices, groups, operation types and arguments, rollout controls) is resolved and
checked before the first write, so a bad file changes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cli.remote.client import Api, CliError
from cli.remote.resolve import pipelines_named
from cli.remote.spec import LoadedSpec, SpecError
from domain.schemas import DEFAULT_PIPELINE_TIMEOUT_SECONDS, DEFAULT_STAGE_TIMEOUT_SECONDS

STAGE_FIELDS = ("description", "order", "trigger", "timeout_seconds", "rollout")
KINDS = {"DEVICES": ("targets", "device_id"), "GROUPS": ("devicegroups", "device_group_id")}


@dataclass
class StageState:
    """A stage as comparable values: the file's (ids resolved) or the API's."""

    name: str
    description: str
    order: int
    trigger: str
    timeout_seconds: int
    rollout: dict[str, Any]
    members: dict[str, set[str]]  # DEVICES -> device ids, GROUPS -> group ids
    operations: list[tuple[str, dict[str, Any]]]
    # Only for a stage read from the API:
    stage_id: str = ""
    lists: list[dict[str, Any]] = field(default_factory=list)  # {id, type, members}
    operation_list_ids: list[str] = field(default_factory=list)


@dataclass
class ApplyResult:
    action: str  # created, updated or unchanged
    pipeline_id: str
    name: str
    changes: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"result": self.action, "pipeline_id": self.pipeline_id, "name": self.name,
                "changes": self.changes}


def apply_spec(api: Api, loaded: LoadedSpec) -> ApplyResult:
    spec = loaded.spec
    desired = _desired(api, loaded)
    found = pipelines_named(api, spec.name)
    if len(found) > 1:
        ids = ", ".join(p["id"] for p in found)
        raise CliError(f"{len(found)} pipelines are named {spec.name!r} ({ids}); apply matches "
                       "by name, so delete or rename all but one first")
    timeout = spec.timeout_seconds or DEFAULT_PIPELINE_TIMEOUT_SECONDS
    if not found:
        created = api.call("POST", "/pipelines", json=_whole_body(spec.name, spec.description,
                                                                  timeout, desired))
        return ApplyResult("created", created["id"], spec.name,
                           [f"stage {s.name}: added" for s in desired])
    pipeline = api.get(f"/pipelines/{found[0]['id']}")
    changes = _Reconciler(api, pipeline).run(spec.description, timeout, desired)
    return ApplyResult("updated" if changes else "unchanged", pipeline["id"], spec.name, changes)


# ---- the file's side ---------------------------------------------------------------------------


def _desired(api: Api, loaded: LoadedSpec) -> list[StageState]:
    spec = loaded.spec
    devices = _device_ids(api, loaded)
    groups = {g["name"]: g["id"] for g in api.pages("/devicegroups")}
    problems = []
    for index, stage in enumerate(spec.stages):
        for item, name in enumerate(stage.targets.groups):
            if name not in groups:
                where = loaded.where("stages", index, "targets", "groups", item)
                problems.append(f"{where}: stages.{index}.targets.groups.{item}: no device group "
                                f"named {name!r}")
    problems += devices.problems
    if problems:
        raise SpecError(problems)
    return [
        StageState(
            name=stage.name, description=stage.description, order=index + 1,
            trigger=stage.trigger or ("automatic" if index == 0 else "manual"),
            timeout_seconds=stage.timeout_seconds or DEFAULT_STAGE_TIMEOUT_SECONDS,
            rollout=stage.rollout.model_dump(mode="json"),
            members={"DEVICES": {devices.ids[n] for n in stage.targets.devices},
                     "GROUPS": {groups[n] for n in stage.targets.groups}},
            operations=[(op.type, dict(op.args)) for op in stage.operations],
        )
        for index, stage in enumerate(spec.stages)
    ]


@dataclass
class _Devices:
    ids: dict[str, str]
    problems: list[str]


def _device_ids(api: Api, loaded: LoadedSpec) -> _Devices:
    """Device names to ids: one lookup per name for a short list, the whole fleet once for a
    long one. A name no device has, or two devices share, is a problem at its line."""
    wanted = {name for stage in loaded.spec.stages for name in stage.targets.devices}
    by_name: dict[str, list[str]] = {}
    if len(wanted) > 50:
        for device in api.pages("/devices"):
            by_name.setdefault(device["name"], []).append(device["id"])
    else:
        for name in wanted:
            by_name[name] = [d["id"] for d in api.get("/devices", name=name, limit=2)["results"]]
    problems = []
    for index, stage in enumerate(loaded.spec.stages):
        for item, name in enumerate(stage.targets.devices):
            ids = by_name.get(name, [])
            if len(ids) != 1:
                why = "no device is named" if not ids else "several devices are named"
                where = loaded.where("stages", index, "targets", "devices", item)
                problems.append(f"{where}: stages.{index}.targets.devices.{item}: {why} {name!r}")
    return _Devices({n: ids[0] for n, ids in by_name.items() if len(ids) == 1}, problems)


def _whole_body(name: str, description: str, timeout: int,
                stages: list[StageState]) -> dict[str, Any]:
    return {"name": name, "description": description, "timeout_seconds": timeout, "stages": [
        {**_stage_fields(s), "name": s.name, "device_ids": sorted(s.members["DEVICES"]),
         "device_group_ids": sorted(s.members["GROUPS"]),
         "operations": [{"operation_type": t, "args": a} for t, a in s.operations]}
        for s in stages]}


def _stage_fields(stage: StageState) -> dict[str, Any]:
    return {name: getattr(stage, name) for name in STAGE_FIELDS}


# ---- the API's side ----------------------------------------------------------------------------


class _Reconciler:
    """Reads the pipeline's stages back and sends only what differs from the file."""

    def __init__(self, api: Api, pipeline: dict[str, Any]) -> None:
        self.api = api
        self.pipeline = pipeline
        self.pid = pipeline["id"]

    def run(self, description: str, timeout: int, desired: list[StageState]) -> list[str]:
        changes = []
        current = [self._read_stage(s) for s in self.pipeline.get("stages") or []]
        attached = Counter(tl["id"] for s in current for tl in s.lists)
        update = {k: v for k, v in (("description", description), ("timeout_seconds", timeout))
                  if self.pipeline[k] != v}
        if update:
            self.api.call("PUT", f"/pipelines/{self.pid}", json=update)
            changes += [f"pipeline: {k} {self.pipeline[k]!r} -> {v!r}" for k, v in update.items()]
        unmatched = list(current)
        for want in desired:
            have = next((s for s in unmatched if s.name == want.name), None)
            if have is None:
                changes += self._add_stage(want)
                continue
            unmatched.remove(have)
            changes += self._update_stage(have, want, attached)
        for gone in unmatched:
            self.api.call("DELETE", f"/pipelines/{self.pid}/stages/{gone.stage_id}")
            for target_list in gone.lists:
                if attached[target_list["id"]] == 1:
                    self.api.call("DELETE", f"/pipelines/{self.pid}/targetlists/"
                                  f"{target_list['id']}")
            changes.append(f"stage {gone.name}: removed")
        return changes

    def _read_stage(self, stage: dict[str, Any]) -> StageState:
        lists = []
        for target_list in self.api.pages(f"/stages/{stage['id']}/targetlists"):
            kind = target_list["target_list_type"]
            route, key = KINDS[kind]
            path = f"/pipelines/{self.pid}/targetlists/{target_list['id']}/{route}"
            lists.append({"id": target_list["id"], "type": kind,
                          "members": {m[key] for m in self.api.pages(path)}})
        operations = []
        for list_id in stage["operation_list_ids"]:
            ops = sorted(self.api.pages(f"/operationlists/{list_id}/operations"),
                         key=lambda op: op["order"])
            operations += [(op["operation_type"], op["args"]) for op in ops]
        return StageState(
            name=stage["name"], description=stage["description"], order=stage["order"],
            trigger=stage["trigger"], timeout_seconds=stage["timeout_seconds"],
            rollout=stage["rollout"],
            members={kind: {m for tl in lists if tl["type"] == kind for m in tl["members"]}
                     for kind in KINDS},
            operations=operations, stage_id=stage["id"], lists=lists,
            operation_list_ids=list(stage["operation_list_ids"]))

    def _add_stage(self, want: StageState) -> list[str]:
        stage = self.api.call("POST", f"/pipelines/{self.pid}/stages",
                              json={"name": want.name, **_stage_fields(want)})
        for kind in KINDS:
            if want.members[kind]:
                self._new_list(stage["id"], want.name, kind, want.members[kind])
        if want.operations:
            self._new_operations(stage["id"], want)
        return [f"stage {want.name}: added"]

    def _update_stage(self, have: StageState, want: StageState,
                      attached: Counter[str]) -> list[str]:
        changes = []
        fields = {k: v for k, v in _stage_fields(want).items() if getattr(have, k) != v}
        if fields:
            self.api.call("PUT", f"/pipelines/{self.pid}/stages/{have.stage_id}", json=fields)
            changes += [f"stage {want.name}: {k} {_short(getattr(have, k))} -> {_short(v)}"
                        for k, v in fields.items()]
        for kind in KINDS:
            if have.members[kind] != want.members[kind]:
                changes.append(self._sync_members(have, want, kind, attached))
        if have.operations != want.operations:
            for list_id in have.operation_list_ids:
                self.api.call("DELETE", f"/operationlists/{list_id}")
            if want.operations:
                self._new_operations(have.stage_id, want)
            changes.append(f"stage {want.name}: operations {len(have.operations)} -> "
                           f"{len(want.operations)} ({_ops(want.operations)})")
        return changes

    def _sync_members(self, have: StageState, want: StageState, kind: str,
                      attached: Counter[str]) -> str:
        """One list of this kind owned by the stage alone is edited in place; otherwise the
        stage gets one new list and lets go of the old ones."""
        route, key = KINDS[kind]
        lists = [tl for tl in have.lists if tl["type"] == kind]
        wanted, had = want.members[kind], have.members[kind]
        summary = f"stage {want.name}: {kind.lower()} +{len(wanted - had)} -{len(had - wanted)}"
        if len(lists) == 1 and attached[lists[0]["id"]] == 1 and wanted:
            path = f"/pipelines/{self.pid}/targetlists/{lists[0]['id']}/{route}"
            for member in sorted(wanted - had):
                self.api.call("POST", path, json={key: member})
            for member in sorted(had - wanted):
                self.api.call("DELETE", f"{path}/{member}")
            return summary
        if wanted:
            self._new_list(have.stage_id, want.name, kind, wanted)
        for target_list in lists:
            self.api.call("DELETE", f"/stages/{have.stage_id}/targetlists/{target_list['id']}")
            if attached[target_list["id"]] == 1:
                self.api.call("DELETE", f"/pipelines/{self.pid}/targetlists/{target_list['id']}")
        return summary

    def _new_list(self, stage_id: str, stage_name: str, kind: str, members: set[str]) -> None:
        route, key = KINDS[kind]
        target_list = self.api.call("POST", f"/pipelines/{self.pid}/targetlists", json={
            "name": f"{stage_name} {kind.lower()}", "target_list_type": kind})
        for member in sorted(members):
            self.api.call("POST", f"/pipelines/{self.pid}/targetlists/{target_list['id']}/{route}",
                          json={key: member})
        self.api.call("POST", f"/stages/{stage_id}/targetlists",
                      json={"target_list_id": target_list["id"]})

    def _new_operations(self, stage_id: str, want: StageState) -> None:
        operation_list = self.api.call("POST", f"/stages/{stage_id}/operationlists", json={
            "name": f"{want.name} operations"})
        for order, (op_type, args) in enumerate(want.operations):
            self.api.call("POST", f"/operationlists/{operation_list['id']}/operations",
                          json={"operation_type": op_type, "args": args, "order": order})


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _ops(operations: list[tuple[str, dict[str, Any]]]) -> str:
    return ", ".join(op_type for op_type, _ in operations) or "none"
