"""What the scenarios exercised of a definition: its states, its transitions, each Retry clause, and the
error outcome of each Task state (the execution failing there), measured from the executions' histories.

- a state is covered once some scenario enters it;
- a transition (`asl.transitions`: Next, a Choice's rules and Default, Catch, and the end after a terminal
  state) once some execution goes from one state to the next along it (a catcher's edge only when the
  state was left through that Catch);
- a retrier (`Retry[i]` of a state, numbered from 0 as AWS numbers them) once it decided a retry, and
  "exhausted" once some execution used up its MaxAttempts (so its MaxAttempts, and with the scenario's
  Waits its IntervalSeconds, BackoffRate and MaxDelaySeconds, are pinned by a test);
- an error outcome once some execution ends FAILED or TIMED_OUT in that Task state.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ticketflow.deftest.scenarios import Result, retry_decisions
from ticketflow.local.asl import END, START, transitions

KINDS = ("states", "transitions", "retriers", "retriers exhausted", "error outcomes")


@dataclass
class Coverage:
    """Per kind, every item of the definition and the ones the scenarios exercised."""

    items: dict[str, list[str]] = field(default_factory=dict)
    covered: dict[str, set[str]] = field(default_factory=dict)

    def percent(self, kind: str) -> float:
        total = len(self.items.get(kind, []))
        return 100.0 if total == 0 else 100.0 * len(self.covered.get(kind, set())) / total

    def missing(self, kind: str) -> list[str]:
        return [item for item in self.items.get(kind, []) if item not in self.covered.get(kind, set())]

    def lowest(self) -> float:
        return min(self.percent(kind) for kind in KINDS)

    def to_json(self) -> dict[str, Any]:
        return {kind: {"covered": len(self.covered.get(kind, set())), "total": len(self.items.get(kind, [])),
                       "percent": round(self.percent(kind), 1), "missing": self.missing(kind)} for kind in KINDS}


def transition_name(source: str, target: str, kind: str) -> str:
    ends = {START: "(start)", END: "(end)"}
    return f"{ends.get(source, source)} -> {ends.get(target, target)}" + (" (catch)" if kind == "catch" else "")


def measure(definition: dict[str, Any], results: list[Result]) -> Coverage:
    """The coverage of `definition` (top-level states) by the scenarios' `results`."""
    states: dict[str, Any] = definition.get("States") or {}
    edges = transitions(definition)
    coverage = Coverage(items={
        "states": list(states),
        "transitions": [transition_name(a, b, kind) for a, b, _, kind in edges],
        "retriers": [f"{name} Retry[{i}] ({', '.join(r.get('ErrorEquals', []))})"
                     for name, state in states.items() for i, r in enumerate(state.get("Retry") or [])],
        "retriers exhausted": [f"{name} Retry[{i}] after {r.get('MaxAttempts', 3)} retries"
                               for name, state in states.items() for i, r in enumerate(state.get("Retry") or [])
                               if r.get("MaxAttempts", 3) > 0],
        "error outcomes": [f"{name} fails" for name, state in states.items() if state.get("Type") == "Task"],
    }, covered={kind: set() for kind in KINDS})
    covered = coverage.covered
    for result in results:
        runs = result.runs
        if not runs:
            continue
        covered["states"] |= {run.name for run in runs}
        walked = [(START, runs[0].name, False)]
        walked += [(a.name, b.name, a.status == "CAUGHT") for a, b in itertools.pairwise(runs)]
        last = runs[-1]
        ended_in_fail_state = (states.get(last.name) or {}).get("Type") == "Fail" and result.status == "FAILED"
        if (last.status == "SUCCEEDED" and result.status == "SUCCEEDED") or ended_in_fail_state:
            walked.append((last.name, END, False))
        for source, target, caught in walked:
            for a, b, _, kind in edges:
                if (a, b) == (source, target) and (kind == "catch") == caught:
                    covered["transitions"].add(transition_name(a, b, kind))
        for run in runs:
            retriers = (states.get(run.name) or {}).get("Retry") or []
            decided, exhausted = retry_decisions(retriers, [error for error, _ in run.failures])
            for index, _ in decided:
                covered["retriers"].add(f"{run.name} Retry[{index}] "
                                        f"({', '.join(retriers[index].get('ErrorEquals', []))})")
            if exhausted is not None:
                covered["retriers exhausted"].add(
                    f"{run.name} Retry[{exhausted}] after {retriers[exhausted].get('MaxAttempts', 3)} retries")
            if run.status in ("FAILED", "TIMED_OUT") and (states.get(run.name) or {}).get("Type") == "Task":
                covered["error outcomes"].add(f"{run.name} fails")
    return coverage


def render(coverage: Coverage) -> str:
    """The coverage table: one row per kind (covered/total, percent), then what is not covered."""
    lines = ["COVERAGE            COVERED  PERCENT"]
    for kind in KINDS:
        total = len(coverage.items.get(kind, []))
        percent = coverage.percent(kind)
        shown = 99.9 if 99.95 <= percent < 100 else percent  # never 100.0% while something is missing
        lines.append(f"{kind:<19} {len(coverage.covered.get(kind, set())):>3}/{total:<3}  {shown:>6.1f}%")
    for kind in KINDS:
        for item in coverage.missing(kind):
            noun = {"states": "state", "transitions": "transition", "retriers": "retrier",
                    "retriers exhausted": "retrier exhausted", "error outcomes": "error outcome"}[kind]
            lines.append(f"    - not covered: {noun}: {item}")
    return "\n".join(lines)
