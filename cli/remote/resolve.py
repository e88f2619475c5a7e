"""Names an operator types, turned into the API's ids: a pipeline by name (or id), a run as
`PIPELINE#N` (its run number), `PIPELINE` (its latest run) or a run id, a stage run by stage name
or order."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from cli.remote.client import Api, ApiError, CliError

RUN_FORMS = "PIPELINE#N (run number N of that pipeline), PIPELINE (its latest run) or a run id"


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def pipelines_named(api: Api, name: str) -> list[dict[str, Any]]:
    return list(api.pages("/pipelines", name=name))


def find_pipeline(api: Api, ref: str) -> dict[str, Any]:
    """The one pipeline with this name (or id); a clear refusal when none or several."""
    pipeline_id = _uuid(ref)
    if pipeline_id is not None:
        try:
            return api.get(f"/pipelines/{pipeline_id}")
        except ApiError as exc:
            if exc.status != 404:
                raise
    found = pipelines_named(api, ref)
    if not found:
        raise CliError(f"no pipeline named {ref!r} (see the API's GET /pipelines, or create it "
                       "with `fleetpipe apply -f FILE`)")
    if len(found) > 1:
        ids = ", ".join(p["id"] for p in found)
        raise CliError(f"{len(found)} pipelines are named {ref!r} ({ids}): name one by its id")
    return found[0]


def find_run(api: Api, ref: str) -> dict[str, Any]:
    """A pipeline run from one of RUN_FORMS."""
    run_id = _uuid(ref)
    if run_id is not None:
        try:
            return api.get(f"/runs/{run_id}")
        except ApiError as exc:
            if exc.status == 404:
                raise CliError(f"no run with id {ref}") from exc
            raise
    name, _, number = ref.rpartition("#") if "#" in ref else (ref, "", "")
    if "#" in ref and not number.isdigit():
        raise CliError(f"{ref!r} is not a run: give {RUN_FORMS}")
    pipeline = find_pipeline(api, name)
    runs_path = f"/pipelines/{pipeline['id']}/runs"
    if number:
        found = api.get(runs_path, run_number=int(number), limit=1)["results"]
        if not found:
            raise CliError(f"pipeline {name!r} has no run #{number}")
        return found[0]
    found = api.get(runs_path, ordering="-run_number", limit=1)["results"]
    if not found:
        raise CliError(f"pipeline {name!r} has no runs yet: start one with "
                       f"`fleetpipe runs start {name}`")
    return found[0]


def run_label(run: dict[str, Any]) -> str:
    """The readable form of a run, as the commands accept it back."""
    return f"{run['pipeline_name']}#{run['run_number']}"


def stage_runs(api: Api, run: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(api.pages(f"/runs/{run['id']}/stageruns"), key=lambda s: s["order"])


def find_stage_run(stages: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    """A stage run by its stage's name, its order, or its id."""
    for stage in stages:
        if ref in (stage["stage_name"], stage["id"]) or ref == str(stage["order"]):
            return stage
    names = ", ".join(s["stage_name"] for s in stages) or "none"
    raise CliError(f"the run has no stage {ref!r} (its stages: {names})")
