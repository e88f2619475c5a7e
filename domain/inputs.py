"""Run inputs: the values a run is started with, and how operation args refer to them.

A reference is `{{ inputs.NAME }}` (spaces inside the braces optional), NAME being letters,
digits and `_`, not starting with a digit, at most 64 characters:
- an arg string that is exactly one reference becomes the input's value as it is (a number
  stays a number, an object an object);
- a reference inside a longer string is replaced by the value's text: a string as it is,
  anything else as compact JSON;
- references are looked for in every string value of the args, at any depth (never in keys);
- text that starts like a reference (`{{ inputs.`) but is not one is refused, so a typo is
  never sent to a device as it is.

Plain inputs are applied when the run is created; sensitive ones only when a command goes to
the gateway (the stored args keep their reference), so every function here is pure and can be
applied again to the same args.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.bounds import UnsafeValue, check_json
from domain.schemas import PipelineSnapshot

MAX_INPUTS = 100
MAX_NAME_LENGTH = 64
MAX_INPUT_DEPTH = 8  # an input value nests at most this deep (args take 32 in all)
MAX_SENSITIVE_LENGTH = 8_192
NAME = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_NAME_LENGTH - 1}}}")
# Anything that opens like a reference, up to the first closing braces: checked as a whole.
_REFERENCE = re.compile(r"\{\{\s*inputs\.(.*?)\s*\}\}", re.DOTALL)
_OPENING = re.compile(r"\{\{\s*inputs\.")


class InvalidInput(ValueError):
    """A run's inputs or an arg's reference that cannot be applied; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def alias(name: str) -> str:
    """What a run shows, and its stored args keep, for a sensitive input."""
    return f"{{{{ inputs.{name} }}}}"


@dataclass(repr=False)
class SensitiveValues:
    """A run's sensitive inputs on their way to the gateway. Its repr never shows a value, and
    every payload carrying one is encrypted by the payload codec (workflows/codec.py)."""

    values: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"SensitiveValues(names={sorted(self.values)})"

    __str__ = __repr__


def carries_secrets(value: Any) -> bool:
    """True for SensitiveValues with a value, or a message whose `sensitive` field is one."""
    if not isinstance(value, SensitiveValues):
        value = getattr(value, "sensitive", None)
    return isinstance(value, SensitiveValues) and bool(value.values)


# ---- checking the inputs a run is started with ----------------------------------------------
def check_names(names: Mapping[str, Any], field_name: str) -> None:
    if len(names) > MAX_INPUTS:
        raise InvalidInput(field_name, f"at most {MAX_INPUTS} inputs (got {len(names)})")
    for name in names:
        if not NAME.fullmatch(name):
            raise InvalidInput(f"{field_name}.{name}"[:200], (
                f"{name!r} is not an input name (letters, digits and _, not starting with a "
                f"digit, at most {MAX_NAME_LENGTH} characters)")[:300])


def check_inputs(plain: Mapping[str, Any], sensitive: Mapping[str, str]) -> None:
    """InvalidInput unless both sets of inputs can be a run's (never quoting a sensitive
    value in the message)."""
    check_names(plain, "input_values")
    check_names(sensitive, "sensitive_input_values")
    for name, value in plain.items():
        try:
            check_json(value, f"input_values.{name}", MAX_INPUT_DEPTH)
        except UnsafeValue as exc:
            raise InvalidInput(exc.field, str(exc)) from None
    for name, value in sensitive.items():
        where = f"sensitive_input_values.{name}"
        if not isinstance(value, str):
            raise InvalidInput(where, "a sensitive input is a string")
        if len(value) > MAX_SENSITIVE_LENGTH or "\x00" in value:
            raise InvalidInput(where, f"a sensitive input is at most {MAX_SENSITIVE_LENGTH} "
                               "characters, without NUL")
    both = sorted(set(plain) & set(sensitive))
    if both:
        raise InvalidInput(f"sensitive_input_values.{both[0]}", (
            f"{', '.join(both)} given as both a plain and a sensitive input: each name is one "
            "or the other"))


# ---- references in args ---------------------------------------------------------------------
def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from _strings(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _strings(child, f"{path}.{index}" if path else str(index))


def references(args: Mapping[str, Any], where: str = "args") -> Iterator[tuple[str, str]]:
    """(name, dotted place) of every reference in the args; InvalidInput for a malformed one."""
    for path, text in _strings(dict(args), ""):
        place = f"{where}.{path}" if path else where
        found = 0
        for match in _REFERENCE.finditer(text):
            found += 1
            name = match.group(1)
            if not NAME.fullmatch(name):
                raise InvalidInput(place, f"{match.group(0)[:80]!r} is not a reference to an "
                                   "input: write {{ inputs.NAME }}, NAME of letters, digits "
                                   "and _")
            yield name, place
        if len(_OPENING.findall(text)) != found:
            raise InvalidInput(place, "an input reference is not closed: write "
                               "{{ inputs.NAME }}")


def unknown_references(args: Mapping[str, Any], known: set[str],
                       where: str = "args") -> list[tuple[str, str]]:
    return [(name, place) for name, place in references(args, where) if name not in known]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _apply(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole is not None and whole.group(1) in values:
            return values[whole.group(1)]
        return _REFERENCE.sub(
            lambda m: _text(values[m.group(1)]) if m.group(1) in values else m.group(0), value)
    if isinstance(value, dict):
        return {key: _apply(child, values) for key, child in value.items()}
    if isinstance(value, list):
        return [_apply(child, values) for child in value]
    return value


def apply_inputs(args: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The args with every reference to one of `values` replaced; other references (a
    sensitive input's, applied later) stay as they are. Pure: the args are not changed."""
    if not values:
        return dict(args)
    return _apply(dict(args), values)  # type: ignore[no-any-return]


def apply_to_snapshot(snapshot: PipelineSnapshot, plain: Mapping[str, Any],
                      sensitive_names: set[str]) -> PipelineSnapshot:
    """The snapshot with the plain inputs applied to every operation's args, after checking
    that every reference names an input of the run: InvalidInput naming the first unknown one
    and where it appears. Sensitive references stay (applied at dispatch). Pure."""
    known = set(plain) | sensitive_names
    stages = []
    for stage in snapshot.stages:
        operations = []
        for number, operation in enumerate(stage.operations, start=1):
            where = (f"stage {stage.name!r}, operation {number} ({operation.operation_type}), "
                     "args")
            try:
                unknown = unknown_references(operation.args, known, where)
            except InvalidInput as bad:
                raise InvalidInput("input_values", bad.message + f" (at {bad.field})") from None
            if unknown:
                name, place = unknown[0]
                given = ", ".join(sorted(known)) or "none"
                raise InvalidInput(f"input_values.{name}", (
                    f"unknown input {name!r}, referred to in {place}: the run was given no "
                    f"input of that name (its inputs: {given})"))
            operations.append(operation.model_copy(
                update={"args": apply_inputs(operation.args, plain)}))
        stages.append(stage.model_copy(update={"operations": operations}))
    return snapshot.model_copy(update={"stages": stages})
