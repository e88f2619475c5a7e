"""The drill's fleet, written straight into a fresh store: one pipeline, one automatic stage,
N simulated devices that all succeed (every `slow_every`-th one after `slow_ms`, so commands
are out on devices when a process dies), and the given operations in order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from store.db import make_engine, transaction
from store.definitions.devices import Device
from store.definitions.operation_lists import Operation, OperationList
from store.definitions.pipelines import Pipeline, Stage
from store.definitions.target_lists import StageTargetList, TargetList, TargetListDevice
from store.definitions.tenants import create_token, ensure_enterprise
from store.migrations import upgrade
from store.types import utcnow

INSTALL: dict[str, Any] = {"operation_type": "INSTALL",
                           "args": {"package_name": "com.example.app", "app_version": "1.2.3"}}
REBOOT: dict[str, Any] = {"operation_type": "REBOOT", "args": {}}
OPERATIONS = (INSTALL, REBOOT)
_CHUNK = 2000


@dataclass(frozen=True)
class Fleet:
    api_key: str
    pipeline_id: str
    devices: int
    operations: int
    slow_devices: int


def seed_fleet(db_url: str, devices: int, operations: int = 1, slow_every: int = 10,
               slow_ms: int = 3000) -> Fleet:
    if not 1 <= operations <= len(OPERATIONS):
        raise ValueError(f"operations must be 1..{len(OPERATIONS)}, not {operations}")
    engine = make_engine(db_url)
    upgrade(engine)
    enterprise = ensure_enterprise(engine, "drill")
    key = create_token(engine, enterprise.id, "drill")
    now = utcnow()
    slow = 0
    with transaction(engine) as session:
        pipeline = Pipeline(enterprise_id=enterprise.id, name=f"drill-{devices}")
        session.add(pipeline)
        session.flush()
        stage = Stage(pipeline_id=pipeline.id, name="fleet", order=0, trigger="automatic")
        target_list = TargetList(pipeline_id=pipeline.id, name="fleet")
        session.add_all([stage, target_list])
        session.flush()
        op_list = OperationList(pipeline_id=pipeline.id, stage_id=stage.id, name="ops")
        session.add_all([op_list, StageTargetList(stage_id=stage.id,
                                                  target_list_id=target_list.id)])
        session.flush()
        session.add_all([Operation(operation_list_id=op_list.id, order=i,
                                   operation_type=op["operation_type"], args=op["args"])
                         for i, op in enumerate(OPERATIONS[:operations])])
        ids = [uuid.uuid4() for _ in range(devices)]
        for start in range(0, devices, _CHUNK):
            rows = []
            for i, device_id in enumerate(ids[start:start + _CHUNK], start):
                attributes = {}
                if slow_every > 0 and i % slow_every == 0:
                    attributes = {"sim_latency_ms": str(slow_ms)}
                    slow += 1
                rows.append({"id": device_id, "enterprise_id": enterprise.id,
                             "name": f"drill-{i:06d}", "alias": f"d{i}",
                             "attributes": attributes, "created_at": now, "updated_at": now})
            session.execute(insert(Device.__table__), rows)  # type: ignore[attr-defined]
            session.execute(insert(TargetListDevice.__table__), [  # type: ignore[attr-defined]
                {"id": uuid.uuid4(), "target_list_id": target_list.id, "device_id": row["id"],
                 "created_at": now} for row in rows])
        pipeline_id = str(pipeline.id)
    engine.dispose()
    return Fleet(api_key=key, pipeline_id=pipeline_id, devices=devices, operations=operations,
                 slow_devices=slow)
