"""`waiting_for` as the run row keeps it: a pause before a gate, then the gate, else None."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.records import StageRunInfo
from domain.waiting import waiting_for_view

GATE = StageRunInfo(stage_run_id="sr-2", order=2, name="fleet", trigger="manual",
                    timeout_seconds=60, rollout={}, status="pending")
AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_pause_comes_before_the_gate_and_names_the_key():
    assert waiting_for_view(paused_since=AT, paused_by=("key-1", "ops"), gate=GATE) == {
        "kind": "pause", "by": "key-1", "by_name": "ops", "at": "2026-12-01T10:00:00Z"}


def test_a_pause_from_no_key_says_so_with_nulls():
    view = waiting_for_view(paused_since=AT, paused_by=("", ""), gate=None)
    assert view is not None and view["by"] is None and view["by_name"] is None


def test_the_gate_names_its_stage():
    assert waiting_for_view(paused_since=None, paused_by=("", ""), gate=GATE) == {
        "kind": "gate", "stage_run_id": "sr-2", "stage_name": "fleet", "stage_order": 2}


def test_nothing_to_wait_for():
    assert waiting_for_view(paused_since=None, paused_by=("k", "n"), gate=None) is None
