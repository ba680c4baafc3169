"""Shapes and JSONPath resolution of the static data-flow check (ticketflow/deftest/dataflow.py)."""

from __future__ import annotations

import pytest

from ticketcore import events
from ticketflow.deftest.dataflow import ANY, Arr, Obj, PathError, Scalar, from_model, put, resolve, service_result

SHAPE = Obj({"a": Arr(Obj({"b": Scalar("string")})), "free": ANY, "open": Obj({"x": Scalar("string")}, closed=False)})


@pytest.mark.parametrize(("path", "found"), [
    ("$", SHAPE), ("$.a[0].b", Scalar("string")), ("$.a[*].b", ANY), ("$.free.anything.below", ANY),
    ("$.open.not_declared", ANY), ("$$.Execution.Name", Scalar("string")), ("$['a'][0]['b']", Scalar("string")),
])
def test_paths_that_resolve(path, found):
    assert resolve(SHAPE, path) == found


@pytest.mark.parametrize(("path", "message"), [
    ("$.a[0].c", "$.a[0] has no field 'c' (it has: b)"),
    ("$.fre", "$ has no field 'fre' (it has: a, free, open); did you mean $.free?"),
    ("$.a.b", "$.a is a"),
    ("$.a[0].b.c", "$.a[0].b is a string, not an object with 'c'"),
    ("$$.Execution.Nme", "$$.Execution has no field 'Nme'"),
])
def test_paths_that_do_not(path, message):
    with pytest.raises(PathError) as raised:
        resolve(SHAPE, path)
    assert message in str(raised.value)


def test_result_path_places_the_result():
    placed = put(SHAPE, "$.result.inner", Scalar("number"))
    assert resolve(placed, "$.result.inner") == Scalar("number") and resolve(placed, "$.a[0].b") == Scalar("string")
    assert put(SHAPE, "$", Scalar("number")) == Scalar("number")


def test_model_and_service_shapes():
    inspection = from_model(events.InspectOutput)
    assert isinstance(inspection, Obj) and inspection.closed and resolve(inspection, "$.source.etag") == \
        Scalar("string")
    assert resolve(from_model(events.RetractOutput), "$.rows_retracted") is ANY  # an open model
    job_run = service_result("arn:aws:states:::glue:startJobRun.sync")
    assert resolve(job_run, "$.JobRunState") == Scalar("string") and "ErrorMessage" in job_run.fields
