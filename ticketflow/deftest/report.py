"""The pass/fail table of `ticketflow test-definition`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

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
