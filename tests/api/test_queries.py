"""The API's reads on SQLite and PostgreSQL (store.runs.reads, the definitions' reads):
scoping, filters, every ordering, counts, paging."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event
from sqlmodel import Session

from store import paging, tenancy
from store.db import transaction
from store.definitions.tenants import ensure_enterprise
from store.runs import commands, reads
from tests.api.runs_fixture import seed_runs


@pytest.fixture
def seeded(engine):
    enterprise = ensure_enterprise(engine, "acme")
    other = ensure_enterprise(engine, "globex")
    return engine, enterprise.id, other.id, seed_runs(engine, enterprise.id)


def numbers(page) -> list[tuple[str, int]]:
    return [(run.pipeline_name, run.run_number) for run in page.items]


@pytest.mark.parametrize("ordering, expected", [
    (None, [("beta", 1), ("alpha", 3), ("alpha", 2), ("alpha", 1)]),  # newest first
    ("run_number", [("alpha", 1), ("beta", 1), ("alpha", 2), ("alpha", 3)]),
    ("-run_number", [("alpha", 3), ("alpha", 2), ("beta", 1), ("alpha", 1)]),
    ("status", [("alpha", 3), ("alpha", 2), ("alpha", 1), ("beta", 1)]),  # lifecycle order
    ("-status", [("beta", 1), ("alpha", 1), ("alpha", 2), ("alpha", 3)]),
    ("started_at", [("alpha", 1), ("beta", 1), ("alpha", 2), ("alpha", 3)]),  # NULL last
    ("-started_at", [("alpha", 2), ("beta", 1), ("alpha", 1), ("alpha", 3)]),
    ("ended_at", [("beta", 1), ("alpha", 1), ("alpha", 2), ("alpha", 3)]),
    ("-ended_at", [("alpha", 1), ("beta", 1), ("alpha", 2), ("alpha", 3)]),
])
def test_run_orderings(seeded, ordering, expected):
    engine, enterprise_id, _, _ = seeded
    with Session(engine) as session:
        page = reads.list_pipeline_runs(session, enterprise_id, ordering=ordering, limit=10,
                                          offset=0)
    result = numbers(page)
    if ordering in ("ended_at", "-ended_at", "-started_at", "started_at"):
        # rows with equal (NULL) keys are ordered by id: compare the determined prefix only
        determined = {"ended_at": 2, "-ended_at": 2, "started_at": 3, "-started_at": 3}[ordering]
        assert result[:determined] == expected[:determined]
        assert sorted(result) == sorted(expected)
    else:
        assert result == expected


def test_pipeline_name_ordering_and_filters(seeded):
    engine, enterprise_id, other_id, seeded_rows = seeded
    with Session(engine) as session:
        page = reads.list_pipeline_runs(session, enterprise_id, ordering="-pipeline__name",
                                          limit=10, offset=0)
        assert [r.pipeline_name for r in page.items] == ["beta", "alpha", "alpha", "alpha"]
        page = reads.list_pipeline_runs(session, enterprise_id, pipeline_name="alpha",
                                          status="waiting", limit=10, offset=0)
        assert numbers(page) == [("alpha", 2)]
        alpha = seeded_rows.runs[0].pipeline_id
        page = reads.list_pipeline_runs(session, enterprise_id, pipeline_id=alpha,
                                          ordering="run_number", limit=2, offset=1)
        assert page.count == 3 and numbers(page) == [("alpha", 2), ("alpha", 3)]
        with pytest.raises(paging.InvalidQuery):
            reads.list_pipeline_runs(session, enterprise_id, pipeline_id=alpha,
                                       ordering="pipeline__name", limit=2, offset=0)
        # another enterprise sees nothing, and not the pipeline either
        assert reads.list_pipeline_runs(session, other_id, limit=10, offset=0).count == 0
        with pytest.raises(tenancy.NotFound):
            reads.list_pipeline_runs(session, other_id, pipeline_id=alpha, limit=10, offset=0)
        with pytest.raises(tenancy.NotFound):
            reads.get_pipeline_run(session, other_id, seeded_rows.runs[0].id)


def test_stage_runs_carry_target_counts_from_one_grouped_query(seeded):
    engine, enterprise_id, _, seeded_rows = seeded
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with Session(engine) as session:
            page = reads.list_stage_runs(session, enterprise_id, seeded_rows.runs[0].id,
                                           limit=20, offset=0)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [row.stage_run.stage_name for row in page.items] == ["canary", "fleet"]
    canary, fleet = (row.target_run_counts for row in page.items)
    assert canary["success"] == 2 and canary["failure"] == 1 and canary["running"] == 1
    assert canary["cancelled"] == 1 and canary["pending"] == 1 and canary["timeout"] == 0
    assert sum(fleet.values()) == 0
    grouped = [s for s in statements if "GROUP BY" in s.upper()]
    assert len(grouped) == 1  # one GROUP BY per page, not one query per stage run
    assert len(statements) <= 4  # the run check, the count, the page, the counts


def test_target_run_filters_and_orderings(seeded):
    engine, enterprise_id, _, seeded_rows = seeded
    canary = seeded_rows.stage_runs[0].id
    install, reboot = seeded_rows.operations
    with Session(engine) as session:
        def page(**kwargs):
            return reads.list_target_runs(session, enterprise_id, canary, limit=20, offset=0,
                                            **kwargs)

        default = page()
        assert [(t.operation_order, t.device_seq) for t in default.items] == [
            (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
        assert page(status="success").count == 2
        only_reboot = page(stage_run_operation_id=reboot.id)
        assert {t.stage_run_operation_id for t in only_reboot.items} == {reboot.id}
        assert [t.status for t in page(ordering="status").items][:2] == ["pending", "running"]
        assert [t.status for t in page(ordering="-status").items][0] == "cancelled"
        assert page(status="success", stage_run_operation_id=install.id).count == 1
        with pytest.raises(paging.InvalidQuery):
            page(ordering="device")
        with pytest.raises(tenancy.NotFound):
            reads.list_target_runs(session, enterprise_id, uuid.uuid4(), limit=1, offset=0)


def test_deleting_a_run_only_when_terminal_and_with_everything_under_it(seeded):
    engine, enterprise_id, other_id, seeded_rows = seeded
    finished, waiting = seeded_rows.runs[0], seeded_rows.runs[1]
    with transaction(engine) as session:  # the delete is the caller's unit of work
        with pytest.raises(reads.RunNotTerminal):
            reads.delete_pipeline_run(session, enterprise_id, waiting.id)
        with pytest.raises(tenancy.NotFound):
            reads.delete_pipeline_run(session, other_id, finished.id)
        reads.delete_pipeline_run(session, enterprise_id, finished.id)
    with Session(engine) as session:
        with pytest.raises(tenancy.NotFound):
            reads.get_pipeline_run(session, enterprise_id, finished.id)
        with pytest.raises(tenancy.NotFound):
            reads.get_stage_run(session, enterprise_id, seeded_rows.stage_runs[0].id)
        assert seeded_rows.command is not None
        with pytest.raises(tenancy.NotFound):
            commands.get_command(session, enterprise_id, seeded_rows.command.id)
        assert reads.get_pipeline_run(session, enterprise_id, waiting.id).status == "waiting"


def test_the_target_run_list_presents_exactly_what_a_single_target_run_does(seeded):
    """The list is written from plain rows for speed; it must match the validated shape."""
    from api import present
    from store.runs.tables import TargetRun

    engine, enterprise_id, _, seeded_rows = seeded
    canary = seeded_rows.stage_runs[0].id
    with Session(engine) as session:
        rows = reads.list_target_runs(session, enterprise_id, canary, limit=100,
                                        offset=0).items
        fast = present.target_runs(rows)
        validated = [present.target_run(session.get(TargetRun, row.id)) for row in rows]
    assert len(fast) == 6
    assert fast == validated
    # The page covers the awkward values: a command with meta, and unset ones.
    assert {"progress": 50} in [item["command_meta"] for item in fast]
    assert None in [item["command_id"] for item in fast]
