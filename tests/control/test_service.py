"""RunControl on its own, without the API: its pre-checks come before any connection to
Temporal, a run whose workflow is gone refuses in the run's words, and the plain outcomes and
errors it answers with."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client

from control.connection import TemporalConnection
from control.errors import ActionRefused, Missing, RunsUnavailable
from control.service import CANCELLED_WITHOUT_WORKFLOW, RunControl, current_command
from domain.commands import CommandEvent
from settings import Settings
from store.db import transaction
from store.definitions.devices import Device
from store.definitions.tenants import ensure_enterprise
from store.runs.reads import delete_pipeline_run
from store.tenancy import NotFound
from tests.api.runs_fixture import Seeded, seed_runs

UNREACHABLE = Settings(database_url="sqlite://", temporal_address="127.0.0.1:1")


@pytest.fixture
def enterprise_id(sqlite_engine: Engine) -> uuid.UUID:
    return ensure_enterprise(sqlite_engine, "acme").id


@pytest.fixture
def seeded(sqlite_engine: Engine, enterprise_id: uuid.UUID) -> Seeded:
    return seed_runs(sqlite_engine, enterprise_id)


def control_for(engine: Engine, client: Client | None = None) -> RunControl:
    """With no client, Temporal is unreachable: reaching it raises RunsUnavailable."""
    return RunControl(engine, TemporalConnection(UNREACHABLE, client), UNREACHABLE)


async def test_refusals_are_decided_before_temporal_is_reached(
        sqlite_engine: Engine, enterprise_id: uuid.UUID, seeded: Seeded):
    control = control_for(sqlite_engine)
    finished, waiting = seeded.runs[0], seeded.runs[1]
    with pytest.raises(ActionRefused) as refused:
        await control.set_pipeline_run_status(enterprise_id, waiting.pipeline_id, waiting.id,
                                              "paused")
    assert refused.value.field == "status"
    assert refused.value.allowed == ["cancelled", "waiting", "running"]
    assert str(refused.value) == ("status: unknown pipeline run status 'paused'; allowed: "
                                  "cancelled, waiting, running")
    with pytest.raises(ActionRefused, match="cannot set status cancelled: the pipeline run is "
                       "success"):
        await control.set_pipeline_run_status(enterprise_id, finished.pipeline_id, finished.id,
                                              "Cancelled")
    canary = seeded.stage_runs[0]
    with pytest.raises(ActionRefused, match="cannot promote it: the stage run is success"):
        await control.set_stage_run_status(enterprise_id, finished.id, canary.id, "queued")
    with pytest.raises(ActionRefused) as refused:
        await control.add_device(enterprise_id, canary.id, uuid.uuid4())
    assert refused.value.field == "target_id"
    device_id = uuid.uuid4()
    with transaction(sqlite_engine) as session:
        session.add(Device(id=device_id, enterprise_id=enterprise_id, name="dev"))
    with pytest.raises(ActionRefused, match="cannot add a device to it: the stage run is "
                       "success"):
        await control.add_device(enterprise_id, canary.id, device_id)
    dispatched = seeded.target_runs[2]  # running, with a command
    with pytest.raises(ActionRefused) as refused:
        await control.update_target_run(enterprise_id, canary.id, dispatched.id,
                                        status="cancelled", device_name=None)
    assert refused.value.allowed == ["pending", "queued", "processing"]
    assert "(cancel its command instead)" in refused.value.message
    with pytest.raises(ActionRefused) as refused:
        await control.cancel_command(enterprise_id, canary.id, dispatched.id,
                                     uuid.uuid4(), "success")
    assert refused.value.field == "request_status"


async def test_an_action_past_its_pre_checks_needs_temporal(
        sqlite_engine: Engine, enterprise_id: uuid.UUID, seeded: Seeded):
    waiting = seeded.runs[1]
    with pytest.raises(RunsUnavailable, match="not reachable at 127.0.0.1:1"):
        await control_for(sqlite_engine).set_pipeline_run_status(
            enterprise_id, waiting.pipeline_id, waiting.id, "cancelled")


async def test_a_run_whose_workflow_is_gone_refuses_in_the_runs_words(
        sqlite_engine: Engine, enterprise_id: uuid.UUID, seeded: Seeded,
        temporal_client: Client):
    """Seeded rows have no workflow: Temporal answers not-found, the service a refusal (but
    for a cancel of the run, which ends it: see the next test)."""
    control = control_for(sqlite_engine, temporal_client)
    pending = seeded.runs[2]
    with pytest.raises(ActionRefused) as refused:
        await control.set_pipeline_run_status(enterprise_id, pending.pipeline_id, pending.id,
                                              "waiting")
    assert str(refused.value) == ("status: cannot set status waiting: the pipeline run is "
                                  "pending")
    first, fleet = seeded.runs[0], seeded.stage_runs[1]
    with pytest.raises(ActionRefused, match="cannot cancel it: the stage run is running"):
        await control.set_stage_run_status(enterprise_id, first.id, fleet.id, "cancelled")
    canary, dispatched = seeded.stage_runs[0], seeded.target_runs[2]
    assert seeded.command is not None
    with pytest.raises(ActionRefused, match="cannot cancel it: the command is inprogress"):
        await control.cancel_command(enterprise_id, canary.id, dispatched.id,
                                     seeded.command.id, "cancelled")


async def test_a_cancel_of_a_run_whose_workflow_is_gone_ends_it_so_it_can_be_deleted(
        sqlite_engine: Engine, enterprise_id: uuid.UUID, seeded: Seeded,
        temporal_client: Client):
    control = control_for(sqlite_engine, temporal_client)
    waiting = seeded.runs[1]
    outcome = await control.set_pipeline_run_status(enterprise_id, waiting.pipeline_id,
                                                    waiting.id, "cancelled")
    assert outcome.answered and outcome.message is None
    assert (outcome.content.status, outcome.content.status_reason) == (
        "cancelled", CANCELLED_WITHOUT_WORKFLOW)
    with transaction(sqlite_engine) as session:
        deleted = delete_pipeline_run(session, enterprise_id, waiting.id)
    assert deleted.id == waiting.id


async def test_a_target_run_update_without_a_status_answers_at_once(
        sqlite_engine: Engine, enterprise_id: uuid.UUID, seeded: Seeded):
    control = control_for(sqlite_engine)
    done = seeded.target_runs[0]
    outcome = await control.update_target_run(enterprise_id, done.stage_run_id, done.id,
                                              status=None, device_name=done.device_name)
    assert outcome.answered and outcome.message is None
    assert outcome.content.id == done.id and outcome.content.status == "success"
    with pytest.raises(ActionRefused) as refused:
        await control.update_target_run(enterprise_id, done.stage_run_id, done.id,
                                        status="cancelled", device_name="renamed")
    assert refused.value.field == "device_name"


async def test_a_target_runs_command_until_it_has_one_is_missing(
        sqlite_engine: Engine, enterprise_id: uuid.UUID, seeded: Seeded):
    waiting_target, dispatched = seeded.target_runs[0], seeded.target_runs[2]
    with transaction(sqlite_engine) as session:
        with pytest.raises(Missing, match="has no command yet"):
            current_command(session, enterprise_id, waiting_target.stage_run_id,
                            waiting_target.id)
        state = current_command(session, enterprise_id, dispatched.stage_run_id, dispatched.id)
    assert seeded.command is not None and state.command.id == seeded.command.id
    assert [e.status for e in state.events] == ["queued", "inprogress"]


async def test_an_event_for_an_unknown_command_is_not_found(
        sqlite_engine: Engine, enterprise_id: uuid.UUID, seeded: Seeded):
    unknown = uuid.uuid4()
    with pytest.raises(NotFound):
        await control_for(sqlite_engine).report_command_event(
            enterprise_id, unknown, CommandEvent(command_id=str(unknown), status="success"))
