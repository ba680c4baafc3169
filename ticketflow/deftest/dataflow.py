"""Static data flow: every JSONPath of the definition resolves against what reaches it, with no scenario run.

From the execution input's shape (for this project's definition: `ticketcore.events.ExecutionInput`), each
state's input is followed through InputPath, Parameters, the task's result (a Lambda's declared output model
inside lambda:invoke's `Payload`; Glue's JobRun and SNS's PublishResponse from botocore's service models),
ResultSelector, ResultPath and OutputPath to the states after it. A path in `Parameters`, `ResultSelector`,
`InputPath`, `OutputPath`, `ItemsPath` or a Choice rule that names a field the shape does not have is a
finding naming the state, the field and the path, with the closest field. A Lambda payload missing a field
its input model requires is one too. Paths into shapes not known here (an unknown function's result, a free
form dict) are not judged: `ANY` accepts everything.

Shapes: ANY; Obj(fields, closed); Arr(item); Scalar(type name). A field that may be absent (an optional model
field) still resolves; RouteEvent's `IsPresent` rules are how the definition asks whether it is there.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from ticketflow.deftest.rules import Finding, service_model

RULE = "data-flow"


@dataclass(frozen=True)
class Scalar:
    kind: str


@dataclass
class Obj:
    fields: dict[str, Any] = field(default_factory=dict)
    closed: bool = True


@dataclass
class Arr:
    item: Any


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()

# The context object (`$$`), as AWS documents it for Standard workflows.
CONTEXT = Obj({
    "Execution": Obj({"Id": Scalar("string"), "Name": Scalar("string"), "StartTime": Scalar("string"),
                      "RoleArn": Scalar("string"), "Input": ANY, "RedriveCount": Scalar("number"),
                      "RedriveTime": Scalar("string")}),
    "State": Obj({"Name": Scalar("string"), "EnteredTime": Scalar("string"), "RetryCount": Scalar("number")}),
    "StateMachine": Obj({"Id": Scalar("string"), "Name": Scalar("string")}),
    "Task": Obj({"Token": Scalar("string")}),
})
ERROR_OUTPUT = Obj({"Error": Scalar("string"), "Cause": Scalar("string")})  # what a Catch's ResultPath gets


# ---------------------------------------------------------------- shapes from models
def from_json_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A shape from a JSON Schema (a pydantic model's `model_json_schema()`)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return from_json_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:  # Optional[X]: X
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return from_json_schema(options[0], defs) if len(options) == 1 else ANY
    kind = schema.get("type")
    if kind == "object":
        if "properties" not in schema:  # dict[str, X]: any key
            return ANY
        closed = schema.get("additionalProperties") is False
        return Obj({k: from_json_schema(v, defs) for k, v in schema["properties"].items()}, closed)
    if kind == "array":
        return Arr(from_json_schema(schema.get("items", {}), defs))
    return Scalar(kind) if kind else ANY


def from_model(model: Any) -> Any:
    return from_json_schema(model.model_json_schema())


def from_botocore(shape: Any, depth: int = 0) -> Any:
    """A shape from a botocore shape (structures closed: the API returns only its members)."""
    if depth > 8:
        return ANY
    if shape.type_name == "structure":
        return Obj({name: from_botocore(member, depth + 1) for name, member in shape.members.items()})
    if shape.type_name == "list":
        return Arr(from_botocore(shape.member, depth + 1))
    if shape.type_name == "map":
        return ANY
    return Scalar(shape.type_name)


def from_value(value: Any) -> Any:
    """The shape of a literal in the definition (Parameters' static values, a Pass state's Result)."""
    if isinstance(value, dict):
        return Obj({k: from_value(v) for k, v in value.items()})
    if isinstance(value, list):
        return Arr(from_value(value[0]) if value else ANY)
    return Scalar(type(value).__name__)


def service_result(resource: str) -> Any:
    """The task result of an optimized integration, from botocore's model: Glue's GetJobRun JobRun for
    glue:startJobRun.sync (what the run ends as), SNS's PublishResponse; ANY for anything else."""
    if resource.startswith("arn:aws:states:::glue:startJobRun.sync"):
        return from_botocore(service_model("glue").operation_model("GetJobRun").output_shape.members["JobRun"])
    if resource.startswith("arn:aws:states:::glue:startJobRun"):
        return from_botocore(service_model("glue").operation_model("StartJobRun").output_shape)
    if resource.startswith("arn:aws:states:::sns:publish"):
        return from_botocore(service_model("sns").operation_model("Publish").output_shape)
    return ANY


# ---------------------------------------------------------------- paths
class PathError(Exception):
    pass


def _steps(path: str) -> list[str | int] | None:
    """The field names and indexes of a simple JSONPath after `$` or `$$` (None: a path with wildcards,
    filters or slices, not judged here)."""
    from jsonpath_ng import Child, Fields, Index, Root
    from jsonpath_ng import parse as jsonpath_parse

    text = path[1:] if path.startswith("$$") else path
    try:
        node = jsonpath_parse(text)
    except Exception as err:
        raise PathError(f"{path!r} is not a JSONPath ({err})") from err
    steps: list[str | int] = []

    def walk(item: Any) -> bool:
        if isinstance(item, Root):
            return True
        if isinstance(item, Child):
            return walk(item.left) and walk(item.right)
        if isinstance(item, Fields) and len(item.fields) == 1 and item.fields[0] != "*":
            steps.append(item.fields[0])
            return True
        if isinstance(item, Index):
            indices = getattr(item, "indices", None) or (getattr(item, "index", None),)  # 1.6+: indices
            if len(indices) != 1 or not isinstance(indices[0], int):
                return False
            steps.append(indices[0])
            return True
        return False

    return steps if walk(node) else None


def resolve(shape: Any, path: str, context: Any = CONTEXT) -> Any:
    """The shape `path` selects from `shape` (`$$...` from the context object). Raises PathError naming the
    first field that is not there (and the closest one)."""
    steps = _steps(path)
    current = context if path.startswith("$$") else shape
    if steps is None:
        return ANY
    walked = "$$" if path.startswith("$$") else "$"
    for step in steps:
        if current is ANY:
            return ANY
        if isinstance(step, int):
            if not isinstance(current, Arr):
                raise PathError(f"{walked} is not an array")
            current, walked = current.item, f"{walked}[{step}]"
            continue
        if not isinstance(current, Obj):
            raise PathError(f"{walked} is a {getattr(current, 'kind', 'value')}, not an object with {step!r}")
        if step not in current.fields:
            if not current.closed:
                return ANY
            close = difflib.get_close_matches(step, sorted(current.fields), n=1, cutoff=0.6)
            hint = f"; did you mean {walked}.{close[0]}?" if close else ""
            names = sorted(current.fields)
            shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
            raise PathError(f"{walked} has no field {step!r} (it has: {shown}){hint}")
        current, walked = current.fields[step], f"{walked}.{step}"
    return current


def put(shape: Any, path: str, value: Any) -> Any:
    """`shape` with `value` placed at `path` (ResultPath): `$` replaces it, `$.a.b` sets that field."""
    steps = _steps(path)
    if not steps:
        return value
    # Into an input of unknown shape: the fields placed are known, the rest is not (an open object).
    root = Obj(dict(shape.fields), shape.closed) if isinstance(shape, Obj) else Obj({}, closed=False)
    current = root
    for step in steps[:-1]:
        child = current.fields.get(str(step))
        child = Obj(dict(child.fields), child.closed) if isinstance(child, Obj) else Obj({}, closed=child is not ANY)
        current.fields[str(step)] = child
        current = child
    current.fields[str(steps[-1])] = value
    return root


# ---------------------------------------------------------------- the walk
@dataclass
class Flow:
    """What the walk knows: the execution input's shape, and a result shape per Task state."""

    execution_input: Any = ANY
    task_results: dict[str, Any] = field(default_factory=dict)
    payload_models: dict[str, Any] = field(default_factory=dict)  # state -> the function's input model


def check(definition: dict[str, Any], flow: Flow) -> list[Finding]:
    """Findings (rule `data-flow`) for every path that does not resolve, walking from StartAt."""
    states: dict[str, Any] = definition.get("States") or {}
    findings: list[Finding] = []
    seen: dict[str, Any] = {}
    pending = [(definition.get("StartAt"), flow.execution_input)]
    while pending:
        name, shape = pending.pop()
        if name not in states or name in seen:
            continue  # a merge keeps the first shape: this definition's states each have one predecessor
        seen[name] = shape
        state = states[name]
        for target, output in _state(name, state, shape, flow, findings):
            pending.append((target, output))
    return findings


def _finding(findings: list[Finding], state: str, where: str, path: str, err: PathError) -> None:
    findings.append(Finding(state, RULE, f"{where} {path!r}: {err}"))


def _resolve_in(findings: list[Finding], state: str, where: str, shape: Any, path: str) -> Any:
    try:
        return resolve(shape, path)
    except PathError as err:
        _finding(findings, state, where, path, err)
        return ANY


def _template(findings: list[Finding], state: str, where: str, template: Any, shape: Any) -> Any:
    """The shape a Parameters/ResultSelector template builds, checking each `.$` path against `shape`."""
    if isinstance(template, dict):
        fields = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                if value.startswith("States."):  # an intrinsic function: its result is not typed here
                    fields[key[:-2]] = ANY
                else:
                    fields[key[:-2]] = _resolve_in(findings, state, f"{where}.{key}", shape, value)
            else:
                fields[key] = _template(findings, state, f"{where}.{key}", value, shape)
        return Obj(fields)
    if isinstance(template, list):
        return Arr(ANY)
    return from_value(template)


def _state(name: str, state: dict[str, Any], shape: Any, flow: Flow, findings: list[Finding]
           ) -> list[tuple[str, Any]]:
    kind = state.get("Type")
    effective = shape
    if isinstance(state.get("InputPath"), str):
        effective = _resolve_in(findings, name, "InputPath", shape, state["InputPath"])
    if kind == "Choice":
        for index, rule in enumerate(state.get("Choices") or []):
            variable = rule.get("Variable")
            if isinstance(variable, str) and "IsPresent" not in rule:
                _resolve_in(findings, name, f"Choices[{index}].Variable", effective, variable)
        targets = [r.get("Next") for r in state.get("Choices") or []] + [state.get("Default")]
        return [(t, effective) for t in targets if t]
    if isinstance(state.get("ItemsPath"), str):
        _resolve_in(findings, name, "ItemsPath", effective, state["ItemsPath"])
    parameters = state.get("Parameters")
    task_input = _template(findings, name, "Parameters", parameters, effective) if parameters is not None else effective
    result: Any = effective
    if kind == "Task":
        result = flow.task_results.get(name, service_result(str(state.get("Resource", ""))))
        model = flow.payload_models.get(name)
        payload = task_input.fields.get("Payload") if isinstance(task_input, Obj) else None
        if model is not None and isinstance(payload, Obj):
            required = model.model_json_schema().get("required", [])
            missing = [f for f in required if f not in payload.fields]
            if missing:
                findings.append(Finding(name, RULE, f"Parameters.Payload gives no {', '.join(missing)}, which "
                                                    f"{model.__name__} requires"))
    elif kind == "Pass":
        result = from_value(state["Result"]) if "Result" in state else task_input
    elif kind in ("Succeed", "Fail", "Wait"):
        result = effective
    else:
        result = ANY  # Parallel, Map: their branches' results are not followed here
    if isinstance(state.get("ResultSelector"), dict):
        result = _template(findings, name, "ResultSelector", state["ResultSelector"], result)
    output = shape if kind not in ("Succeed", "Fail", "Wait") else effective
    if kind not in ("Succeed", "Fail", "Wait"):
        result_path = state.get("ResultPath", "$")
        output = shape if result_path is None else put(shape, result_path, result)
    if isinstance(state.get("OutputPath"), str):
        output = _resolve_in(findings, name, "OutputPath", output, state["OutputPath"])
    targets = [(state["Next"], output)] if state.get("Next") else []
    for catcher in state.get("Catch") or []:
        caught = put(shape, catcher.get("ResultPath", "$"), ERROR_OUTPUT) \
            if catcher.get("ResultPath", "$") is not None else shape
        targets.append((catcher.get("Next"), caught))
    return targets


def project_flow(definition: dict[str, Any]) -> Flow:
    """This project's shapes, bound to the states by the function each invokes (its `${...FunctionArn}`)."""
    from ticketcore import events

    by_function = {
        "${InspectFunctionArn}": (events.InspectInput, events.InspectOutput),
        "${ValidateFunctionArn}": (events.StagedRunInput, events.ValidateOutput),
        "${PublishFunctionArn}": (events.StagedRunInput, events.PublishOutput),
        "${RetractFunctionArn}": (events.RetractInput, events.RetractOutput),
    }
    flow = Flow(execution_input=from_model(events.ExecutionInput))
    for name, state in (definition.get("States") or {}).items():
        function = ((state.get("Parameters") or {}).get("FunctionName")) if isinstance(state.get("Parameters"),
                                                                                         dict) else None
        if function in by_function:
            given, returned = by_function[function]
            invoke = service_invoke_result(from_model(returned))
            flow.task_results[name] = invoke
            flow.payload_models[name] = given
    return flow


def service_invoke_result(payload: Any) -> Any:
    """lambda:invoke's task result: the Invoke response with the function's return value as `Payload`."""
    response = from_botocore(service_model("lambda").operation_model("Invoke").output_shape)
    response.fields["Payload"] = payload
    return response


def check_text(definition_text: str, project: bool) -> list[Finding]:
    """The data-flow findings of a definition's text (`project`: with this project's shapes)."""
    definition = json.loads(definition_text)
    return check(definition, project_flow(definition) if project else Flow())
