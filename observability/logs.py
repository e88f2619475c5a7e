"""Logging for every fleetpipe process: human text (the default) or JSON lines.

The ids a line is about (pipeline run, stage run, target run, command, request) travel in a
context variable, so a store or gateway call deep inside an activity logs them without being
handed them. Credentials never reach a line: a filter masks any `Token`/`Bearer` value.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")
# The fields a line may carry about what it concerns (bounded names, never free text).
ID_FIELDS = ("pipeline_run_id", "stage_run_id", "target_run_id", "command_id", "request_id")

_fields: ContextVar[dict[str, str] | None] = ContextVar("fleetpipe_log_fields", default=None)
# `Token <key>` / `Bearer <key>` (an Authorization value), and the shape of fleetpipe's own
# keys (store.definitions.tenants.KEY_PREFIX + a random tail).
_SECRET = re.compile(r"(?i)\b(token|bearer)(\s+)[A-Za-z0-9_\-.~+/=]{16,}")
_KEY = re.compile(r"\bfp_[A-Za-z0-9_\-]{16,}")
# Attributes every LogRecord has; anything else on a record came as `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


@contextmanager
def log_fields(**fields: str | None) -> Iterator[None]:
    """Lines logged inside the block (in this task) carry these ids; empty ones are left out."""
    merged = {**(_fields.get() or {}), **{k: str(v) for k, v in fields.items() if v}}
    token = _fields.set(merged)
    try:
        yield
    finally:
        _fields.reset(token)


def current_fields() -> dict[str, str]:
    return dict(_fields.get() or {})


def mask_secrets(text: str) -> str:
    return _KEY.sub("[redacted]", _SECRET.sub(r"\1\2[redacted]", text))


class ContextFields(logging.Filter):
    """Copies the context's ids onto the record and masks credentials in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_fields.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The human line, with the ids it concerns appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{name}={getattr(record, name)}" for name in ID_FIELDS
                       if getattr(record, name, None))
        return f"{text} [{ids}]" if ids else text


def make_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(LOG_FORMATS)} "
                         "(set FLEETPIPE_LOG_FORMAT)")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFields())
    return handler


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """The root logger writes `log_format` lines to stderr; uvicorn's loggers go through it
    too, so a JSON process writes nothing but JSON."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(log_format))
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
