"""devices.sim_records on SQLite and PostgreSQL: the simulator's own record of what it started."""

from __future__ import annotations

from devices.sim_records import claim_sim_delivery, sim_delivery_count
from tests.builders import Rows


def test_a_sim_delivery_is_claimed_once_and_marks_the_command_sent(rows: Rows) -> None:
    command = rows.command()
    assert rows.row(command.command_id).sent_at is None
    assert claim_sim_delivery(rows.engine, command.command_id, command.device_id, "simulated")
    assert not claim_sim_delivery(rows.engine, command.command_id, command.device_id, "sim2")
    row = rows.row(command.command_id)
    assert row.sent_at is not None and row.gateway == "simulated"
    assert sim_delivery_count(rows.engine, command.command_id) == 1
