"""The pass/fail table of `ticketflow test-definition`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ticketflow.deftest.rules import RULES, Finding
from ticketflow.deftest.scenarios import Result

HEADER = ("CHECK", "EXPECTED", "ACTUAL", "RESULT", "TIME (real / virtual)")
_MAX_WIDTH = 48


def _outcome(status: str | None, error: str | None, state: str | None) -> str:
    return " ".join(part for part in (status or "?", error, f"at {state}" if state else None) if part)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def print_report(
    findings: list[Finding],
    results: list[Result],
    out: TextIO | None = None,
    skipped: Sequence[str] = (),
    elapsed: float | None = None,
) -> bool:
    """Print the table (rules first, then one row per scenario, each failure indented under its row).

    Returns True when everything passed.
    """
    out = out or sys.stdout
    rows: list[tuple[tuple[str, ...], list[str]]] = [
        (
            (
                f"static rules ({len(RULES)})",
                "no findings",
                f"{len(findings)} finding(s)",
                "PASS" if not findings else "FAIL",
                "",
            ),
            [str(finding) for finding in findings],
        )
    ]
    for result in results:
        expect = result.scenario.expect
        rows.append(
            (
                (
                    result.scenario.id,
                    _outcome(expect.get("Status"), expect.get("Error"), expect.get("FailedState")),
                    _outcome(result.status, result.error, result.failed_state),
                    "PASS" if result.passed else "FAIL",
                    f"{_duration(result.seconds)} / {_duration(result.virtual_seconds)}",
                ),
                result.failures,
            )
        )
    widths = [
        min(max(len(row[index]) for row in [HEADER, *(cells for cells, _ in rows)]), _MAX_WIDTH)
        for index in range(len(HEADER))
    ]

    def line(cells: Sequence[str]) -> str:
        fitted = [
            cell if len(cell) <= width else cell[: width - 1] + "~"
            for cell, width in zip(cells, widths, strict=True)
        ]
        return "  ".join(cell.ljust(width) for cell, width in zip(fitted, widths, strict=True)).rstrip()

    out.write(line(HEADER) + "\n")
    for cells, details in rows:
        out.write(line(cells) + "\n")
        for detail in details:
            out.write(f"    - {detail}\n")
    for note in skipped:
        out.write(f"{note}\n")
    failed = sum(not result.passed for result in results) + (1 if findings else 0)
    total = len(results) + 1
    real = sum(result.seconds for result in results)
    virtual = sum(result.virtual_seconds for result in results)
    overall = f"; {_duration(elapsed)} in all, with the engine's start" if elapsed is not None else ""
    out.write(
        f"\n{total} checks: {total - failed} passed, {failed} failed "
        f"(scenarios: {_duration(real)} real for {_duration(virtual)} of virtual time{overall})\n"
    )
    return failed == 0


def to_json(definition: str, findings: list[Finding], results: list[Result], skipped: Sequence[str],
            coverage: dict[str, Any] | None, passed: bool, failures: Sequence[str]) -> dict[str, Any]:
    """`test-definition --json`: findings, one entry per scenario, skips, coverage and the verdict."""
    return {
        "definition": definition,
        "passed": passed,
        "failures": list(failures),
        "findings": [{"state": f.state, "rule": f.rule, "message": f.message} for f in findings],
        "scenarios": [{
            "id": r.scenario.id, "passed": r.passed, "failures": r.failures, "status": r.status, "error": r.error,
            "cause": r.cause, "failed_state": r.failed_state, "states": r.states,
            "expected": {k: r.scenario.expect.get(k) for k in ("Status", "Error", "FailedState")
                         if k in r.scenario.expect},
            "seconds": round(r.seconds, 4), "virtual_seconds": round(r.virtual_seconds, 3),
        } for r in results],
        "skipped": list(skipped),
        "coverage": coverage,
    }


def write_junit(path: Path, findings: list[Finding], results: list[Result], skipped: Sequence[str],
                failures: Sequence[str] = ()) -> None:
    """JUnit XML (the schema CI systems read): a `static-rules` suite with one test case per rule (a failure
    per finding of that rule), a `scenarios` suite with one test case per scenario, and a `run` suite whose
    one test case fails with the run's own failures (a coverage gate, --strict, refused scenario files, an
    engine that refused the definition), so a dashboard is red whenever the exit status is."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="ticketflow test-definition")
    rules_suite = ET.SubElement(root, "testsuite", name="static-rules", tests=str(len(RULES)),
                                failures=str(len({f.rule for f in findings})))
    for rule in RULES:
        case = ET.SubElement(rules_suite, "testcase", classname="static-rules", name=rule)
        found = [f for f in findings if f.rule == rule]
        if found:
            failure = ET.SubElement(case, "failure", message=f"{len(found)} finding(s)")
            failure.text = "\n".join(str(f) for f in found)
    suite = ET.SubElement(root, "testsuite", name="scenarios", tests=str(len(results)),
                          failures=str(sum(not r.passed for r in results)), skipped=str(len(skipped)))
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=result.scenario.path.stem, name=result.scenario.case,
                             time=f"{result.seconds:.3f}")
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=result.failures[0][:200])
            failure.text = "\n".join(result.failures)
    for note in skipped:
        case = ET.SubElement(suite, "testcase", classname="scenarios", name="skipped")
        ET.SubElement(case, "skipped", message=note)
    run_suite = ET.SubElement(root, "testsuite", name="run", tests="1", failures=str(int(bool(failures))))
    case = ET.SubElement(run_suite, "testcase", classname="run", name="gates")
    if failures:
        failure = ET.SubElement(case, "failure", message=failures[0][:200])
        failure.text = "\n".join(failures)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
