"""A keyed run's place in its lane (the active runs of its enterprise with its key, created
before it), and when a pipeline run counts as started: not while queued behind its key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.records import StatusChange
from domain.statuses import RunKind
from store.runs import creation, statuses
from store.runs.lanes import lane_place
from tests.builders import StageSpec, make_pipeline

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _move(engine, run_id, status, minutes):  # noqa: ANN001
    statuses.record_statuses(engine, [StatusChange(
        RunKind.PIPELINE.value, str(run_id), status, T0 + timedelta(minutes=minutes))])


def test_the_runs_ahead_are_the_active_ones_of_the_enterprise_with_the_key(engine):
    enterprise, pipeline = make_pipeline(engine, [StageSpec("only", devices=[{}])])
    other = make_pipeline(engine, [StageSpec("only", devices=[{}])], enterprise="globex")

    def run(key, ids=(enterprise, pipeline)):  # noqa: ANN001, ANN202
        return creation.create_pipeline_run(engine, ids[0], ids[1], concurrency_key=key)

    ended, first, _other_key, _no_key = run("k"), run("k"), run("j"), run(None)
    _elsewhere = run("k", other)
    _move(engine, ended.id, "cancelled", 1)
    me = run("k")
    place = lane_place(engine, me.id)
    assert place.ahead == [str(first.id)]
    assert place.created_epoch == me.created_at.timestamp()
    assert lane_place(engine, first.id).ahead == []
    with pytest.raises(LookupError):
        lane_place(engine, _no_key.id)


def test_a_run_starts_when_it_leaves_queued_and_never_if_cancelled_there(engine):
    enterprise, pipeline = make_pipeline(engine, [StageSpec("only", devices=[{}])])
    waited = creation.create_pipeline_run(engine, enterprise, pipeline, concurrency_key="k")
    _move(engine, waited.id, "queued", 1)
    cancelled = creation.create_pipeline_run(engine, enterprise, pipeline, concurrency_key="k")
    _move(engine, cancelled.id, "queued", 1)
    _move(engine, cancelled.id, "cancelled", 2)
    _move(engine, waited.id, "processing", 5)
    plain = creation.create_pipeline_run(engine, enterprise, pipeline)
    _move(engine, plain.id, "processing", 3)  # through queued in one step, as before
    rows = {r.id: r for r in (_row(engine, r.id) for r in (waited, cancelled, plain))}
    assert rows[waited.id].started_at == T0 + timedelta(minutes=5)
    assert rows[cancelled.id].started_at is None
    assert rows[cancelled.id].ended_at == T0 + timedelta(minutes=2)
    assert rows[plain.id].started_at == T0 + timedelta(minutes=3)


def _row(engine, run_id):  # noqa: ANN001, ANN202
    from store.db import transaction
    from store.runs.tables import PipelineRun

    with transaction(engine) as session:
        return session.get(PipelineRun, run_id)
