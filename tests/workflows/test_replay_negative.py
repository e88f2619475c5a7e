"""The replay gate can fail: a committed history replayed on a deliberately changed workflow
(same type name, one timer before the original's first command) is reported non-deterministic,
while the same history on today's workflow replays cleanly."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.test_replay import HISTORIES
from worker import WORKFLOWS
from workflows import names
from workflows.converter import DATA_CONVERTER
from workflows.messages import PipelineRunInput, PipelineRunResult
from workflows.pipeline_run import PipelineRunWorkflow


# Unsandboxed: the sandbox would re-import this test module (and pytest) for every run.
@workflow.defn(name=names.PIPELINE_RUN_WORKFLOW, sandboxed=False)
class PipelineRunWithExtraTimer(PipelineRunWorkflow):
    """PipelineRunWorkflow with a timer its recorded histories do not have, first thing."""

    @workflow.run
    async def run(self, request: PipelineRunInput) -> PipelineRunResult:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(request)


def _committed_pipeline_history() -> WorkflowHistory:
    path = sorted(HISTORIES.glob(f"{names.PIPELINE_RUN_WORKFLOW}-*.json"))[0]
    saved = json.loads(path.read_text())
    return WorkflowHistory.from_json(saved["workflow_id"], saved["history"])


async def test_a_changed_workflow_fails_to_replay_a_committed_history():
    history = _committed_pipeline_history()
    today = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    await today.replay_workflow(history)  # today's code: clean
    changed = Replayer(data_converter=DATA_CONVERTER, workflows=[
        PipelineRunWithExtraTimer if w is PipelineRunWorkflow else w for w in WORKFLOWS])
    with pytest.raises(workflow.NondeterminismError):
        await changed.replay_workflow(history)
    result = await changed.replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError)
