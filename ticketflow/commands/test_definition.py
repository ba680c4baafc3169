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
                        help="a skip (scenarios not run, an expectation TestState cannot check) fails the run "
                        "instead of being reported")
    parser.add_argument("--min-coverage", type=float, metavar="PERCENT",
                        help="fail when the scenarios cover less than PERCENT of the states, transitions, "
                        "retriers, retriers exhausted or error outcomes (each)")
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
    from ticketflow.deftest.report import print_report
    from ticketflow.local.asl import PIPELINE_PLACEHOLDERS, placeholders

    definition = Path(args.definition)
    if not definition.is_file():
        print(f"test-definition: no such file {definition}", file=sys.stderr)
        return 2
    if args.min_coverage is not None and not 0 < args.min_coverage <= 100:
        print(f"test-definition: --min-coverage is a percentage in (0, 100], not {args.min_coverage:g}",
              file=sys.stderr)
        return 2
    scenario_dir = Path(args.scenarios) if args.scenarios else definition.parent / "test"
    text = definition.read_text(encoding="utf-8")
    # The pipeline's placeholders are required of a definition that uses any of them (this project's, or a copy);
    # another state machine is checked without them, and without this project's data shapes.
    ours = bool(placeholders(text) & set(PIPELINE_PLACEHOLDERS))
    outcome = Outcome(args, str(definition), rules.check(text, PIPELINE_PLACEHOLDERS if ours else None))
    out = outcome.out
    if not scenario_dir.is_dir():
        return outcome.refuse([f"the scenarios folder {scenario_dir} does not exist (--scenarios DIR)"])
    files = sorted(p.name for p in scenario_dir.glob("*.json"))
    print(f"definition: {definition}\nscenarios:  {scenario_dir} ({', '.join(files) or 'no *.json file'})\n",
          file=out)
    try:
        cases = scenarios.load_scenarios(scenario_dir)
        parsed = json.loads(text) if not any(f.rule == "parses" for f in outcome.findings) else None
        problems = names.scenario_problems(cases, parsed, scenarios.machine_name(definition)) if parsed else []
    except scenarios.ScenarioError as error:
        return outcome.refuse([str(error)])
    if problems:
        return outcome.refuse(problems)
    started = time.monotonic()
    if parsed is None:
        outcome.skipped.append("scenarios not run: the definition does not parse")
    elif args.target == "aws":
        try:
            outcome.results = teststate.run_teststate(text, cases)
        except teststate.TestStateUnavailable as unavailable:
            return outcome.refuse([f"--target aws: {unavailable}"])
        # Agreement: each walk against what the local interpreter does with the same scenario.
        local = scenarios.run_scenarios(definition, cases)
        for walked, ran in zip(outcome.results, local, strict=True):
            walked.failures += [f"differs from the local interpreter: {difference}"
                                for difference in teststate.compare(teststate.trace(ran), teststate.trace(walked))]
        if args.record:
            _record(args.record, local)
        unchecked = [case.id for case in cases if case.expect.get("Calls")]
        if unchecked:  # TestState calls no service: a Calls expectation says nothing there
            outcome.skipped.append(f"not checked against TestState: the Calls expectations of {len(unchecked)} "
                                   f"scenario(s) ({', '.join(unchecked)})")
    else:
        try:
            outcome.results = scenarios.run_scenarios(definition, cases)
        except Exception as error:  # e.g. moto refuses the definition: a failure of the run, reported as one
            outcome.failures.append(f"scenarios not run: the local engine refused the definition: {error}")
        if args.record:
            _record(args.record, outcome.results)
    if parsed is not None and outcome.results:
        outcome.coverage = cov.measure(parsed, outcome.results)
    if not outcome.results and not outcome.failures and parsed is not None:
        outcome.failures.append("no scenario ran: a definition test without scenarios proves nothing")
    passed = print_report(outcome.findings, outcome.results, skipped=outcome.skipped,
                          elapsed=time.monotonic() - started, out=out)
    if outcome.coverage is not None:
        print("\n" + cov.render(outcome.coverage), file=out)
        if args.min_coverage is not None and outcome.coverage.lowest() < args.min_coverage:
            outcome.failures.append(f"coverage {outcome.coverage.lowest():.1f}% is below --min-coverage "
                                    f"{args.min_coverage:g}%")
    if args.strict and outcome.skipped:
        outcome.failures.append(f"--strict: {len(outcome.skipped)} skip(s) count as failures")
    return outcome.finish(passed)


class Outcome:
    """What one run found, written the same way whichever way it ends: the exit status, and with --json and
    --junit their documents (a refused run too, so a CI report never shows an earlier run's result)."""

    def __init__(self, args: argparse.Namespace, definition: str, findings: list[Any]) -> None:
        self.args, self.definition, self.findings = args, definition, findings
        self.out = io.StringIO() if args.json else sys.stdout  # --json: the tables are not printed
        self.results: list[Any] = []
        self.skipped: list[str] = []
        self.failures: list[str] = []  # the run's own failures: gates, refusals, an engine that refused
        self.coverage: Any = None

    def refuse(self, problems: list[str]) -> int:
        """Nothing was run: a scenario file or the target cannot be used (exit 2)."""
        print(f"test-definition: {len(problems)} problem(s), nothing was run:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        self.failures += problems
        self._documents(False)
        return 2

    def finish(self, passed: bool) -> int:
        for failure in self.failures:
            print(failure, file=self.out)
        ok = passed and not self.failures
        self._documents(ok)
        return 0 if ok else 1

    def _documents(self, ok: bool) -> None:
        from ticketflow.deftest.report import to_json, write_junit

        if self.args.junit:
            write_junit(self.args.junit, self.findings, self.results, self.skipped, self.failures)
        if self.args.json:
            print(json.dumps(to_json(self.definition, self.findings, self.results, self.skipped,
                                     self.coverage.to_json() if self.coverage else None, ok, self.failures),
                             indent=2))


def _record(path: Path, results: list[Any]) -> None:
    from ticketflow.deftest.teststate import trace

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([trace(result) for result in results], indent=2, default=str) + "\n")
