"""The bounds every input is held to, taken from the store's own limits, declared once.

- Integers fit a 32-bit column (PostgreSQL `integer`; SQLite takes 64 bits) and are strict: a
  JSON `true` is not the number 1.
- Durations keep `now + timeout` a representable date for the workflows: a stage (and each of its
  target runs) at most a year, a whole pipeline run at most three years.
- Floats are finite (NaN and Infinity are not numbers a rule can compare against).
- Free-form JSON (operation args, event output) nests at most MAX_JSON_DEPTH levels and, like
  every text, holds no NUL character (PostgreSQL cannot store one in text).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field, Strict, ValidationInfo

INT32_MAX = 2**31 - 1
YEAR_SECONDS = 365 * 24 * 3600
MAX_STAGE_TIMEOUT_SECONDS = YEAR_SECONDS
MAX_PIPELINE_TIMEOUT_SECONDS = 3 * YEAR_SECONDS
# How far a list can be paged: the store takes more, but no list holds 2^31 rows.
MAX_OFFSET = INT32_MAX
MAX_JSON_DEPTH = 32  # operation args, device-event output
MAX_BODY_DEPTH = 64  # a whole request body, its free-form parts included

# A position in an ordered list (a stage's or an operation's order, a gateway's sequence).
Position = Annotated[int, Strict(), Field(ge=0, le=INT32_MAX)]
# A count of things (devices, retries, a rate): at least one.
Count = Annotated[int, Strict(), Field(ge=1, le=INT32_MAX)]
StageTimeout = Annotated[int, Strict(), Field(ge=1, le=MAX_STAGE_TIMEOUT_SECONDS)]
PipelineTimeout = Annotated[int, Strict(), Field(ge=1, le=MAX_PIPELINE_TIMEOUT_SECONDS)]
# A finite number; its range is set where it is used (a percentage, a factor).
Finite = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class UnsafeValue(ValueError):
    """A value the store or the workflows cannot take; `field` names it (dotted for nesting)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _join(field: str, key: object) -> str:
    return f"{field}.{key}" if field else str(key)


def check_json(value: Any, field: str = "", max_depth: int = MAX_JSON_DEPTH) -> None:
    """UnsafeValue for the first NUL in a key or a string, non-finite number, or level past
    `max_depth` (a scalar is level 0; each object or array adds one) inside `value`."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth + 1 > max_depth:
                raise UnsafeValue(path or "body",
                                  f"{path or 'body'}: nested deeper than {max_depth} levels")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and "\x00" in key:
                    raise UnsafeValue(path or "body",
                                      f"{path or 'body'}: a key holds a NUL character")
                stack.append((child, _join(path, key), depth + 1))
        elif isinstance(item, str):
            if "\x00" in item:
                raise UnsafeValue(path or "body",
                                  f"{path or 'body'}: text holds a NUL character (\\u0000)")
        elif isinstance(item, float) and not math.isfinite(item):
            raise UnsafeValue(path or "body",
                              f"{path or 'body'}: {item} is not a finite number")


def _checked_json(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    try:
        check_json(value, info.field_name or "")
    except UnsafeValue as exc:
        raise ValueError(str(exc)) from None
    return value


# A free-form JSON object (operation args, event output), held to check_json.
JsonObject = Annotated[dict[str, Any], AfterValidator(_checked_json)]
