"""The lane's rules: what a key may be, the line kept in creation order, the queued reason."""

from __future__ import annotations

import pytest

from domain.concurrency import (
    LaneEntry,
    admit,
    check_concurrency_key,
    lane_workflow_id,
    not_joined,
    queued_reason,
)


def _entry(name: str, at: float) -> LaneEntry:
    return LaneEntry(f"pipeline-run-{name}", name, at)


def test_the_line_is_in_creation_order_and_a_join_counts_once():
    line: list[LaneEntry] = []
    holder = _entry("h", 0)
    assert admit(line, _entry("b", 2), holder)
    assert admit(line, _entry("d", 4), holder)
    assert admit(line, _entry("a", 1), holder)  # joined late, created early: goes first
    assert admit(line, _entry("c", 2), holder)  # same time: after those already there
    assert [e.pipeline_run_id for e in line] == ["a", "b", "c", "d"]
    assert not admit(line, _entry("b", 2), holder)  # a retried join
    assert not admit(line, _entry("h", 0), holder)  # the holder itself
    assert len(line) == 4
    assert not admit(line, _entry("gone", 3), holder, ["pipeline-run-gone"])  # a late join
    assert len(line) == 4


def test_the_first_in_line_waits_only_for_earlier_runs_not_yet_seen():
    first = LaneEntry("pipeline-run-b", "b", 2, ahead=["pipeline-run-h", "pipeline-run-a",
                                                       "pipeline-run-gone", "pipeline-run-x"])
    holder = _entry("h", 0)
    line = [first]
    # The holder is here, "gone" left, "x" was found closed: only "a" is still awaited.
    assert not_joined(first, holder, line, ["pipeline-run-gone"], {"pipeline-run-x"}) == [
        "pipeline-run-a"]
    assert admit(line, _entry("a", 1), holder)
    assert not_joined(first, holder, line, ["pipeline-run-gone"], {"pipeline-run-x"}) == []


@pytest.mark.parametrize("bad, words", [
    ("", "1 to 128"), ("k" * 129, "1 to 128"), (" k", "whitespace"), ("k\n", "whitespace"),
    ("a\x00b", "control"), ("a\x7fb", "control"),
])
def test_bad_keys_are_refused_saying_why(bad, words):
    with pytest.raises(ValueError, match=words):
        check_concurrency_key(bad)


def test_a_key_may_be_any_printable_text_and_its_lane_id_is_short_and_stable():
    key = "site/Zürich #3 — nightly"
    assert check_concurrency_key(key) == key
    lane = lane_workflow_id("ent", key)
    assert lane == lane_workflow_id("ent", key) and len(lane) < 100
    assert lane != lane_workflow_id("other", key) != lane_workflow_id("ent", key + "!")


def test_the_queued_reason_names_the_run_right_ahead():
    assert queued_reason("k", ["r1", "r2"]) == (
        "queued behind run r2 (concurrency key 'k'; 2 active runs ahead)")
    assert "waiting for its turn" in queued_reason("k", [])
