"""The pipeline file `fleetpipe apply -f` reads: YAML read with the line of every value, checked
whole by pydantic models, each problem reported as `FILE:LINE: FIELD: what is wrong`.

```yaml
name: demo-rollout
description: ...
timeout_seconds: 1814400          # optional; the whole run, waiting included
stages:
  - name: canary
    trigger: automatic            # optional; default automatic first, then manual
    timeout_seconds: 604800       # optional
    rollout: {maximum_per_minute: 60}
    targets: {devices: [demo-device-1], groups: [lab]}
    operations:
      - type: INSTALL
        args: {package_name: com.example.fleetapp, app_version: 1.0.0}
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cli.remote.client import CliError
from domain.bounds import MAX_PIPELINE_TIMEOUT_SECONDS, MAX_STAGE_TIMEOUT_SECONDS
from domain.operations import OPERATION_TYPES, InvalidOperation, validate_operation
from domain.schemas import RolloutConfig

Path_ = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetsSpec(_Strict):
    devices: list[str] = Field(default_factory=list, description="Device names.")
    groups: list[str] = Field(default_factory=list, description="Device group names.")


class OperationSpec(_Strict):
    type: str
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        normalised = value.strip().upper()
        if normalised not in OPERATION_TYPES:
            raise ValueError(f"{value!r} is not an operation type; allowed: "
                             + ", ".join(OPERATION_TYPES))
        return normalised


class StageSpec(_Strict):
    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=10_000)
    trigger: Literal["manual", "automatic"] | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_STAGE_TIMEOUT_SECONDS)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    targets: TargetsSpec = Field(default_factory=TargetsSpec)
    operations: list[OperationSpec] = Field(default_factory=list)

    @field_validator("trigger", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class PipelineSpec(_Strict):
    name: str = Field(min_length=1, max_length=255)
    description: str = Field(default="", max_length=10_000)
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_PIPELINE_TIMEOUT_SECONDS)
    stages: list[StageSpec] = Field(default_factory=list)


class SpecError(CliError):
    """Every problem of a pipeline file, one `FILE:LINE: FIELD: message` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class LoadedSpec:
    spec: PipelineSpec
    path: Path
    lines: dict[Path_, int]

    def where(self, *at: str | int) -> str:
        return f"{self.path}:{_line_of(self.lines, tuple(at))}"


def load_spec(path: Path) -> LoadedSpec:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError([f"{path}: {exc.strerror or exc}"]) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"{path}{line}: not valid YAML: {problem}"]) from exc
    if node is None:
        raise SpecError([f"{path}: the file is empty"])
    lines: dict[Path_, int] = {}
    data = _plain(node, (), lines)
    if not isinstance(data, dict):
        raise SpecError([f"{path}:1: the file must be a mapping with name and stages"])
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([_problem(path, lines, error) for error in exc.errors()]) from None
    problems = _semantic_problems(spec, path, lines)
    if problems:
        raise SpecError(problems)
    return LoadedSpec(spec=spec, path=path, lines=lines)


def _plain(node: yaml.Node, at: Path_, lines: dict[Path_, int]) -> Any:
    """The node as plain Python values, noting the line of each path on the way."""
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            result[key] = _plain(value_node, (*at, key), lines)
            lines[(*at, key)] = key_node.start_mark.line + 1  # a field's line is its key's
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*at, index), lines) for index, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _line_of(lines: dict[Path_, int], at: Path_) -> int:
    while at and at not in lines:
        at = at[:-1]
    return lines.get(at, 1)


def _problem(path: Path, lines: dict[Path_, int], error: Any) -> str:
    # Pydantic adds the validator's name for typed unions (e.g. "function-after"): drop those.
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
    field = ".".join(str(part) for part in loc) or "(top)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "not a field here (a typo?)"
    return f"{path}:{_line_of(lines, loc)}: {field}: {message}"


def _semantic_problems(spec: PipelineSpec, path: Path, lines: dict[Path_, int]) -> list[str]:
    """What the models cannot see alone: repeated stage names (apply matches stages by name),
    and each operation's arguments for its type."""
    problems = []
    seen: dict[str, int] = {}
    for index, stage in enumerate(spec.stages):
        at: Path_ = ("stages", index, "name")
        if stage.name in seen:
            problems.append(f"{path}:{_line_of(lines, at)}: stages.{index}.name: "
                            f"{stage.name!r} is already stage {seen[stage.name]}: stage names "
                            "must be unique in a pipeline file")
        seen.setdefault(stage.name, index)
        for op_index, operation in enumerate(stage.operations):
            try:
                validate_operation(operation.type, operation.args)
            except InvalidOperation as exc:
                op_at: Path_ = ("stages", index, "operations", op_index, "args")
                problems.append(f"{path}:{_line_of(lines, op_at)}: "
                                f"stages.{index}.operations.{op_index}.args: {exc}")
    return problems
