"""Timestamp readings: the shapes the job accepts, and how it picks one reading per column per file.

A value is read in the first of these shapes its whole text matches (after trimming spaces):

- `iso`: ISO 8601 as Spark's cast reads it (`2024-01-03`, `2024-01-03T14:15:00.123+05:30`). The cheap path:
  one regex test, then the cast.
- `ymd`: other year-first dates: `2024/01/03`, a 12-hour clock (`2024-01-03 02:15:00 PM`), a zone after
  minutes (`2024-01-03T14:15Z`), `GMT`.
- `numeric`: day/month dates with the year last, `/`, `-` or `.` between fields, a 4- or 2-digit year, an
  optional 24- or 12-hour time (`1/3/2024 2:15 PM`, `10.01.2024 14:00`, `03-01-24`).
- `named`: a month name, abbreviated or full, any case, with an optional weekday before it: day first
  (`08/Mar/24 2:15 PM` as Jira Cloud writes it, `08-Mar-2024`, `8 March 2024 14:15`,
  `Fri, 08 Mar 2024 14:15:00 GMT`) or month first (`Mar 8, 2024`, `March 8, 2024 2:15 PM`).
- `epoch`: Unix epoch seconds or milliseconds (digits only, at most 14). Each value is read in the unit that
  puts it inside the plausible range (seconds first); one that fits neither is read as seconds below 10^11 and
  milliseconds above, and is then out of range.

Rules shared by the shapes: a two-digit year `yy` is `20yy` below the contract's pivot and `19yy` from it; a
12-hour clock takes hours 1-12 (12 AM is midnight, 12 PM noon); hours 0-23, minutes and seconds 0-59;
fractions are truncated to microseconds; a zone (`Z`, `UTC`, `GMT`, `+hh`, `+hhmm`, `+hh:mm`, at most 18
hours) converts to UTC, and a value without one is UTC. An impossible date (Feb 30) is unparseable.

Numeric dates are ambiguous, so their field order is chosen once per column from the whole column: a first
field above 12 proves day-first, a second field above 12 proves month-first, no proof falls back to the
contract default. A column with proof of both is a conflict: one reading is still used for every value (never
a mix), and the values it cannot read are counted and reported.

After reading, the contract's plausible range applies: a value outside `[min, max)` is out of range (the job
nulls it in an optional column and quarantines the row for a required one). It also keeps out values Spark or
Parquet cannot write (year 1, dates before the Gregorian reform).

The Spark expressions in `ticketcore.spark_transform` are built from the regexes and the `FormatChoice` here;
`parse_value` is their pure-Python counterpart (the `ticketflow inspect` preview and the tests use it), and
gives the same instant for every text.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

# ---------------------------------------------------------------- the shapes (Java and Python regex alike)
# Written in the syntax both engines read the same way: ASCII classes, positional groups, `^...$` anchors.
# Spark runs them with Java's UNIX_LINES flag (`JAVA_FLAGS`), so `$` matches as Python's does.

# What Spark's ISO cast reads correctly; a zone only after seconds (the cast returns null for `14:15Z`).
# Groups: year, month, day, hour, minute, second, fraction, zone.
ISO_REGEX = (
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?"
    r"(?:\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?))?)?)?$"
)
# Time and zone after a date in the other shapes. Groups: hour, minute, second, fraction, AM/PM letter, zone.
_TIME = r"(?:(?:,?\s+|T)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:\s*([AaPp])\.?[Mm]\.?)?)?"
_ZONE = r"(?:\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?"
_WEEKDAY = r"(?:[A-Za-z]{2,9}\.?,?\s+)?"
_YEAR = r"(\d{4}|\d{2})"
YMD_REGEX = rf"^(\d{{4}})[/.-](\d{{1,2}})[/.-](\d{{1,2}}){_TIME}{_ZONE}$"
# Year last: the two leading fields are groups 1 and 2 (day and month, in an order the column decides).
DMY_MDY_REGEX = rf"^(\d{{1,2}})[/.-](\d{{1,2}})[/.-]{_YEAR}{_TIME}{_ZONE}$"
DAY_NAME_REGEX = rf"^{_WEEKDAY}(\d{{1,2}})(?:st|nd|rd|th)?[ /.-]+([A-Za-z]{{3,9}})\.?[ /.,-]+{_YEAR}{_TIME}{_ZONE}$"
NAME_DAY_REGEX = rf"^{_WEEKDAY}([A-Za-z]{{3,9}})\.?[ /.-]+(\d{{1,2}})(?:st|nd|rd|th)?,?[ /.-]+{_YEAR}{_TIME}{_ZONE}$"
EPOCH_REGEX = r"^\d{1,14}$"
JAVA_FLAGS = "(?d)"  # UNIX_LINES: only "\n" ends a line, as in Python

# Where each shape's groups go in the canonical parts (year, month, day, hour, minute, second, fraction,
# AM/PM, zone): 1-based group numbers, 0 for "none".
_TAIL = (4, 5, 6, 7, 8, 9)
PARTS_LAYOUT: dict[str, tuple[int, ...]] = {
    "iso": (1, 2, 3, 4, 5, 6, 7, 0, 8),
    "ymd": (1, 2, 3, *_TAIL),
    "month_first": (3, 1, 2, *_TAIL),
    "day_first": (3, 2, 1, *_TAIL),
    "day_name": (3, 2, 1, *_TAIL),
    "name_day": (3, 1, 2, *_TAIL),
}

# Shapes in the order a value is tested; `named` covers both month-name regexes.
SHAPES = ("iso", "ymd", "numeric", "named", "epoch")
SHAPE_LABEL = {
    "iso": "ISO-8601",
    "ymd": "YYYY/MM/DD[ hh:mm[:ss][ AM/PM]]",
    "named": "month names (DD MMM YY[YY] / MMM DD, YY[YY])[ hh:mm[:ss][ AM/PM]]",
    "epoch": "Unix epoch seconds/milliseconds",
}
LABEL = {"month_first": "MM/DD/YY[YY][ hh:mm[:ss][ AM/PM]]", "day_first": "DD/MM/YY[YY][ hh:mm[:ss][ AM/PM]]"}

MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
               "october", "november", "december")
# Month token (lower case) -> number: digits, the full English names, three-letter abbreviations, "sept".
MONTHS: dict[str, int] = {
    **{str(m): m for m in range(1, 13)},
    **{f"{m:02d}": m for m in range(1, 10)},
    **{n: i + 1 for i, n in enumerate(MONTH_NAMES)},
    **{n[:3]: i + 1 for i, n in enumerate(MONTH_NAMES)},
    "sept": 9,
}

# Epoch magnitudes: below this a value that fits no unit in range is read as seconds (year 5138 as seconds,
# 1973 as milliseconds), above it as milliseconds.
EPOCH_MILLIS_FROM = 10**11
MICROS = 1_000_000
MAX_ZONE_SECONDS = 18 * 3600  # java.time.ZoneOffset's limit, which Spark's cast keeps

DEFAULT_PIVOT = 70
DEFAULT_MIN = datetime(1990, 1, 1)
DEFAULT_MAX = datetime(2100, 1, 1)

_FLAGS = re.ASCII  # \d and \s as Java reads them
_ISO = re.compile(ISO_REGEX, _FLAGS)
_YMD = re.compile(YMD_REGEX, _FLAGS)
_DMY_MDY = re.compile(DMY_MDY_REGEX, _FLAGS)
_DAY_NAME = re.compile(DAY_NAME_REGEX, _FLAGS)
_NAME_DAY = re.compile(NAME_DAY_REGEX, _FLAGS)
_EPOCH = re.compile(EPOCH_REGEX, _FLAGS)


def java(regex: str) -> str:
    """The regex as Spark must run it (Java), to match exactly what Python's `re` matches."""
    return JAVA_FLAGS + regex


# ---------------------------------------------------------------- contract settings


@dataclass(frozen=True)
class TimestampSettings:
    """The contract's `timestamps:` block. Range bounds are naive datetimes in UTC; min inclusive, max
    exclusive."""

    ambiguous_date_order: str = "month_first"
    two_digit_year_pivot: int = DEFAULT_PIVOT
    plausible_min: datetime = DEFAULT_MIN
    plausible_max: datetime = DEFAULT_MAX

    @property
    def min_micros(self) -> int:
        return to_micros(self.plausible_min)

    @property
    def max_micros(self) -> int:
        return to_micros(self.plausible_max)


def _as_datetime(raw: object, what: str) -> datetime:
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError as exc:
            raise ValueError(f"{what} must be an ISO date or date-time, got {raw!r}") from exc
    else:
        raise ValueError(f"{what} must be an ISO date or date-time, got {raw!r}")
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def settings_from_mapping(ts: dict[str, Any] | None) -> TimestampSettings:
    """Read the contract's `timestamps:` block; ValueError names the setting that is wrong."""
    ts = ts or {}
    order = ts.get("ambiguous_date_order", "month_first")
    if order not in ("month_first", "day_first"):
        raise ValueError(f"ambiguous_date_order must be month_first or day_first, got {order!r}")
    pivot = ts.get("two_digit_year_pivot", DEFAULT_PIVOT)
    if not isinstance(pivot, int) or isinstance(pivot, bool) or not 0 <= pivot <= 100:
        raise ValueError(f"two_digit_year_pivot must be an integer from 0 to 100, got {pivot!r}")
    span = ts.get("plausible_range") or {}
    if not isinstance(span, dict):
        raise ValueError("plausible_range must be a mapping with min and max")
    low = _as_datetime(span.get("min", DEFAULT_MIN), "plausible_range.min")
    high = _as_datetime(span.get("max", DEFAULT_MAX), "plausible_range.max")
    if not low < high:
        raise ValueError(f"plausible_range.min ({low}) must be before plausible_range.max ({high})")
    return TimestampSettings(order, pivot, low, high)


# ---------------------------------------------------------------- evidence and the choice


@dataclass(frozen=True)
class ColumnEvidence:
    """What one pass over a column saw: non-null values, the values in each shape, and for numeric dates the
    largest first and second fields."""

    non_null: int = 0
    iso: int = 0
    slashed: int = 0  # numeric day/month dates
    max_first: int = 0  # largest leading field among numeric dates
    max_second: int = 0
    ymd: int = 0
    named: int = 0
    epoch: int = 0

    def count(self, shape: str) -> int:
        return {"iso": self.iso, "ymd": self.ymd, "numeric": self.slashed, "named": self.named,
                "epoch": self.epoch}[shape]

    @property
    def unrecognised(self) -> int:
        return self.non_null - sum(self.count(s) for s in SHAPES)


@dataclass(frozen=True)
class FormatChoice:
    """The one reading of a column in a file: the shapes accepted (`iso` always; the others only when the
    column has them), the field order of numeric dates, the pivot and the plausible range (ISO strings, UTC)."""

    column: str
    label: str  # what the run report shows, e.g. "ISO-8601 + DD/MM/YY[YY][ hh:mm[:ss][ AM/PM]]"
    date_order: str | None  # month_first / day_first for numeric dates, None if the column has none
    reason: str
    conflict: bool = False
    shapes: tuple[str, ...] = ("iso",)
    two_digit_year_pivot: int = DEFAULT_PIVOT
    plausible_min: str = DEFAULT_MIN.isoformat()
    plausible_max: str = DEFAULT_MAX.isoformat()

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["shapes"] = list(self.shapes)
        return out

    @property
    def min_micros(self) -> int:
        return to_micros(datetime.fromisoformat(self.plausible_min))

    @property
    def max_micros(self) -> int:
        return to_micros(datetime.fromisoformat(self.plausible_max))


def _settings(settings: TimestampSettings | str) -> TimestampSettings:
    # A bare string is the ambiguous date order alone (the older signature), with the default rules.
    return TimestampSettings(ambiguous_date_order=settings) if isinstance(settings, str) else settings


def choose_format(column: str, ev: ColumnEvidence, settings: TimestampSettings | str) -> FormatChoice:
    """The reading of `column` from the whole column's evidence. `settings`: the contract's
    `TimestampSettings` (or just its ambiguous date order)."""
    s = _settings(settings)
    seen = [shape for shape in SHAPES if ev.count(shape)]
    shapes = tuple(dict.fromkeys(["iso", *seen]))  # ISO is always accepted: the cheap, unambiguous path
    common = {"shapes": shapes, "two_digit_year_pivot": s.two_digit_year_pivot,
              "plausible_min": s.plausible_min.isoformat(), "plausible_max": s.plausible_max.isoformat()}
    counts = [f"{ev.count(shape)} {shape}" for shape in seen]
    if ev.unrecognised:
        counts.append(f"{ev.unrecognised} in no known shape")
    evidence = ", ".join(counts) or "no values"
    rules = []
    if {"numeric", "named"} & set(seen):
        p = s.two_digit_year_pivot
        rules.append(f"two-digit years: 00-{p - 1:02d} -> 20yy, {p:02d}-99 -> 19yy" if 0 < p < 100
                     else f"two-digit years: all -> {'19' if p == 0 else '20'}yy")
    if "epoch" in seen:
        rules.append("epoch unit by magnitude (the one in the plausible range, seconds first)")
    rules.append(f"plausible range {s.plausible_min.isoformat()} .. {s.plausible_max.isoformat()}")

    order, order_reason, conflict = None, "", False
    if ev.slashed:
        day_proof, month_proof = ev.max_first > 12, ev.max_second > 12
        conflict = day_proof and month_proof
        if day_proof and not month_proof:
            order, order_reason = "day_first", f"a first field of {ev.max_first} proves day-first"
        elif month_proof and not day_proof:
            order, order_reason = "month_first", f"a second field of {ev.max_second} proves month-first"
        elif not day_proof:
            order, order_reason = s.ambiguous_date_order, "no field above 12: ambiguous, contract default used"
        else:
            order = s.ambiguous_date_order
            order_reason = (
                f"conflict: first fields up to {ev.max_first} and second fields up to {ev.max_second}; "
                f"read as {order} throughout, values it cannot read are counted as unparseable"
            )
    labels = [LABEL[order] if shape == "numeric" and order else SHAPE_LABEL[shape] for shape in seen]
    label = " + ".join(labels) or "none (no parseable values)"
    reason = "; ".join(x for x in (evidence, order_reason, *rules) if x)
    return FormatChoice(column, label, order, reason, conflict=conflict, **common)  # type: ignore[arg-type]


def shape_of(text: str) -> str | None:
    """The shape a trimmed, non-empty value is read in (the first that matches), or None."""
    if _ISO.match(text):
        return "iso"
    if _YMD.match(text):
        return "ymd"
    if _DMY_MDY.match(text):
        return "numeric"
    if _DAY_NAME.match(text) or _NAME_DAY.match(text):
        return "named"
    if _EPOCH.match(text):
        return "epoch"
    return None


def clean(raw: str | None, missing_values: tuple[str, ...] | list[str] = ("",)) -> str | None:
    """The value as the job's typing sees it: spaces trimmed (Spark's `trim`: spaces only), a missing-value
    token (compared lower-cased, as `blank_missing` does) or an empty text as None."""
    if raw is None:
        return None
    v = raw.strip(" ")
    return None if not v or v.lower() in missing_values else v


def evidence_of(values: list[str | None], missing_values: tuple[str, ...] | list[str] = ("",)) -> ColumnEvidence:
    """Pure-Python counterpart of the Spark aggregation (used by the tests and the inspect step)."""
    counts = dict.fromkeys(SHAPES, 0)
    non_null = max_first = max_second = 0
    for raw in values:
        v = clean(raw, missing_values)
        if v is None:
            continue
        non_null += 1
        shape = shape_of(v)
        if shape is None:
            continue
        counts[shape] += 1
        if shape == "numeric":
            m = _DMY_MDY.match(v)
            assert m is not None
            max_first, max_second = max(max_first, int(m.group(1))), max(max_second, int(m.group(2)))
    return ColumnEvidence(non_null, counts["iso"], counts["numeric"], max_first, max_second, counts["ymd"],
                          counts["named"], counts["epoch"])


# ---------------------------------------------------------------- reading one value (the Spark expression's twin)

_EPOCH_DAY = 719_468  # days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, any year (Java's LocalDate; Python's date stops at
    year 1). Howard Hinnant's algorithm."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - _EPOCH_DAY


def _month_days(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if m in (4, 6, 9, 11) else 31


def to_micros(dt: datetime) -> int:
    """Microseconds since the epoch of a naive-UTC (or aware) datetime."""
    if dt.tzinfo:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    days = days_from_civil(dt.year, dt.month, dt.day)
    return ((days * 24 + dt.hour) * 60 + dt.minute) * 60 * MICROS + dt.second * MICROS + dt.microsecond


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of microseconds since the epoch (years 1-9999)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def zone_seconds(zone: str) -> int | None:
    """Offset east of UTC in seconds of a zone token (`Z`, `UTC`, `GMT`, `+hh`, `+hhmm`, `+hh:mm`), None if
    it is beyond 18 hours or has minutes above 59."""
    if zone in ("", "Z", "z", "UTC", "GMT"):
        return 0
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    total = hours * 3600 + minutes * 60
    if minutes > 59 or total > MAX_ZONE_SECONDS:
        return None
    return -total if zone[0] == "-" else total


def micros_of_parts(parts: tuple[str, ...], pivot: int) -> int | None:
    """Microseconds since the epoch of canonical parts (year, month, day, hour, minute, second, fraction,
    AM/PM letter, zone; empty strings for parts a value does not have), None when they name no instant."""
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction, ampm, zone = parts
    year = int(year_s)
    if len(year_s) == 2:
        year += 2000 if year < pivot else 1900
    month = MONTHS.get(month_s.lower())
    day = int(day_s)
    if month is None or not 1 <= day <= _month_days(year, month):
        return None
    hour = int(hour_s or 0)
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm in "Pp" else 0)
    minute, second = int(minute_s or 0), int(second_s or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = zone_seconds(zone)
    if offset is None:
        return None
    micros = int(fraction[:6].ljust(6, "0")) if fraction else 0
    local = ((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    return (local - offset) * MICROS + micros


def epoch_micros(n: int, min_micros: int, max_micros: int) -> int:
    """Microseconds of an epoch number: seconds if that is in range, else milliseconds if that is, else by
    magnitude (seconds below 10^11)."""
    if min_micros <= n * MICROS < max_micros:
        return n * MICROS
    if min_micros <= n * 1000 < max_micros:
        return n * 1000
    return n * MICROS if n < EPOCH_MILLIS_FROM else n * 1000


def _parts(match: re.Match[str], layout: tuple[int, ...]) -> tuple[str, ...]:
    return tuple((match.group(g) or "") if g else "" for g in layout)


def read_micros(text: str, choice: FormatChoice) -> int | None:
    """Microseconds since the epoch of a trimmed, non-empty value in the column's reading, before the
    plausible range applies; None when the reading cannot read it."""
    pivot = choice.two_digit_year_pivot
    if m := _ISO.match(text):
        return micros_of_parts(_parts(m, PARTS_LAYOUT["iso"]), pivot)
    if "ymd" in choice.shapes and (m := _YMD.match(text)):
        return micros_of_parts(_parts(m, PARTS_LAYOUT["ymd"]), pivot)
    if "numeric" in choice.shapes and choice.date_order and (m := _DMY_MDY.match(text)):
        return micros_of_parts(_parts(m, PARTS_LAYOUT[choice.date_order]), pivot)
    if "named" in choice.shapes:
        if m := _DAY_NAME.match(text):
            return micros_of_parts(_parts(m, PARTS_LAYOUT["day_name"]), pivot)
        if m := _NAME_DAY.match(text):
            return micros_of_parts(_parts(m, PARTS_LAYOUT["name_day"]), pivot)
    if "epoch" in choice.shapes and _EPOCH.match(text):
        return epoch_micros(int(text), choice.min_micros, choice.max_micros)
    return None


@dataclass(frozen=True)
class Reading:
    """One value read: `status` is "empty", "ok", "unparseable" or "out_of_range"; `value` only when ok."""

    status: str
    value: datetime | None = field(default=None)


def read_value(raw: str | None, choice: FormatChoice,
               missing_values: tuple[str, ...] | list[str] = ("",)) -> Reading:
    """What the job does with one source value of the column: its instant (aware, UTC) or why not."""
    text = clean(raw, missing_values)
    if text is None:
        return Reading("empty")
    micros = read_micros(text, choice)
    if micros is None:
        return Reading("unparseable")
    if not choice.min_micros <= micros < choice.max_micros:
        return Reading("out_of_range")
    return Reading("ok", from_micros(micros))


def parse_value(raw: str | None, choice: FormatChoice,
                missing_values: tuple[str, ...] | list[str] = ("",)) -> datetime | None:
    """The instant (aware, UTC) the Spark expression gives for `raw` in this reading; None when it gives null
    (empty, unparseable or out of the plausible range)."""
    return read_value(raw, choice, missing_values).value
