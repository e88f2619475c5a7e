"""Log lines: the ids from the context as fields, in text or JSON."""

from __future__ import annotations

import io
import json
import logging

import pytest

from observability.logs import log_fields, make_handler


def test_json_line_carries_the_context_ids_and_extras(every_line: io.StringIO) -> None:
    log = logging.getLogger("fleetpipe.test")
    with log_fields(pipeline_run_id="run-1", stage_run_id="stage-2"):
        with log_fields(target_run_id="target-3", command_id=None):
            log.warning("command %s refused", "c-4", extra={"gateway": "simulated"})
        log.info("after the inner block")
    log.info("outside")
    first, second, third = (json.loads(line) for line in every_line.getvalue().splitlines())
    assert first["message"] == "command c-4 refused" and first["level"] == "warning"
    assert first["logger"] == "fleetpipe.test" and first["gateway"] == "simulated"
    assert (first["pipeline_run_id"], first["stage_run_id"], first["target_run_id"]) == (
        "run-1", "stage-2", "target-3")
    assert "command_id" not in first  # empty ids are left out
    assert "target_run_id" not in second and second["stage_run_id"] == "stage-2"
    assert not {"pipeline_run_id", "stage_run_id"} & set(third)


def test_text_lines_name_the_ids_too() -> None:
    stream = io.StringIO()
    log = logging.getLogger("fleetpipe.test.text")
    log.addHandler(make_handler("text", stream))
    log.propagate = False
    try:
        with log_fields(target_run_id="target-3"):
            log.warning("slow device")
    finally:
        log.handlers.clear()
        log.propagate = True
    line = stream.getvalue().strip()
    assert line.endswith("WARNING fleetpipe.test.text slow device [target_run_id=target-3]")


def test_an_unknown_log_format_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="FLEETPIPE_LOG_FORMAT"):
        make_handler("yaml")
