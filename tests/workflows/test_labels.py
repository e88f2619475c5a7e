"""How a run is named in the Web UI: its summary line and its search attributes (no server)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

from workflows import labels, names
from workflows.messages import RunLabels

RUN = RunLabels(enterprise_name="demo", enterprise_id="e-1", pipeline_name="demo-rollout",
                run_number=12)


def test_each_level_reads_down_from_the_pipeline_run():
    stage = RunLabels(**{**RUN.__dict__, "stage_name": "canary", "stage_order": 2})
    target = RunLabels(**{**stage.__dict__, "device_name": "pixel-07", "operation": "1 INSTALL"})
    assert labels.summary(RUN) == "demo-rollout #12"
    assert labels.summary(stage) == "demo-rollout #12 · stage 2 canary"
    assert labels.summary(target) == (
        "demo-rollout #12 · stage 2 canary · device pixel-07 · op 1 INSTALL")


def test_a_device_without_a_name_shows_its_id_and_an_unnamed_run_only_its_own_part():
    assert labels.summary(RunLabels(operation="2 REBOOT"), device_id="d-9") == (
        "device d-9 · op 2 REBOOT")


def test_attributes_name_every_level_and_leave_out_what_is_unknown():
    target = RunLabels(**{**RUN.__dict__, "stage_name": "canary", "device_name": "pixel-07"})
    found = {pair.key.name: pair.value
             for pair in labels.search_attributes(labels.TARGET, target, "pending")}
    assert found == {names.SA_KIND: "target", names.SA_STATUS: "pending",
                     names.SA_ENTERPRISE: "demo", names.SA_ENTERPRISE_ID: "e-1",
                     names.SA_PIPELINE: "demo-rollout", names.SA_RUN_NUMBER: 12,
                     names.SA_STAGE: "canary", names.SA_DEVICE: "pixel-07"}
    pipeline = {pair.key.name for pair in labels.search_attributes(labels.PIPELINE, RUN, "x")}
    assert names.SA_STAGE not in pipeline and names.SA_DEVICE not in pipeline
    assert set(names.SEARCH_ATTRIBUTES) >= set(found)
    lean = {pair.key.name for pair in labels.search_attributes(labels.TARGET, target, None)}
    assert lean == set(found) - {names.SA_STATUS}


def test_the_status_upsert_sets_only_the_status():
    [update] = labels.status_update("failure")
    assert update.key == SearchAttributeKey.for_keyword(names.SA_STATUS)
    assert update.value == "failure"
