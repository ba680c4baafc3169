from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ticketcore.timeformats import ColumnEvidence, choose_format, evidence_of

days = st.integers(min_value=1, max_value=28)
months = st.integers(min_value=1, max_value=12)


def test_iso_only_column():
    ev = evidence_of(["2024-01-02T03:04:05Z", "2024-01-02 3:04", "2024-01-02", None, " "])
    assert ev == ColumnEvidence(non_null=3, iso=3, slashed=0, max_first=0, max_second=0)
    assert choose_format("c", ev, "month_first").label == "ISO-8601"


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
