"""Timestamp formats: what the job accepts, and how it picks one reading per column per file.

ISO 8601 values are unambiguous and parsed by Spark's cast. Slash/dash dates (`03/05/2024`, `05-03-2024`)
are ambiguous, so the field order is chosen once per column from the whole column: a first field above 12
proves day-first, a second field above 12 proves month-first, no proof falls back to the contract default.
A column with proof of both is a conflict: one reading is still used for every value (never a mix), and the
values it cannot read are counted and reported.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# Strings that go through Spark's ISO cast: yyyy-m-d, optional time, fraction and zone.
ISO_REGEX = (
    r"^\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|z|UTC|[+-]\d{2}(:?\d{2})?)?$"
)
# Slash/dash/dot dates with the year last, optional time: the two leading fields are captured.
DMY_MDY_REGEX = r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})([T ]\d{1,2}:\d{2}(:\d{2})?)?$"

# Spark datetime patterns (after normalising separators to "/" and "T" to " ").
SPARK_PATTERN = {"month_first": "M/d/yyyy[ H:mm[:ss]]", "day_first": "d/M/yyyy[ H:mm[:ss]]"}
LABEL = {"month_first": "MM/DD/YYYY[ HH:MM[:SS]]", "day_first": "DD/MM/YYYY[ HH:MM[:SS]]"}

_ISO = re.compile(ISO_REGEX)
_DMY_MDY = re.compile(DMY_MDY_REGEX)


@dataclass(frozen=True)
class ColumnEvidence:
    """What one pass over a column saw."""

    non_null: int = 0
    iso: int = 0
    slashed: int = 0
    max_first: int = 0  # largest leading field among slash/dash dates
    max_second: int = 0


@dataclass(frozen=True)
class FormatChoice:
    column: str
    label: str  # what the run report shows, e.g. "ISO-8601 + DD/MM/YYYY[ HH:MM[:SS]]"
    date_order: str | None  # month_first / day_first for slash dates, None if the column has none
    reason: str
    conflict: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def choose_format(column: str, ev: ColumnEvidence, default_order: str) -> FormatChoice:
    parts = ["ISO-8601"] if ev.iso else []
    if not ev.slashed:
        label = " + ".join(parts) or "none (no parseable values)"
        return FormatChoice(column, label, None, f"{ev.iso} ISO values, no slash/dash dates")
    day_proof, month_proof = ev.max_first > 12, ev.max_second > 12
    if day_proof and not month_proof:
        order, reason = "day_first", f"a first field of {ev.max_first} proves day-first"
    elif month_proof and not day_proof:
        order, reason = "month_first", f"a second field of {ev.max_second} proves month-first"
    elif not day_proof:
        order, reason = default_order, "no field above 12: ambiguous, contract default used"
    else:
        order = default_order
        reason = (
            f"conflict: first fields up to {ev.max_first} and second fields up to {ev.max_second}; "
            f"read as {order} throughout, values it cannot read are counted as unparseable"
        )
    label = " + ".join([*parts, LABEL[order]])
    return FormatChoice(column, label, order, reason, conflict=day_proof and month_proof)


def evidence_of(values: list[str | None]) -> ColumnEvidence:
    """Pure-Python counterpart of the Spark aggregation (used by property tests and the inspect step)."""
    non_null = iso = slashed = max_first = max_second = 0
    for raw in values:
        if raw is None or not raw.strip():
            continue
        v = raw.strip()
        non_null += 1
        if _ISO.match(v):
            iso += 1
        elif m := _DMY_MDY.match(v):
            slashed += 1
            max_first, max_second = max(max_first, int(m.group(1))), max(max_second, int(m.group(2)))
    return ColumnEvidence(non_null, iso, slashed, max_first, max_second)
