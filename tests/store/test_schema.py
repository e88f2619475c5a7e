"""The schema check at start-up: an old database is refused with what it lacks."""

from __future__ import annotations

import pytest
import sqlalchemy

from store.db import make_engine
from store.schema import SchemaOutOfDate, create_schema


def test_a_database_from_an_older_fleetpipe_is_refused_with_what_it_lacks(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    create_schema(engine)
    with engine.begin() as conn:  # as a store made before target runs could be sent again
        conn.execute(sqlalchemy.text("ALTER TABLE target_run DROP COLUMN retry_of"))
    with pytest.raises(SchemaOutOfDate) as refused:
        create_schema(engine)
    assert "target_run lacks retry_of" in str(refused.value)
    assert "old.db" in str(refused.value)
    engine.dispose()


def test_a_current_database_passes_again(engine):
    create_schema(engine)  # the fixture made it already: a second start changes nothing
