"""`ticketflow test-definition`: static rules and mocked scenarios for a state machine definition."""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from ticketflow.local import DEFAULT_DEFINITION


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "test-definition",
        help="check a state machine definition: static rules and mocked scenarios, without AWS",
        description="Run the static rules and every scenario (statemachine/test/*.json, in AWS Step "
        "Functions Local's MockConfigFile shape plus Expectations) on the local engine, on "
        "virtual time, and print a pass/fail table and what the scenarios covered. Exit status 1 on any "
        "failure, 2 when a scenario file is malformed or names something the definition does not have.",
    )
    parser.add_argument(
        "definition",
        nargs="?",
        default=str(DEFAULT_DEFINITION),
        metavar="DEFINITION",
        help="the ASL file (default: statemachine/pipeline.asl.json)",
    )
    parser.add_argument(
        "--scenarios",
        metavar="DIR",
        help="directory of scenario files (default: test/ next to the definition)",
    )
    parser.add_argument(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="local: the moto-based engine (default); aws: AWS's TestState API (needs credentials and "
        "states:TestState; fails, saying why, without them)",
    )
    parser.add_argument("--strict", action="store_true",
                        help="a skip (no scenario, scenarios not run) fails the run instead of being reported")
    parser.add_argument("--min-coverage", type=float, metavar="PERCENT",
                        help="fail when the scenarios cover less than PERCENT of the states, transitions, "
                        "retriers or error outcomes (each)")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON instead of tables")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="write what the local interpreter did in each scenario, state by state (JSON), e.g. to "
                        "attach to a report of a difference from AWS")
    parser.add_argument("--junit", type=Path, metavar="FILE",
                        help="also write a JUnit XML report: one test case per static rule and per scenario")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ticketflow.deftest import coverage as cov
    from ticketflow.deftest import names, rules, scenarios, teststate
    from ticketflow.deftest.report import print_report, to_json, write_junit

    definition = Path(args.definition)
    if not definition.is_file():
        print(f"test-definition: no such file {definition}", file=sys.stderr)
        return 2
    scenario_dir = Path(args.scenarios) if args.scenarios else definition.parent / "test"
    text = definition.read_text(encoding="utf-8")
    findings = rules.check(text)
    machine = scenarios.machine_name(definition)
    out = io.StringIO() if args.json else sys.stdout  # --json: the tables are not printed
    print(f"definition: {definition}\nscenarios:  {scenario_dir}\n", file=out)
    try:
        cases = scenarios.load_scenarios(scenario_dir)
        parsed = json.loads(text) if not any(f.rule == "parses" for f in findings) else None
        problems = names.scenario_problems(cases, parsed, machine) if parsed is not None else []
    except scenarios.ScenarioError as error:
        print(f"test-definition: {error}", file=sys.stderr)
        return 2
    if problems:
        print(f"test-definition: {len(problems)} problem(s) in the scenario files (nothing was run):",
              file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    skipped: list[str] = []
    if not cases:
        skipped.append(f"skipped: no scenarios for state machine {machine!r} in {scenario_dir}")
    started = time.monotonic()
    results: list[scenarios.Result] = []
    if parsed is None:
        skipped.append("skipped: scenarios not run: the definition does not parse")
    elif args.target == "aws":
        try:
            results = teststate.run_teststate(text, cases)
        except teststate.TestStateUnavailable as unavailable:
            print(f"test-definition --target aws: {unavailable}", file=sys.stderr)
            return 2
        # Agreement: each walk against what the local interpreter does with the same scenario.
        local = scenarios.run_scenarios(definition, cases)
        for walked, ran in zip(results, local, strict=True):
            walked.failures += [f"differs from the local interpreter: {difference}"
                                for difference in teststate.compare(teststate.trace(ran), teststate.trace(walked))]
        if args.record:
            _record(args.record, local)
        unchecked = [case.id for case in cases if case.expect.get("Calls")]
        if unchecked:  # TestState calls no service: a Calls expectation says nothing there
            skipped.append(f"skipped against TestState: the Calls expectations of {len(unchecked)} scenario(s) "
                           f"({', '.join(unchecked)})")
    else:
        try:
            results = scenarios.run_scenarios(definition, cases)
        except Exception as error:  # e.g. moto refuses the definition: report it, fail the run
            skipped.append(f"scenarios not run: the local engine refused the definition: {error}")
            print_report(findings, [], skipped=skipped, out=out)
            return 1
    if args.record and args.target == "local":
        _record(args.record, results)
    elapsed = time.monotonic() - started
    coverage = cov.measure(parsed, results) if parsed is not None and args.target == "local" else None
    passed = print_report(findings, results, skipped=skipped, elapsed=elapsed, out=out)
    failures = []
    if coverage is not None:
        print("\n" + cov.render(coverage), file=out)
        if args.min_coverage is not None and coverage.lowest() < args.min_coverage:
            failures.append(f"coverage {coverage.lowest():.1f}% is below --min-coverage {args.min_coverage:g}%")
    if not results and parsed is not None and not skipped[1:]:
        failures.append("no scenario ran: a definition test without scenarios proves nothing")
    if args.strict and skipped:
        failures.append(f"--strict: {len(skipped)} skip(s) count as failures")
    for failure in failures:
        print(failure, file=out)
    ok = passed and not failures
    if args.junit:
        write_junit(args.junit, findings, results, skipped)
    if args.json:
        print(json.dumps(to_json(str(definition), findings, results, skipped,
                                 coverage.to_json() if coverage else None, ok, failures), indent=2))
    return 0 if ok else 1


def _record(path: Path, results: list[Any]) -> None:
    from ticketflow.deftest.teststate import trace

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([trace(result) for result in results], indent=2, default=str) + "\n")
