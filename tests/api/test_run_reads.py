"""Run endpoints over HTTP, served from the read model (rows seeded as the workflows write
them), and the action requests refused before anything reaches Temporal (none runs here:
reaching it would be a 503, so every 400 below is decided by the API alone)."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import Api
from tests.api.runs_fixture import Seeded, seed_runs
from tests.api.test_envelope_auth import assert_error


@pytest.fixture
def seeded(api: Api) -> Seeded:
    return seed_runs(api.engine, api.enterprise_id)


async def test_run_lists_filters_orderings_and_fields(api: Api, seeded: Seeded):
    runs = await api.ok("GET", "/runs")
    assert runs["count"] == 4
    first = runs["results"][-1]
    for field in ("id", "pipeline_id", "pipeline_name", "run_number", "status", "created_at",
                  "started_at", "ended_at", "updated_at"):
        assert field in first
    by_name = await api.ok("GET", "/runs?ordering=-pipeline__name&status=SUCCESS")
    assert [(r["pipeline_name"], r["status"]) for r in by_name["results"]] == [
        ("alpha", "success")]
    alpha = await api.ok("GET", "/runs?pipeline_name=alpha&ordering=run_number&limit=2")
    assert [r["run_number"] for r in alpha["results"]] == [1, 2] and alpha["count"] == 3
    assert "pipeline_name=alpha" in alpha["next"] and "ordering=run_number" in alpha["next"]
    for ordering in ("run_number", "-run_number", "status", "-status", "pipeline__name",
                     "-pipeline__name", "started_at", "-started_at", "ended_at", "-ended_at"):
        assert (await api.ok("GET", f"/runs?ordering={ordering}"))["count"] == 4
    pipeline_id = seeded.runs[0].pipeline_id
    per_pipeline = await api.ok("GET", f"/pipelines/{pipeline_id}/runs?ordering=-run_number")
    assert [r["run_number"] for r in per_pipeline["results"]] == [3, 2, 1]
    waiting = await api.ok("GET", f"/pipelines/{pipeline_id}/runs?status=Waiting")
    assert [r["run_number"] for r in waiting["results"]] == [2]
    one = await api.ok("GET", f"/pipelines/{pipeline_id}/runs/{seeded.runs[0].id}")
    assert one["run_number"] == 1 and one["status"] == "success"


async def test_run_list_bad_filters_name_the_allowed_values(api: Api, seeded: Seeded):
    body = assert_error(await api.get("/runs?status=paused"), 400, "status", "waiting", "timeout")
    assert "waiting" in body["content"]["allowed"]
    assert_error(await api.get("/runs?ordering=name"), 400, "ordering", "pipeline__name")
    pipeline_id = seeded.runs[0].pipeline_id
    assert_error(await api.get(f"/pipelines/{pipeline_id}/runs?ordering=pipeline__name"), 400,
                 "ordering")
    stage_run = seeded.stage_runs[0].id
    assert_error(await api.get(f"/stageruns/{stage_run}/targetruns?status=waiting"), 400,
                 "dispatched")
    assert_error(await api.get(f"/stageruns/{stage_run}/targetruns?ordering=-name"), 400,
                 "ordering")
    assert_error(await api.get(f"/stageruns/{stage_run}/targetruns?stage_run_operation_id=x"),
                 400, "stage_run_operation_id")
    run = seeded.runs[0].id
    assert_error(await api.get(f"/runs/{run}/stageruns?status=waiting"), 400, "status")


async def test_stage_runs_with_counts_and_their_operations(api: Api, seeded: Seeded):
    run = seeded.runs[0]
    stage_runs = await api.ok("GET", f"/runs/{run.id}/stageruns")
    assert [s["stage_name"] for s in stage_runs["results"]] == ["canary", "fleet"]
    canary = stage_runs["results"][0]
    for field in ("id", "pipeline_run_id", "stage_id", "order", "run_number", "status",
                  "created_at"):
        assert field in canary
    assert canary["target_run_counts"]["success"] == 2
    assert sum(canary["target_run_counts"].values()) == 6
    running = await api.ok("GET", f"/runs/{run.id}/stageruns?status=RUNNING")
    assert [s["stage_name"] for s in running["results"]] == ["fleet"]
    one = await api.ok("GET", f"/runs/{run.id}/stageruns/{canary['id']}")
    assert one["target_run_counts"] == canary["target_run_counts"]
    other_run = seeded.runs[1].id
    assert_error(await api.get(f"/runs/{other_run}/stageruns/{canary['id']}"), 404)
    operations = await api.ok("GET", f"/stageruns/{canary['id']}/operations")
    assert [o["operation_type"] for o in operations["results"]] == ["INSTALL", "REBOOT"]
    op = operations["results"][1]
    assert (await api.ok("GET", f"/stageruns/{canary['id']}/operations/{op['id']}"))["order"] == 1
    assert_error(await api.get(f"/stageruns/{canary['id']}/operations/{uuid.uuid4()}"), 404)


async def test_target_runs_and_their_command(api: Api, seeded: Seeded):
    canary = seeded.stage_runs[0]
    reboot = seeded.operations[1]
    base = f"/stageruns/{canary.id}/targetruns"
    page = await api.ok("GET", base + "?limit=4")
    assert page["count"] == 6 and len(page["results"]) == 4
    target = page["results"][0]
    for field in ("id", "stage_run_id", "stage_run_operation_id", "target_id", "device_name",
                  "device_alias", "status", "command_id", "command_status", "command_meta",
                  "created_at"):
        assert field in target
    filtered = await api.ok("GET", f"{base}?stage_run_operation_id={reboot.id}&ordering=-status")
    assert [t["status"] for t in filtered["results"]] == ["cancelled", "success", "pending"]
    assert (await api.ok("GET", f"{base}?status=Success"))["count"] == 2
    running = seeded.target_runs[2]
    one = await api.ok("GET", f"{base}/{running.id}")
    assert one["command_status"] == "inprogress" and one["command_meta"] == {"progress": 50}
    command = await api.ok("GET", f"{base}/{running.id}/command")
    assert command["id"] == str(running.command_id)
    assert command["request_status"] == "inprogress"
    assert [e["status"] for e in command["events"]] == ["queued", "inprogress"]
    no_command = seeded.target_runs[0]
    assert_error(await api.get(f"{base}/{no_command.id}/command"), 404, "no command")
    assert_error(await api.get(f"/stageruns/{seeded.stage_runs[1].id}/targetruns/{running.id}"),
                 404)


async def test_actions_refused_before_reaching_temporal(api: Api, seeded: Seeded):
    finished, waiting = seeded.runs[0], seeded.runs[1]
    run_path = f"/pipelines/{finished.pipeline_id}/runs"
    body = assert_error(await api.put(f"{run_path}/{waiting.id}", {"status": "success"}), 400,
                        "cancelled, waiting, running")
    assert body["content"]["allowed"] == ["cancelled", "waiting", "running"]
    assert_error(await api.put(f"{run_path}/{waiting.id}", {"status": "paused"}), 400,
                 "unknown", "cancelled, waiting, running")
    assert_error(await api.put(f"{run_path}/{waiting.id}", {}), 400, "status")
    assert_error(await api.put(f"{run_path}/{waiting.id}", {"status": 3}), 400, "status")
    assert_error(await api.put(f"{run_path}/{finished.id}", {"status": "CANCELLED"}), 400,
                 "success")
    assert_error(await api.put(f"{run_path}/{uuid.uuid4()}", {"status": "cancelled"}), 404)

    canary, fleet = seeded.stage_runs
    stage_path = f"/runs/{finished.id}/stageruns"
    assert_error(await api.put(f"{stage_path}/{fleet.id}", {"status": "running"}), 400,
                 "queued, cancelled")
    assert_error(await api.put(f"{stage_path}/{canary.id}", {"status": "Queued"}), 400,
                 "success")

    targets = f"/stageruns/{canary.id}/targetruns"
    done, running = seeded.target_runs[0], seeded.target_runs[2]
    assert_error(await api.put(f"{targets}/{done.id}", {"status": "queued"}), 400, "cancelled")
    assert_error(await api.put(f"{targets}/{running.id}", {"status": "cancelled"}), 400,
                 "running", "cancel its command")
    assert_error(await api.put(f"{targets}/{done.id}", {"device_name": "renamed"}), 400,
                 "device_name")
    same = await api.ok("PUT", f"{targets}/{done.id}", {"device_name": "dev-0"})
    assert same["status"] == "success"  # nothing to do, nothing done

    assert seeded.command is not None
    command = f"{targets}/{running.id}/command/{seeded.command.id}"
    assert_error(await api.put(command, {"request_status": "success"}), 400, "cancelled")
    assert_error(await api.put(command, {}), 400, "request_status")
    assert_error(await api.put(f"{targets}/{done.id}/command/{seeded.command.id}",
                               {"request_status": "cancelled"}), 404)
    assert_error(await api.post(f"{targets}/{running.id}/command", {}), 400, "active command")

    assert_error(await api.post(targets, {"target_id": str(uuid.uuid4())}), 400, "target_id")
    assert_error(await api.post(targets, {}), 400, "target_id")

    assert_error(await api.post(f"/commands/{seeded.command.id}/events", {"status": "done"}),
                 400, "inprogress")
    assert_error(await api.post(f"/commands/{uuid.uuid4()}/events", {"status": "success"}), 404)


async def test_delete_run_only_when_finished(api: Api, seeded: Seeded, other_api: Api):
    finished, waiting = seeded.runs[0], seeded.runs[1]
    path = f"/pipelines/{finished.pipeline_id}/runs"
    assert_error(await api.delete(f"{path}/{waiting.id}"), 400, "waiting")
    assert_error(await other_api.delete(f"{path}/{finished.id}"), 404)
    deleted = await api.ok("DELETE", f"{path}/{finished.id}")
    assert deleted["id"] == str(finished.id)
    assert_error(await api.get(f"{path}/{finished.id}"), 404)
    assert_error(await api.get(f"/runs/{finished.id}/stageruns"), 404)
    assert (await api.ok("GET", "/runs"))["count"] == 3


async def test_runs_of_other_enterprises_are_invisible(api: Api, seeded: Seeded, other_api: Api):
    run, stage_run, target = seeded.runs[0], seeded.stage_runs[0], seeded.target_runs[2]
    assert (await other_api.ok("GET", "/runs"))["count"] == 0
    for path in [f"/pipelines/{run.pipeline_id}/runs/{run.id}", f"/runs/{run.id}/stageruns",
                 f"/runs/{run.id}/stageruns/{stage_run.id}",
                 f"/stageruns/{stage_run.id}/operations",
                 f"/stageruns/{stage_run.id}/targetruns",
                 f"/stageruns/{stage_run.id}/targetruns/{target.id}",
                 f"/stageruns/{stage_run.id}/targetruns/{target.id}/command"]:
        assert_error(await other_api.get(path), 404)
    assert_error(await other_api.put(f"/runs/{run.id}/stageruns/{stage_run.id}",
                                     {"status": "cancelled"}), 404)


async def test_a_run_by_its_id_alone_and_by_its_number(api: Api, seeded: Seeded,
                                                       other_api: Api):
    run = seeded.runs[1]
    by_id = await api.ok("GET", f"/runs/{run.id}")
    assert by_id == await api.ok("GET", f"/pipelines/{run.pipeline_id}/runs/{run.id}")
    assert (by_id["pipeline_name"], by_id["run_number"]) == ("alpha", 2)
    by_number = await api.ok("GET", f"/pipelines/{run.pipeline_id}/runs?run_number=2")
    assert [r["id"] for r in by_number["results"]] == [str(run.id)]
    none = await api.ok("GET", f"/pipelines/{run.pipeline_id}/runs?run_number=9")
    assert none["count"] == 0
    assert_error(await api.get(f"/pipelines/{run.pipeline_id}/runs?run_number=0"), 400,
                 "run_number")
    assert_error(await api.get(f"/runs/{uuid.uuid4()}"), 404)
    assert_error(await other_api.get(f"/runs/{run.id}"), 404)  # another enterprise's: unseen
