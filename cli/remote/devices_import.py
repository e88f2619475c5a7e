"""`fleetpipe devices import FILE.csv`: a fleet of real devices from a spreadsheet.

Columns: `name` (required, the key: a device of that name is updated, never duplicated), `alias`,
`groups` (group names separated by `;`: the device joins them, groups are made as needed), and
any other column is an attribute (`esper_device_id`, `thing_name`, `sim_behavior`, ...). An
empty cell leaves that attribute out; attributes the file does not mention are kept. Every row is
checked before the first write: a bad file changes nothing and names each bad line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.remote.client import Api, CliError

NAME_MAX = 255


@dataclass
class Row:
    line: int
    name: str
    alias: str | None
    groups: list[str]
    attributes: dict[str, str]


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    groups_created: list[str] = field(default_factory=list)
    groups_updated: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def read_rows(path: Path) -> list[Row]:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "name" not in columns:
            raise CliError(f"{path}:1: the header needs a `name` column (has: "
                           f"{', '.join(columns) or 'nothing'})")
        rows: list[Row] = []
        problems: list[str] = []
        seen: dict[str, int] = {}
        for record in reader:
            line = reader.line_num
            values = {(k or "").strip(): (v or "").strip() for k, v in record.items()
                      if k is not None}
            if None in record:
                problems.append(f"{path}:{line}: more cells than the header has columns")
                continue
            name = values.pop("name", "")
            if not name:
                problems.append(f"{path}:{line}: name: empty (every device needs a name)")
                continue
            if len(name) > NAME_MAX:
                problems.append(f"{path}:{line}: name: longer than {NAME_MAX} characters")
                continue
            if name in seen:
                problems.append(f"{path}:{line}: name: {name!r} is already on line {seen[name]}")
                continue
            seen[name] = line
            alias = values.pop("alias", None)
            groups = [g.strip() for g in values.pop("groups", "").split(";") if g.strip()]
            rows.append(Row(line, name, alias, groups, {k: v for k, v in values.items() if v}))
    if problems:
        raise CliError("\n".join(problems))
    return rows


def import_devices(api: Api, path: Path) -> ImportResult:
    rows = read_rows(path)
    existing: dict[str, list[dict[str, Any]]] = {}
    for device in api.pages("/devices"):
        existing.setdefault(device["name"], []).append(device)
    shared = [f"{path}:{row.line}: name: {len(existing[row.name])} devices are named "
              f"{row.name!r}; rename all but one first" for row in rows
              if len(existing.get(row.name, [])) > 1]
    groups: dict[str, list[dict[str, Any]]] = {}
    for group in api.pages("/devicegroups"):
        groups.setdefault(group["name"], []).append(group)
    shared += [f"{path}:{row.line}: groups: {len(groups[name])} device groups are named "
               f"{name!r}; rename all but one first" for row in rows for name in row.groups
               if len(groups.get(name, [])) > 1]
    if shared:
        raise CliError("\n".join(shared))
    result = ImportResult()
    members: dict[str, set[str]] = {}
    for row in rows:
        found = existing.get(row.name, [None])[0]
        device_id = _write_device(api, row, found, result)
        for group_name in row.groups:
            members.setdefault(group_name, set()).add(device_id)
    _write_groups(api, groups, members, result)
    return result


def _write_device(api: Api, row: Row, found: dict[str, Any] | None,
                  result: ImportResult) -> str:
    if found is None:
        body = {"name": row.name, "alias": row.alias or "", "attributes": row.attributes}
        created = api.call("POST", "/devices", json=body)
        result.created.append(row.name)
        return str(created["id"])
    change: dict[str, Any] = {}
    if row.alias is not None and row.alias != found["alias"]:
        change["alias"] = row.alias
    attributes = {**found["attributes"], **row.attributes}
    if attributes != found["attributes"]:
        change["attributes"] = attributes  # replaced whole by the API, so the merged map
    if change:
        api.call("PUT", f"/devices/{found['id']}", json=change)
        result.updated.append(row.name)
    else:
        result.unchanged.append(row.name)
    return str(found["id"])


def _write_groups(api: Api, groups: dict[str, list[dict[str, Any]]],
                  members: dict[str, set[str]], result: ImportResult) -> None:
    for name, device_ids in sorted(members.items()):
        found = groups.get(name, [])
        if not found:
            api.call("POST", "/devicegroups", json={"name": name, "device_ids": sorted(device_ids)})
            result.groups_created.append(name)
            continue
        group = api.get(f"/devicegroups/{found[0]['id']}")
        have = set(group.get("device_ids") or [])
        if not device_ids <= have:
            api.call("PUT", f"/devicegroups/{group['id']}",
                     json={"device_ids": sorted(have | device_ids)})
            result.groups_updated.append(name)
