"""`ticketflow test-definition`: static rules and mocked scenarios for a state machine definition."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ticketflow.local import DEFAULT_DEFINITION


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "test-definition",
        help="check a state machine definition: static rules and mocked scenarios, without AWS",
        description="Run the static rules and every scenario (statemachine/test/*.json, in AWS Step "
        "Functions Local's MockConfigFile shape plus Expectations) on the local engine, on "
        "virtual time, and print a pass/fail table. Exit status 1 on any failure.",
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
        help="local: the moto-based engine (default); aws: AWS's TestState API (opt-in, "
        "needs credentials; skipped without them)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ticketflow.deftest import rules, scenarios, teststate
    from ticketflow.deftest.report import print_report

    definition = Path(args.definition)
    if not definition.is_file():
        print(f"test-definition: no such file {definition}", file=sys.stderr)
        return 2
    scenario_dir = Path(args.scenarios) if args.scenarios else definition.parent / "test"
    text = definition.read_text(encoding="utf-8")
    findings = rules.check(text)
    print(f"definition: {definition}\nscenarios:  {scenario_dir}\n")
    try:
        cases = scenarios.load_scenarios(scenario_dir, scenarios.machine_name(definition))
    except scenarios.ScenarioError as error:
        print(f"test-definition: {error}", file=sys.stderr)
        return 2
    skipped: list[str] = []
    if not cases:
        skipped.append(
            f"no scenarios for state machine {scenarios.machine_name(definition)!r} in {scenario_dir}"
        )
    started = time.monotonic()
    results: list[scenarios.Result] = []
    if any(finding.rule == "parses" for finding in findings):
        skipped.append("scenarios not run: the definition does not parse")
    elif args.target == "aws":
        if teststate.aws_available():
            results = teststate.run_teststate(text, cases)
        else:
            skipped.append(teststate.SKIPPED)
    else:
        try:
            results = scenarios.run_scenarios(definition, cases)
        except Exception as error:  # e.g. moto refuses the definition: report it, fail the run
            skipped.append(f"scenarios not run: the local engine refused the definition: {error}")
            print_report(findings, [], skipped=skipped)
            return 1
    passed = print_report(findings, results, skipped=skipped, elapsed=time.monotonic() - started)
    return 0 if passed and (cases or args.target == "aws") else 1
