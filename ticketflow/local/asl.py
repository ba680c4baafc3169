"""Loading the state machine definition and substituting its `${Name}` placeholders strictly.

CDK and the local runtime fill the same placeholders (PIPELINE_PLACEHOLDERS) into the same file; a
placeholder left in `Parameters` only fails at run time in moto (defect 12 in the notes), so substitution
refuses both a missing value and a value the definition does not use.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DEFAULT_DEFINITION = Path(__file__).resolve().parents[2] / "statemachine" / "pipeline.asl.json"

# The substitutions CDK (infra) and the local runtime provide, in the order CDK declares them.
PIPELINE_PLACEHOLDERS = (
    "InspectFunctionArn",
    "TransformJobName",
    "ValidateFunctionArn",
    "PublishFunctionArn",
    "RetractFunctionArn",
)

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PlaceholderError(ValueError):
    """A placeholder has no value, or a value was given for a placeholder the definition does not use."""


def load_definition(path: str | Path = DEFAULT_DEFINITION) -> dict[str, Any]:
    """The parsed definition (placeholders left in place)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def placeholders(definition_text: str) -> set[str]:
    """The `${Name}` tokens used in the definition text."""
    return set(_PLACEHOLDER.findall(definition_text))


def substitute(definition_text: str, values: dict[str, str]) -> str:
    """Replace every `${Name}`; raise PlaceholderError naming what is missing and what is unused.

    Values are inserted JSON-escaped, so a value can never break the document's syntax.
    """
    used = placeholders(definition_text)
    missing = sorted(used - set(values))
    unused = sorted(set(values) - used)
    problems = []
    if missing:
        problems.append("no value for " + ", ".join(f"${{{name}}}" for name in missing))
    if unused:
        problems.append("the definition does not use " + ", ".join(unused))
    if problems:
        raise PlaceholderError("; ".join(problems))
    return _PLACEHOLDER.sub(lambda match: json.dumps(str(values[match.group(1)]))[1:-1], definition_text)


# ---------------------------------------------------------------- the definition as a graph
START, END = "__start__", "__end__"  # the pseudo-states before StartAt and after a terminal state


def choice_rule_label(rule: dict[str, Any]) -> str:
    """A Choice rule in a few words (its first comparison): `$.removal present`, `$.x StringEquals "a"`."""
    variable = rule.get("Variable", "?")
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key == "IsPresent":
            return f"{variable} {'present' if value else 'absent'}"
        return f"{variable} {key} {json.dumps(value)}"
    return "a combined rule"


def transitions(definition: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(from, to, label, kind) for every edge of the definition; kind is next, choice, default, catch or end.
    The start and the ends are the pseudo-states START and END."""
    states: dict[str, Any] = definition.get("States") or {}
    edges = [(START, str(definition.get("StartAt")), "", "next")]
    for name, state in states.items():
        kind = state.get("Type")
        if kind == "Choice":
            edges += [(name, str(rule.get("Next")), choice_rule_label(rule), "choice")
                      for rule in state.get("Choices", [])]
            if state.get("Default"):
                edges.append((name, str(state["Default"]), "otherwise", "default"))
        elif state.get("Next"):
            edges.append((name, str(state["Next"]), "", "next"))
        if state.get("End") or kind in ("Succeed", "Fail"):
            edges.append((name, END, "", "end"))
        for catcher in state.get("Catch", []):
            edges.append((name, str(catcher.get("Next")), "catch " + ", ".join(catcher.get("ErrorEquals", [])),
                          "catch"))
    return edges
