"""Run inputs: how `{{ inputs.NAME }}` references are found, checked and filled."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.inputs import (
    InvalidInput,
    SensitiveValues,
    alias,
    apply_inputs,
    apply_to_snapshot,
    carries_secrets,
    check_inputs,
    references,
)
from domain.schemas import OperationSnapshot, PipelineSnapshot, StageSnapshot


def test_a_whole_string_reference_keeps_the_value_type_and_an_embedded_one_its_text():
    args = {"version": "{{ inputs.v }}", "url": "https://x/{{inputs.v}}/{{ inputs.cfg }}.apk",
            "nested": [{"n": "{{ inputs.n }}"}], "n": 7, "keep": "{{ inputs.secret }}"}
    applied = apply_inputs(args, {"v": "1.2", "cfg": {"a": 1}, "n": 3})
    assert applied == {"version": "1.2", "url": 'https://x/1.2/{"a":1}.apk',
                       "nested": [{"n": 3}], "n": 7, "keep": "{{ inputs.secret }}"}
    assert args["version"] == "{{ inputs.v }}"  # pure: the given args are unchanged
    assert apply_inputs(applied, {"v": "other"}) == applied  # applying again changes nothing


def test_references_are_found_at_any_depth_with_their_place():
    found = list(references({"a": {"b": ["x {{ inputs.one }} {{inputs.two}}"]}}, "args"))
    assert found == [("one", "args.a.b.0"), ("two", "args.a.b.0")]


@pytest.mark.parametrize("text", ["{{ inputs.bad-name }}", "{{ inputs.9lives }}",
                                  "{{ inputs.unclosed", "x {{ inputs.a }} {{ inputs."])
def test_a_malformed_reference_is_refused_naming_its_place(text):
    with pytest.raises(InvalidInput) as refused:
        list(references({"k": text}, "args"))
    assert refused.value.field == "args.k"


def test_inputs_are_checked_and_a_sensitive_value_is_never_quoted():
    check_inputs({"v": {"deep": [1, 2]}}, {"token": "s3cr3t"})
    with pytest.raises(InvalidInput) as both:
        check_inputs({"token": "x"}, {"token": "s3cr3t"})
    assert both.value.field == "sensitive_input_values.token"
    assert "both a plain and a sensitive" in str(both.value)
    assert "s3cr3t" not in str(both.value)
    with pytest.raises(InvalidInput) as bad_name:
        check_inputs({"no spaces": 1}, {})
    assert bad_name.value.field == "input_values.no spaces"
    with pytest.raises(InvalidInput) as too_deep:
        check_inputs({"v": [[[[[[[[[1]]]]]]]]]}, {})
    assert "nested deeper" in str(too_deep.value)
    with pytest.raises(InvalidInput) as not_text:
        check_inputs({}, {"pin": 1234})  # type: ignore[dict-item]
    assert "1234" not in str(not_text.value)


def _snapshot(*args: dict) -> PipelineSnapshot:
    return PipelineSnapshot(pipeline_id=uuid4(), name="p", timeout_seconds=60, stages=[
        StageSnapshot(stage_id=uuid4(), name="canary", order=0, timeout_seconds=60, 
                      trigger="automatic",
                      operations=[OperationSnapshot(operation_type="INSTALL", args=a, order=i)
                                  for i, a in enumerate(args)])])


def test_a_snapshot_gets_its_plain_inputs_and_keeps_its_sensitive_references():
    snapshot = _snapshot({"v": "{{ inputs.v }}"}, {"token": "Bearer {{ inputs.token }}"})
    applied = apply_to_snapshot(snapshot, {"v": "2.0"}, {"token"})
    ops = applied.stages[0].operations
    assert ops[0].args == {"v": "2.0"} and ops[1].args == {"token": "Bearer {{ inputs.token }}"}
    assert snapshot.stages[0].operations[0].args == {"v": "{{ inputs.v }}"}


def test_an_unknown_input_is_refused_naming_it_and_where_it_is_referred_to():
    snapshot = _snapshot({"ok": "1"}, {"deep": {"v": "{{ inputs.app_version }}"}})
    with pytest.raises(InvalidInput) as refused:
        apply_to_snapshot(snapshot, {"other": 1}, set())
    assert refused.value.field == "input_values.app_version"
    message = str(refused.value)
    assert "'app_version'" in message and "operation 2 (INSTALL)" in message
    assert "stage 'canary'" in message and "args.deep.v" in message


def test_sensitive_values_never_show_in_a_repr_and_mark_what_carries_them():
    values = SensitiveValues({"token": "s3cr3t"})
    assert "s3cr3t" not in repr(values) and "s3cr3t" not in str(values)

    class Message:
        sensitive = values

    assert carries_secrets(values) and carries_secrets(Message())
    assert not carries_secrets(SensitiveValues()) and not carries_secrets(object())
    assert alias("token") == "{{ inputs.token }}"
