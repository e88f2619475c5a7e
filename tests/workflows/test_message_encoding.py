"""Payloads written before the pydantic converter and the typed lanes still decode.

No committed history holds a stage run continued-as-new (its carry) or a local activity's
StatusChange, so their old encodings are checked here directly, through the converter the
worker uses.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from temporalio.api.common.v1 import Payload

from activities.messages import RecordStatusesInput
from domain.commands import CommandEvent
from domain.records import StatusChange
from workflows.converter import DATA_CONVERTER
from workflows.messages import (
    CommandEvents,
    Lane,
    PageEntry,
    Resumption,
    StageCarry,
    StageRunInput,
)


def _payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def _decode(value: object, type_hint: type) -> object:
    [decoded] = DATA_CONVERTER.payload_converter.from_payloads([_payload(value)], [type_hint])
    return decoded


def test_a_carry_written_with_string_lanes_decodes_into_typed_lanes() -> None:
    old = {"stage_run_id": "s", "pipeline_run_id": "p", "enterprise_id": "e",
           "timeout_seconds": 60, "carry": {
               "started": True, "cursor": 4, "operation_ids": ["o1", "o2"],
               "page": [["5", "dev-5"]],
               "ready": [["dev-1", "1"], ["dev-2", "0", "2"]],
               "in_flight": {"t-3": ["dev-3", "0"]},
               "resume": [["dev-4", "1", "t-4"]]}}
    decoded = _decode(old, StageRunInput)
    assert isinstance(decoded, StageRunInput)
    carry = decoded.carry
    assert isinstance(carry, StageCarry)
    assert carry.page == [PageEntry(5, "dev-5")]
    assert carry.ready == [Lane("dev-1", 1, 0), Lane("dev-2", 0, 2)]
    assert carry.in_flight == {"t-3": Lane("dev-3", 0, 0)}
    assert carry.resume == [Resumption("dev-4", 1, "t-4")]


def test_a_carry_round_trips_through_the_converter() -> None:
    carry = StageCarry(ready=[Lane("d", 2, 1)], in_flight={"t": Lane("d", 0)},
                       page=[PageEntry(7, "x")], resume=[Resumption("d", 1, "t2")])
    [payload] = DATA_CONVERTER.payload_converter.to_payloads([carry])
    [back] = DATA_CONVERTER.payload_converter.from_payloads([payload], [StageCarry])
    assert back == carry


def test_a_status_change_carries_its_time_as_a_datetime() -> None:
    at = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    request = RecordStatusesInput([StatusChange("target_run", "t", "running", at, "why",
                                                {"command_status": "queued"})])
    [payload] = DATA_CONVERTER.payload_converter.to_payloads([request])
    [back] = DATA_CONVERTER.payload_converter.from_payloads([payload], [RecordStatusesInput])
    assert back == request
    assert back.changes[0].at == at


def test_command_events_signalled_before_device_reports_decode_with_empty_reports() -> None:
    old = {"events": [{"command_id": "c", "status": "success", "reason": "",
                       "output": {"ok": True}, "sequence": 3, "at_epoch": 1.5}]}
    decoded = _decode(old, CommandEvents)
    assert isinstance(decoded, CommandEvents)
    [event] = decoded.events
    assert (event.status, event.output, event.sequence) == ("success", {"ok": True}, 3)
    assert (event.error, event.output_attachment_ids, event.run_message_history) == ([], [], [])
    reported = CommandEvent("c", "failure", error=["disk full"], run_message_history=[{"m": 1}])
    [payload] = DATA_CONVERTER.payload_converter.to_payloads([CommandEvents(events=[reported])])
    [back] = DATA_CONVERTER.payload_converter.from_payloads([payload], [CommandEvents])
    assert back == CommandEvents(events=[reported])
