"""How an update's failures become answers: an update the run accepted and then closed on
(Temporal's AcceptedUpdateCompletedWorkflow, found by the fuzzer when a cancel raced the run's
end) is still being applied as far as the caller knows (a 202), never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from control.errors import ActionRefused
from control.updates import ACCEPTED_THEN_CLOSED, INVALID_ACTION, answer_deadline, send_update
from workflows.pipeline_run import PipelineRunWorkflow


class FailingClient:
    """A client whose every update fails with `cause` (the answer a real server gives)."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause

    def get_workflow_handle(self, workflow_id: str) -> Any:
        cause = self.cause

        class Handle:
            async def execute_update(self, *args: Any, **kwargs: Any) -> Any:
                raise WorkflowUpdateFailedError(cause)

        return Handle()


def _refused() -> ActionRefused:
    return ActionRefused("status", "closed")


async def test_an_update_accepted_by_a_run_that_then_closed_is_still_applying() -> None:
    client = FailingClient(ApplicationError("completed before the update",
                                            type=ACCEPTED_THEN_CLOSED))
    sent = await send_update(client, "wf", PipelineRunWorkflow.set_run_status, None,  # type: ignore[arg-type]
                             deadline=answer_deadline(), closed=_refused)
    assert sent.answered is False and sent.result is None


async def test_a_validators_refusal_is_an_action_refused_and_others_propagate() -> None:
    refusing = FailingClient(ApplicationError("not now", type=INVALID_ACTION))
    with pytest.raises(ActionRefused, match="not now"):
        await send_update(refusing, "wf", PipelineRunWorkflow.set_run_status, None,  # type: ignore[arg-type]
                          deadline=answer_deadline(), closed=_refused)
    broken = FailingClient(ApplicationError("boom", type="SomethingElse"))
    with pytest.raises(WorkflowUpdateFailedError):
        await send_update(broken, "wf", PipelineRunWorkflow.set_run_status, None,  # type: ignore[arg-type]
                          deadline=answer_deadline(), closed=_refused)
