"""GET and PATCH /v1/runs/{run_id}: a target run as the "update run" document writes it."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import CallerDep, ControlDep, SessionDep
from api.peers.update_run.present import update_run
from api.peers.update_run.schemas import RunResponse, RunUpdate
from domain.update_run import DeviceReport
from store.runs.update_run import read_update_run

router = APIRouter(tags=["Runs"])
ONE = "/runs/{run_id}"
_ERRORS: dict[int | str, dict] = {
    401: {"description": "Missing, unknown or revoked API key"},
    404: {"description": "No run with this id in the caller's organization"},
    409: {"description": "The run's state refuses the report (the detail names its status)"},
}


@router.get(ONE, name="get_run", summary="Get Run", response_model=RunResponse,
            responses=_ERRORS)
def get_run(run_id: UUID, session: SessionDep, caller: CallerDep) -> JSONResponse:
    """A target run: one operation on one device."""
    return JSONResponse(update_run(read_update_run(session, caller.enterprise_id, run_id)))


@router.patch(ONE, name="update_run", summary="Update Run", response_model=RunResponse,
              responses={**_ERRORS, 503: {"description": "Recorded, not yet passed to the run"}})
async def patch_run(run_id: UUID, body: RunUpdate, caller: CallerDep,
                    control: ControlDep) -> JSONResponse:
    """A device's report on its run, recorded as an event of the run's command and passed to
    the run (which decides its status from it). `error`, `output_attachment_ids` and
    `run_message_history` are appended, `output_data` merged; `status` maps to the command's
    (running: inprogress, success, error: failure, cancelled)."""
    report = DeviceReport(
        status=body.status.value if body.status is not None else None,
        error=body.error or [], output_data=body.output_data or {},
        output_attachment_ids=body.output_attachment_ids or [],
        run_message_history=body.run_message_history or [], input_values=body.input_values)
    view = await control.report_on_target_run(caller, run_id, report)
    return JSONResponse(update_run(view))
