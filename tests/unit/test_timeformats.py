from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ticketcore.contract import ContractError, load_contract, parse_contract
from ticketcore.timeformats import (
    MONTH_NAMES,
    ColumnEvidence,
    FormatChoice,
    TimestampSettings,
    choose_format,
    evidence_of,
    parse_value,
    read_value,
    settings_from_mapping,
    shape_of,
)

days = st.integers(min_value=1, max_value=28)
months = st.integers(min_value=1, max_value=12)
# Whole seconds or microseconds within the default plausible range (1990-01-01 .. 2100-01-01).
instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59))


def test_iso_only_column():
    ev = evidence_of(["2024-01-02T03:04:05Z", "2024-01-02 3:04", "2024-01-02", None, " "])
    assert ev == ColumnEvidence(non_null=3, iso=3, slashed=0, max_first=0, max_second=0)
    choice = choose_format("c", ev, "month_first")
    assert choice.label == "ISO-8601" and choice.shapes == ("iso",)


def test_day_first_proven_by_a_first_field_above_12():
    ev = evidence_of(["03/04/2024", "25/12/2024 10:00", "01-02-2024"])
    choice = choose_format("c", ev, "month_first")
    assert choice.date_order == "day_first"
    assert "25" in choice.reason


def test_month_first_proven_by_a_second_field_above_12():
    choice = choose_format("c", evidence_of(["03/04/2024", "12/31/2024 9:07"]), "day_first")
    assert choice.date_order == "month_first" and not choice.conflict


def test_ambiguous_column_uses_the_contract_default():
    assert (
        choose_format("c", evidence_of(["03/04/2024", "01/02/2024"]), "day_first").date_order == "day_first"
    )
    assert choose_format("c", evidence_of(["03/04/2024"]), "month_first").date_order == "month_first"


def test_conflicting_column_is_flagged_not_mixed():
    choice = choose_format("c", evidence_of(["25/12/2024", "12/25/2024"]), "month_first")
    assert choice.conflict and choice.date_order == "month_first"
    assert "conflict" in choice.reason
    assert parse_value("25/12/2024", choice) is None  # not re-read day-first: counted as unparseable instead


@given(
    st.lists(st.tuples(days, months), min_size=1, max_size=30), st.sampled_from(["month_first", "day_first"])
)
def test_inference_never_contradicts_the_data(pairs, default):
    """Whatever the values, a proven order is chosen; an unproven one is the default."""
    dmy = [f"{d:02d}/{m:02d}/2024" for d, m in pairs]
    choice = choose_format("c", evidence_of(dmy), default)
    if any(d > 12 for d, _ in pairs):
        assert choice.date_order == "day_first"
    else:
        assert choice.date_order == default
    mdy = [f"{m}/{d}/2024 7:05" for d, m in pairs]
    choice = choose_format("c", evidence_of(mdy), default)
    assert choice.date_order == ("month_first" if any(d > 12 for d, _ in pairs) else default)


# ---------------------------------------------------------------- shapes, read back


def every_shape(order: str = "month_first", s: TimestampSettings | None = None) -> FormatChoice:
    """A reading that accepts every shape, numeric dates in `order`."""
    values = ["2024-01-03", "2024/01/03", "1/3/2024", "8 Mar 2024", "1704291300"]
    return replace(choose_format("c", evidence_of(values), s or TimestampSettings()), date_order=order)


def utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC)


def twelve(dt: datetime) -> str:
    return f"{dt.hour % 12 or 12}:{dt.minute:02d}:{dt.second:02d} {'PM' if dt.hour >= 12 else 'AM'}"


def cased(text: str, how: int) -> str:
    return (text.lower(), text.upper(), text.title())[how % 3]


# (shape, date order, formatter, precision the text keeps)
FORMATS = [
    ("iso", None, lambda d, c: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "micro"),
    ("iso", None, lambda d, c: d.strftime("%Y-%m-%d %H:%M:%S"), "second"),
    ("ymd", None, lambda d, c: d.strftime("%Y-%m-%d ") + twelve(d), "second"),
    ("ymd", None, lambda d, c: d.strftime("%Y/%m/%d %H:%M"), "minute"),
    ("numeric", "month_first", lambda d, c: f"{d.month}/{d.day}/{d.year} " + twelve(d)[:-6] + twelve(d)[-3:],
     "minute"),
    ("numeric", "day_first", lambda d, c: d.strftime("%d.%m.%Y %H:%M"), "minute"),
    ("numeric", "day_first", lambda d, c: d.strftime("%d-%m-%y"), "day"),
    ("named", None, lambda d, c: d.strftime("%d/") + cased(d.strftime("%b"), c) + d.strftime("/%y ")
     + twelve(d)[:-6] + twelve(d)[-3:], "minute"),  # Jira Cloud: 08/Mar/24 2:15 PM
    ("named", None, lambda d, c: f"{d.day} {cased(MONTH_NAMES[d.month - 1], c)} {d.year} {d:%H:%M}", "minute"),
    ("named", None, lambda d, c: f"{cased(d.strftime('%b'), c)} {d.day}, {d.year}", "day"),
    ("named", None, lambda d, c: f"{d:%A}, {MONTH_NAMES[d.month - 1].title()} {d.day}, {d.year} " + twelve(d),
     "second"),
    ("epoch", None, lambda d, c: str(int(utc(d).timestamp())), "second"),
    ("epoch", None, lambda d, c: str(int(utc(d).timestamp()) * 1000 + d.microsecond // 1000), "milli"),
]


def truncated(dt: datetime, precision: str) -> datetime:
    keep = {"micro": dt, "milli": dt.replace(microsecond=dt.microsecond // 1000 * 1000),
            "second": dt.replace(microsecond=0), "minute": dt.replace(second=0, microsecond=0),
            "day": dt.replace(hour=0, minute=0, second=0, microsecond=0)}
    return keep[precision]


@pytest.mark.parametrize("shape,order,fmt,precision", FORMATS)
@given(dt=instants, case=st.integers(0, 2))
def test_each_shape_formatted_then_read_back_is_the_same_instant(shape, order, fmt, precision, dt, case):
    text = fmt(dt, case)
    assert shape_of(text) == shape
    assume(dt.year < 2090 or str(dt.year) in text)  # a two-digit year of the 2090s reads as the 1990s
    # Two-digit years in this range (1990-2099) read back under a pivot that puts 90-99 in the 1900s.
    s = TimestampSettings(two_digit_year_pivot=90)
    assert parse_value(text, every_shape(order or "month_first", s)) == utc(truncated(dt, precision))


@given(dt=instants, offset=st.integers(min_value=-18 * 60, max_value=18 * 60))
def test_a_zone_offset_converts_to_utc(dt, offset):
    local = dt + timedelta(minutes=offset)
    sign = "+" if offset >= 0 else "-"
    zone = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    # The range is checked on the UTC instant; the local text may lie outside it by the offset.
    choice = every_shape(s=TimestampSettings(plausible_min=datetime(1980, 1, 1)))
    assert parse_value(local.strftime("%Y-%m-%dT%H:%M:%S.%f") + zone, choice) == utc(dt)
    assert parse_value(local.strftime("%Y/%m/%d %H:%M:%S") + zone.replace(":", ""), choice) == utc(
        dt.replace(microsecond=0)
    )


@given(dt=instants)
def test_epoch_unit_is_told_by_magnitude(dt):
    seconds = int(utc(dt).timestamp())
    choice = every_shape()
    want = utc(dt.replace(microsecond=0))
    assert parse_value(str(seconds), choice) == parse_value(str(seconds * 1000), choice) == want
    # Too small to be a date in range in either unit (epoch 0 is a common placeholder): out of range.
    assert read_value(str(seconds // 10**4), choice).status == "out_of_range"


def test_epoch_column_mixed_with_iso():
    values = ["1704291300", "1704291300000", "2024-01-03T14:15:00Z"]
    choice = choose_format("created_at", evidence_of(values), TimestampSettings())
    assert choice.shapes == ("iso", "epoch") and "epoch" in choice.reason and "1 iso" in choice.reason
    assert {parse_value(v, choice) for v in values} == {datetime(2024, 1, 3, 14, 15, tzinfo=UTC)}


@given(yy=st.integers(0, 99), pivot=st.integers(0, 100))
def test_two_digit_year_pivot(yy, pivot):
    s = TimestampSettings(two_digit_year_pivot=pivot, plausible_min=datetime(1900, 1, 1))
    want = (2000 if yy < pivot else 1900) + yy
    assert parse_value(f"15/06/{yy:02d}", every_shape("day_first", s)) == datetime(want, 6, 15, tzinfo=UTC)
    assert parse_value(f"15-Jun-{yy:02d}", every_shape(s=s)) == datetime(want, 6, 15, tzinfo=UTC)


@given(dt=st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9998, 12, 31)),
       low=st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(5000, 1, 1)),
       span=st.timedeltas(min_value=timedelta(days=1), max_value=timedelta(days=365 * 4000)))
def test_plausible_range(dt, low, span):
    s = TimestampSettings(plausible_min=low, plausible_max=low + span)
    got = read_value(dt.strftime("%Y-%m-%d %H:%M:%S.%f"), every_shape(s=s))
    if low <= dt < low + span:
        assert got.status == "ok" and got.value == utc(dt)
    else:
        assert got.status == "out_of_range" and got.value is None


@pytest.mark.parametrize(
    "text,status",
    [
        ("0001-01-01 00:00:00", "out_of_range"),
        ("0000-01-01", "out_of_range"),  # year 0: Python's datetime has none; still a date, out of range
        ("1500-06-01", "out_of_range"),  # before the Gregorian reform: what Parquet's rebase trips on
        ("2024-02-30", "unparseable"),
        ("2024-01-03 13:00 PM", "unparseable"),
        ("2024-01-03 00:15 AM", "unparseable"),
        ("2024-01-03T14:15:00+18:01", "unparseable"),
        ("8 Mars 2024", "unparseable"),
        ("yesterday", "unparseable"),
        (" n/a ", "empty"),
        ("   ", "empty"),
        ("12/Jan/24 12:15 AM", "ok"),
        ("Fri, 08 Mar 2024 14:15:00 GMT", "ok"),
    ],
)
def test_statuses(text, status):
    assert read_value(text, every_shape(), ("", "n/a")).status == status


def test_evidence_counts_each_shape():
    ev = evidence_of(["2024-01-03", "2024-01-03 02:15 PM", "10.01.2024 14:00", "08/Mar/24 2:15 PM",
                      "Mar 8, 2024", "1704291300000", "soon", "N/A", None], ["", "n/a"])
    assert (ev.non_null, ev.iso, ev.ymd, ev.slashed, ev.named, ev.epoch, ev.unrecognised) == (7, 1, 1, 1, 2, 1, 1)
    assert (ev.max_first, ev.max_second) == (10, 1)


def test_contract_timestamps_block():
    contract = load_contract()
    assert contract.timestamps.two_digit_year_pivot == 70
    assert contract.timestamps.plausible_min == datetime(1990, 1, 1)
    assert contract.timestamps.plausible_max == datetime(2100, 1, 1)
    s = settings_from_mapping({"plausible_range": {"min": "2000-01-01T00:00:00+02:00", "max": "2030-01-01"}})
    assert s.plausible_min == datetime(1999, 12, 31, 22) and s.two_digit_year_pivot == 70
    for bad in ({"two_digit_year_pivot": 101}, {"plausible_range": {"min": "2030-01-01", "max": "2000-01-01"}},
                {"plausible_range": {"min": "soon"}}, {"ambiguous_date_order": "year_first"}):
        with pytest.raises(ValueError):
            settings_from_mapping(bad)
    text = "columns: {}\ntimestamps: {two_digit_year_pivot: -1}\n"
    with pytest.raises(ContractError, match="two_digit_year_pivot"):
        parse_contract(text)
