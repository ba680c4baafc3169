"""What a scenario file names must exist: its state machine, every state it mocks or expects something of,
every error a mock throws and every error it expects. A misspelt name would otherwise make a scenario
skipped, or an expectation vacuous (`Calls: {"Validate": 0}` holds for a state that does not exist), and
the run would pass by mistake; each is refused instead, with the closest name found.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from ticketflow.deftest import rules
from ticketflow.deftest.scenarios import Scenario

_STATE_KEYS = ("Attempts", "Calls", "Waits")  # expectations keyed by state name
_LOCAL_ERRORS = frozenset({"MockMissing"})  # what the local engine raises for a call with no mocked response
# The exception names this project's functions raise (ticketcore): a mock's plain error name close to one of
# these but not equal is a misspelling.
PROJECT_FUNCTION_ERRORS = ("SchemaError", "DataQualityError", "PublishBusy", "PublishRefused", "SourceErased",
                           "ContractError", "UnsafeKeyError", "ObjectMissingError")


def suggest(name: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    """"; did you mean 'X'?" for the closest known name, or ""."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


def scenario_problems(scenarios: list[Scenario], definition: dict[str, Any], machine: str) -> list[str]:
    """Every unknown name in `scenarios` for `definition` (whose state machine name is `machine`), one
    message each naming the file, the place and the closest known name. Empty: every name exists."""
    states = dict(rules._all_states(definition))
    defined_errors = {error for _, state in states.items() for field_name in ("Retry", "Catch")
                      for errors in rules._error_lists(state, field_name) for error in errors}
    fail_errors = {str(state["Error"]) for state in states.values() if state.get("Type") == "Fail" and
                   isinstance(state.get("Error"), str)}
    # Function errors a misspelling is measured against: the definition's, its Fail states', and this project's.
    known_function_errors = defined_errors | fail_errors | set(PROJECT_FUNCTION_ERRORS)
    prefixes = {prefix: key for key, (prefix, _, _) in rules.INTEGRATIONS.items()}
    problems: list[str] = []
    seen_machines: set[tuple[str, str]] = set()
    for scenario in scenarios:
        file = scenario.path.name
        if scenario.machine != machine:
            if (file, scenario.machine) not in seen_machines:
                seen_machines.add((file, scenario.machine))
                problems.append(f"{file}: StateMachines.{scenario.machine}: no state machine {scenario.machine!r}: "
                                f"the definition is {machine!r}" + suggest(scenario.machine, [machine]))
            continue
        place = f"{file}: {scenario.case}"

        def unknown_state(where: str, name: str) -> None:
            if name not in states:
                problems.append(f"{where}: no state {name!r} in the definition" + suggest(name, states))

        thrown: set[str] = set()
        for state, attempts in scenario.mocks.items():
            where = f"{place}: TestCases.{state}"
            if state not in states:
                unknown_state(where, state)
                continue
            if states[state].get("Type") != "Task":
                problems.append(f"{where}: {state!r} is a {states[state].get('Type')} state: only Task states call "
                                "a service, so there is nothing to mock")
                continue
            integration = rules._integration(states[state])
            calls_by_error: dict[str, list[int]] = {}
            for number, attempt in enumerate(attempts):
                if attempt.throws:
                    calls_by_error.setdefault(str(attempt.error), []).append(number)
            for error, numbers in calls_by_error.items():  # one problem per error name, with its calls
                thrown.add(error)
                problem = rules._error_problem(error, integration, prefixes)
                if problem is None and "." not in error and error not in known_function_errors:
                    # A function error (any exception class name): refused only when it looks like a misspelt
                    # known name, which would silently miss its Retry or Catch, or pass a test by mistake.
                    hint = suggest(error, known_function_errors, cutoff=0.8)
                    problem = f"no function raises {error!r}{hint}" if hint else None
                if problem:
                    calls = f"call {numbers[0]}" if len(numbers) == 1 else f"calls {_ranges(numbers)}"
                    problems.append(f"{file}: MockedResponses.{scenario.mock_names[state]} {calls} "
                                    f"(TestCases.{scenario.case}.{state}) throws {error!r}: {problem}")
        expect = scenario.expect
        for key in _STATE_KEYS:
            for name in expect.get(key) or {}:
                unknown_state(f"{place}: Expectations.{key}", name)
        for name in expect.get("States") or []:
            unknown_state(f"{place}: Expectations.States", name)
        if expect.get("FailedState") is not None:
            unknown_state(f"{place}: Expectations.FailedState", expect["FailedState"])
        expected_error = expect.get("Error")
        if expect.get("Status") in ("FAILED", "TIMED_OUT") and expected_error is None:
            problems.append(f"{place}: Expectations: a {expect['Status']} expectation must name its Error (without "
                            "it a failure of the test itself, such as States.Runtime for a missing Input field, "
                            "would pass)")
        possible = thrown | fail_errors | rules.STATES_ERRORS | _LOCAL_ERRORS
        if expected_error is not None and expected_error not in possible:
            problems.append(f"{place}: Expectations.Error {expected_error!r}: neither a mocked response of this "
                            "test case nor Step Functions raises it" + suggest(expected_error, possible))
    return problems


def _ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)
