"""The demo data of `fleetpipe dev` is made once, whatever the number of starts."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from cli.seed import DEMO_DEVICE_COUNT, seed_demo
from store.definitions.devices import Device
from store.definitions.operation_lists import Operation
from store.definitions.pipelines import Pipeline, Stage
from store.definitions.target_lists import StageTargetList, TargetListDevice
from store.definitions.tenants import ApiToken, Enterprise, enterprise_for_key

COUNTED = (
    Enterprise,
    ApiToken,
    Device,
    Pipeline,
    Stage,
    StageTargetList,
    TargetListDevice,
    Operation,
)


def _counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            table.__name__: session.exec(select(func.count()).select_from(table)).one()
            for table in COUNTED
        }


def test_seeding_twice_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    """On SQLite (the dev default) and PostgreSQL (production) alike."""
    token_file = tmp_path / "demo-token"
    first = seed_demo(engine, token_file)
    counts = _counts(engine)
    second = seed_demo(engine, token_file)

    assert (
        _counts(engine)
        == counts
        == {
            "Enterprise": 1,
            "ApiToken": 1,
            "Device": DEMO_DEVICE_COUNT,
            "Pipeline": 1,
            "Stage": 2,
            "StageTargetList": 2,
            "TargetListDevice": 2 * DEMO_DEVICE_COUNT,
            "Operation": 2,
        }
    )
    assert second == first  # same ids, same token: the printed curl commands keep working
    assert enterprise_for_key(engine, first.token) == first.enterprise_id
    assert token_file.read_text().strip() == first.token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_demo_pipeline_shape(sqlite_engine: Engine, tmp_path: Path) -> None:
    seed = seed_demo(sqlite_engine, tmp_path / "demo-token")
    with Session(sqlite_engine) as session:
        stages = session.exec(
            select(Stage).where(Stage.pipeline_id == seed.pipeline_id).order_by(col(Stage.order))
        ).all()
        operations = session.exec(select(Operation)).all()
        devices = session.exec(select(Device)).all()
    assert [s.trigger for s in stages] == ["automatic", "manual"]
    assert {o.operation_type for o in operations} == {"INSTALL"}
    assert all({"package_name", "app_version"} <= o.args.keys() for o in operations)
    assert all(d.attributes["sim_behavior"] == "succeed" for d in devices)


def test_a_token_the_store_no_longer_knows_is_replaced(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    token_file = tmp_path / "demo-token"
    token_file.write_text("fp_from_a_wiped_database\n")
    seed = seed_demo(sqlite_engine, token_file)
    assert seed.token != "fp_from_a_wiped_database"
    assert enterprise_for_key(sqlite_engine, seed.token) == seed.enterprise_id
    assert token_file.read_text().strip() == seed.token
