"""Rows for the run-control tests: the devices tests' maker of devices and commands."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from tests.devices.conftest import Rows


@pytest.fixture
def sqlite_rows(sqlite_engine: Engine) -> Rows:
    return Rows(sqlite_engine)
