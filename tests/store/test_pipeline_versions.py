"""A pipeline's version: 1 when made, +1 per transaction that edits it or what it is made of;
a run records the version its snapshot was taken from."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import select

from store.db import transaction
from store.definitions.pipelines import Pipeline, Stage
from store.definitions.tenants import ensure_enterprise
from store.definitions.whole_pipelines import PipelineCreate, create_pipeline
from store.runs.creation import create_pipeline_run


def _version(engine: Engine, pipeline_id) -> int:  # noqa: ANN001
    with transaction(engine) as session:
        pipeline = session.get(Pipeline, pipeline_id)
        assert pipeline is not None
        return pipeline.version


def test_every_edit_counts_once_and_runs_record_the_version(sqlite_engine: Engine) -> None:
    enterprise = ensure_enterprise(sqlite_engine, "versions")
    with transaction(sqlite_engine) as session:
        pipeline = create_pipeline(session, enterprise.id, PipelineCreate(name="p"))
        session.flush()
        session.add(Stage(pipeline_id=pipeline.id, name="first", order=1,
                          timeout_seconds=60))  # made with it: still version 1
    assert _version(sqlite_engine, pipeline.id) == 1
    assert create_pipeline_run(sqlite_engine, enterprise.id, pipeline.id).pipeline_version == 1

    with transaction(sqlite_engine) as session:  # one edit of two rows, flushed twice
        row = session.get(Pipeline, pipeline.id)
        assert row is not None
        row.description = "edited"
        session.flush()
        session.add(Stage(pipeline_id=pipeline.id, name="second", order=2, timeout_seconds=60))
    assert _version(sqlite_engine, pipeline.id) == 2

    with transaction(sqlite_engine) as session:  # an edit of a stage alone
        row_stage = session.exec(select(Stage).where(Stage.pipeline_id == pipeline.id)).first()
        assert row_stage is not None
        row_stage.name = "renamed"
    assert _version(sqlite_engine, pipeline.id) == 3
    run = create_pipeline_run(sqlite_engine, enterprise.id, pipeline.id)
    assert run.pipeline_version == 3 and run.run_number == 2  # numbering is no edit
    assert _version(sqlite_engine, pipeline.id) == 3
