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
