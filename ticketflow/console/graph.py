"""The state machine as a Graphviz DOT graph, marked with one execution's path: what the console draws.

The layout is Graphviz's (`dot`), run in the browser by the vendored @viz-js/viz: nothing here places a
node. Each state becomes a node whose SVG element carries `id="state-<name>"` and a class naming what
this execution did there:

- `succeeded`, `running`, `failed` (FAILED, TIMED_OUT or ABORTED ended the execution there), `caught`
  (left through a Catch), `not-reached`;

and a label with the state's type and, for a Task tried more than once, its attempts ("3 attempts: 2
retries"). Edges (Next, a Choice's rules and Default, Catch, End) are drawn bold where the execution
went from one state to the next.
"""

from __future__ import annotations

import itertools
from typing import Any

from ticketflow.local.asl import END, START, transitions
from ticketflow.local.history import StateRun

STATUS_CLASS = {"SUCCEEDED": "succeeded", "RUNNING": "running", "CAUGHT": "caught",
                "FAILED": "failed", "TIMED_OUT": "failed", "ABORTED": "failed"}
# Fill and border per class: the console's colours (green, blue, amber, red, grey).
_STYLE = {
    "succeeded": ("#d7f0dd", "#2e7d32"),
    "running": ("#d6e6fb", "#1565c0"),
    "caught": ("#fdebc8", "#b26a00"),
    "failed": ("#f9d4d2", "#c62828"),
    "not-reached": ("#ffffff", "#9e9e9e"),
}


def quote(text: str) -> str:
    """A DOT double-quoted string (backslashes and quotes escaped, line breaks as \\n)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def state_class(run: StateRun | None) -> str:
    return "not-reached" if run is None else STATUS_CLASS.get(run.status, "failed")


def attempts_label(run: StateRun | None) -> str:
    if run is None or run.attempts <= 1:
        return ""
    return f"{run.attempts} attempts: {run.attempts - 1} {'retry' if run.attempts == 2 else 'retries'}"


def path_taken(runs: list[StateRun]) -> set[tuple[str, str]]:
    """Consecutive (from, to) pairs of the states visited, with the start and, after a success, the end.
    A redrive's visits continue from the state it resumed, which is the pair already drawn."""
    names = [run.name for run in runs]
    pairs = {(a, b) for a, b in itertools.pairwise(names) if a != b}
    if names:
        pairs.add((START, names[0]))
        if runs[-1].status == "SUCCEEDED":
            pairs.add((names[-1], END))
    return pairs


def state_machine_dot(definition: dict[str, Any], runs: list[StateRun]) -> str:
    """The DOT text of `definition` (an ASL document) marked with `runs` (`summarize_history` of one
    execution; [] draws the definition alone). The last visit of a state decides its class."""
    states: dict[str, Any] = definition.get("States") or {}
    last = {run.name: run for run in runs}
    taken = path_taken(runs)
    lines = [
        "digraph statemachine {",
        '  graph [rankdir=TB, fontname="Helvetica", nodesep=0.5, ranksep=0.45, bgcolor="transparent"];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, penwidth=1.4];',
        '  edge [fontname="Helvetica", fontsize=9, color="#757575", arrowsize=0.7];',
        f'  {quote(START)} [id="state-start", class="pseudo", label="Start", shape=circle, width=0.5, '
        'fixedsize=true, fillcolor="#eeeeee", color="#757575", fontsize=9];',
        f'  {quote(END)} [id="state-end", class="pseudo", label="End", shape=doublecircle, width=0.4, '
        'fixedsize=true, fillcolor="#eeeeee", color="#757575", fontsize=9];',
    ]
    for name, state in states.items():
        run = last.get(name)
        css = state_class(run)
        fill, border = _STYLE[css]
        label = "\n".join(part for part in (name, state.get("Type", "?"), attempts_label(run)) if part)
        shape = "diamond" if state.get("Type") == "Choice" else "box"
        lines.append(
            f"  {quote(name)} [id={quote('state-' + name)}, class={quote('state ' + css)}, label={quote(label)}, "
            f"shape={shape}, fillcolor={quote(fill)}, color={quote(border)}"
            + (", penwidth=2.6" if css in ("failed", "running") else "") + "];"
        )
    for source, target, label, kind in transitions(definition):
        attrs = [f"label={quote(label)}"] if label else []
        if kind == "catch":
            attrs.append('style="dashed"')
        if (source, target) in taken:
            attrs += ['penwidth=2.2', 'color="#424242"', f"class={quote('edge taken')}"]
        else:
            attrs.append(f"class={quote('edge')}")
        lines.append(f"  {quote(source)} -> {quote(target)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines)
