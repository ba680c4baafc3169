"""The synthetic ticket generator: deterministic, contract-mapped, dirty in exactly the ways it reports."""

from __future__ import annotations

import argparse
import csv
import random
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ticketcore.contract import load_contract, map_headers, normalise_token
from ticketcore.timeformats import DMY_MDY_REGEX, ISO_REGEX, choose_format, evidence_of
from ticketflow.commands import generate as generate_command
from ticketflow.generate import DIRTY_KINDS, HEADERS, GenerateStats, generate_csv

ROWS, SEED, DIRTY = 2000, 11, 0.05
CONTRACT = load_contract()
# Positions in the generated header, by canonical name.
COL = {name: i for i, name in enumerate(map_headers(HEADERS, CONTRACT).output_names)}
WIDTH = len(HEADERS)
US = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})")
Record = list[str]
Sample = tuple[Path, GenerateStats, list[Record]]
TIMESTAMP_COLUMNS = ("created_at", "updated_at", "resolved_at", "first_response_at")


def parse_ts(value: str) -> datetime | None:
    """Independent reading of the formats the generator promises: ISO 8601 (naive = UTC) or US M/D/Y H:MM."""
    if m := US.fullmatch(value):
        month, day, year, hour, minute = map(int, m.groups())
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def readable_score(value: str) -> bool:
    """Empty, or a whole number 1..5 (`4.0` too), as the ETL's integer cast reads it."""
    if value == "":
        return True
    try:
        number = float(value)
    except ValueError:
        return False
    return number.is_integer() and 1 <= number <= 5


def enum_map(column: str) -> dict[str, str]:
    return CONTRACT.columns[column].synonym_map()


def read_records(path: Path) -> list[Record]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def classify(records: list[Record]) -> tuple[Counter[str], list[tuple[Record, Record]], list[Record]]:
    """Find each dirty kind from the data alone: (counts, (original, duplicate) pairs, clean records)."""
    kinds: Counter[str] = Counter()
    first_seen: dict[str, Record] = {}
    pairs, clean = [], []
    statuses = enum_map("status")
    for rec in records:
        if len(rec) != WIDTH:
            kinds["ragged"] += 1
            continue
        v = {name: rec[i] for name, i in COL.items()}
        if v["ticket_id"] == "":
            kinds["missing_ticket_id"] += 1
        elif parse_ts(v["created_at"]) is None:
            kinds["bad_created_at"] += 1
        elif normalise_token(v["status"]) not in statuses:
            kinds["unknown_enum"] += 1
        elif not parse_ts(v["updated_at"]) or not readable_score(v["satisfaction_score"]):
            kinds["bad_optional"] += 1
        elif v["ticket_id"] in first_seen:
            kinds["duplicate"] += 1
            pairs.append((first_seen[v["ticket_id"]], rec))
        else:
            first_seen[v["ticket_id"]] = rec
            clean.append(rec)
    return kinds, pairs, clean


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    path = tmp_path_factory.mktemp("generate") / "tickets.csv"
    stats = generate_csv(path, ROWS, seed=SEED, dirty=DIRTY)
    return path, stats, read_records(path)


def test_same_seed_same_bytes_other_seed_different(tmp_path: Path) -> None:
    random.seed(0)
    global_state = random.getstate()
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    stats_a = generate_csv(a, 500, seed=3)
    stats_b = generate_csv(b, 500, seed=3)
    generate_csv(c, 500, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert stats_a == stats_b
    assert a.read_bytes() != c.read_bytes()
    assert random.getstate() == global_state  # the module-level generator is never used


def test_stats_match_the_file(sample: Sample) -> None:
    path, stats, records = sample
    raw = path.read_bytes()
    assert stats.rows == ROWS
    assert len(records) == stats.rows + 1  # header first
    assert stats.bytes == len(raw)
    assert stats.physical_lines == raw.count(b"\n")
    assert stats.physical_lines > len(records)  # some records span several lines
    assert b"\r" not in raw
    raw.decode("utf-8")  # strict UTF-8


def test_headers_map_onto_the_contract(sample: Sample) -> None:
    _, _, records = sample
    assert records[0] == HEADERS
    mapping = map_headers(records[0], CONTRACT)
    assert mapping.unknown == {}
    assert set(mapping.canonical.values()) == set(CONTRACT.columns)
    assert mapping.canonical["Ticket ID"] == "ticket_id"
    assert mapping.canonical["Created At"] == "created_at"


def test_dirty_counts_add_up_and_are_what_the_file_contains(
    sample: Sample,
) -> None:
    _, stats, records = sample
    assert set(stats.dirty) == set(DIRTY_KINDS)
    assert sum(stats.dirty.values()) == round(ROWS * DIRTY) == 100
    assert max(stats.dirty.values()) - min(stats.dirty.values()) <= 1  # equal shares
    kinds, _, _ = classify(records[1:])
    assert dict(kinds) == stats.dirty


def test_expected_outcome_for_the_etl(sample: Sample) -> None:
    _, stats, records = sample
    kinds, pairs, _ = classify(records[1:])
    quarantined = kinds["missing_ticket_id"] + kinds["bad_created_at"] + kinds["ragged"] + len(pairs)
    assert stats.expected_quarantined == quarantined > 0
    assert stats.expected_valid == ROWS - quarantined


def test_duplicates_repeat_a_clean_row_once_with_a_later_update(
    sample: Sample,
) -> None:
    _, stats, records = sample
    _, pairs, clean = classify(records[1:])
    assert len(pairs) == stats.dirty["duplicate"] > 0
    clean_ids = {rec[COL["ticket_id"]] for rec in clean}
    ids = Counter(rec[COL["ticket_id"]] for rec in records[1:] if len(rec) == WIDTH and rec[COL["ticket_id"]])
    assert max(ids.values()) == 2
    for original, duplicate in pairs:
        assert original[COL["ticket_id"]] in clean_ids
        assert parse_ts(duplicate[COL["updated_at"]]) > parse_ts(original[COL["updated_at"]])
        assert duplicate[COL["created_at"]] == original[COL["created_at"]]


def test_ragged_rows_have_one_field_too_many_or_too_few(
    sample: Sample,
) -> None:
    _, stats, records = sample
    widths = Counter(len(rec) for rec in records[1:])
    assert set(widths) == {WIDTH - 1, WIDTH, WIDTH + 1}
    assert widths[WIDTH - 1] + widths[WIDTH + 1] == stats.dirty["ragged"]


def test_clean_rows_keep_the_timeline_and_map_every_enum(
    sample: Sample,
) -> None:
    _, _, records = sample
    _, _, clean = classify(records[1:])
    assert len(clean) > 1800
    statuses, priorities, channels = enum_map("status"), enum_map("priority"), enum_map("channel")
    for rec in clean:
        assert re.fullmatch(r"TCK-\d{6,}", rec[COL["ticket_id"]])
        created, updated = parse_ts(rec[COL["created_at"]]), parse_ts(rec[COL["updated_at"]])
        assert created is not None and updated is not None
        assert 2024 <= created.year <= 2025
        assert updated >= created
        status = statuses[normalise_token(rec[COL["status"]])]
        resolved = parse_ts(rec[COL["resolved_at"]]) if rec[COL["resolved_at"]] else None
        assert (resolved is not None) == (status in ("resolved", "closed")), rec
        if resolved is not None:
            assert created <= resolved <= updated
        if rec[COL["first_response_at"]]:
            first_response = parse_ts(rec[COL["first_response_at"]])
            assert first_response is not None
            assert created <= first_response <= (resolved or updated)
        assert normalise_token(rec[COL["priority"]]) in priorities
        assert normalise_token(rec[COL["channel"]]) in channels
        assert readable_score(rec[COL["satisfaction_score"]])


def test_values_are_messy_in_the_promised_ways(sample: Sample) -> None:
    path, _, records = sample
    body = [rec for rec in records[1:] if len(rec) == WIDTH]
    descriptions = [rec[COL["description"]] for rec in body]
    assert any("\n" in d for d in descriptions)
    assert any('"' in d for d in descriptions) and b'""' in path.read_bytes()  # quotes doubled on disk
    assert any("," in d for d in descriptions)
    share_multiline = sum("\n" in d for d in descriptions) / len(descriptions)
    assert 0.02 < share_multiline < 0.08
    csat = {rec[COL["satisfaction_score"]] for rec in body}
    assert "" in csat and any(re.fullmatch(r"[1-5]\.0", v) for v in csat) and any(v in csat for v in "12345")
    statuses = {rec[COL["status"]] for rec in body}
    assert {"In Progress", " OPEN ", "Pending Customer Response"} <= statuses
    assert {"P1", "critical", "Lowest"} <= {rec[COL["priority"]] for rec in body}
    emails = [rec[COL["customer_email"]] for rec in body]
    assert any(e != e.lower() for e in emails) and any(e == e.lower() for e in emails)
    tags = {rec[COL["tags"]] for rec in body}
    assert "" in tags and any(";" in t for t in tags) and any(", " in t for t in tags)


def test_timestamp_formats_are_mixed_but_each_column_reads_one_way(
    sample: Sample,
) -> None:
    _, _, records = sample
    body = [rec for rec in records[1:] if len(rec) == WIDTH]
    created = [rec[COL["created_at"]] for rec in body]
    assert any(v.endswith("Z") for v in created)
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", v) for v in created)
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]{8}\.\d{3}[+-]\d\d:\d\d", v) for v in created)
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d", v) for v in created)
    assert any(re.fullmatch(r"\d/\d{1,2}/\d{4} \d:\d\d", v) for v in created)  # unpadded month and hour
    for column in TIMESTAMP_COLUMNS:
        values = [rec[COL[column]] for rec in body]
        readable = [v for v in values if parse_ts(v) is not None]
        assert all(re.match(ISO_REGEX, v) or re.match(DMY_MDY_REGEX, v) for v in readable)
        assert all(int(m.group(1)) <= 12 for v in readable if (m := US.fullmatch(v)))  # never day-first
        choice = choose_format(column, evidence_of(values), "day_first")
        assert not choice.conflict
        assert choice.date_order == "month_first", choice.reason  # proven by the data, not the default


def test_every_row_dirty_never_duplicates(tmp_path: Path) -> None:
    stats = generate_csv(tmp_path / "all_dirty.csv", 60, seed=5, dirty=1.0)
    assert sum(stats.dirty.values()) == 60
    assert stats.dirty["duplicate"] == 0  # there is no clean row to duplicate
    kinds, _, clean = classify(read_records(tmp_path / "all_dirty.csv")[1:])
    assert dict(kinds) == {k: n for k, n in stats.dirty.items() if n}
    assert clean == []


def test_no_rows_and_no_dirt(tmp_path: Path) -> None:
    empty = generate_csv(tmp_path / "empty.csv", 0)
    assert (empty.rows, empty.physical_lines, sum(empty.dirty.values())) == (0, 1, 0)
    assert read_records(tmp_path / "empty.csv") == [HEADERS]
    tidy = generate_csv(tmp_path / "tidy.csv", 300, dirty=0.0)
    assert sum(tidy.dirty.values()) == 0
    assert tidy.expected_valid == 300


@pytest.mark.parametrize(("rows", "dirty"), [(-1, 0.02), (10, -0.1), (10, 1.5)])
def test_rejects_bad_arguments(tmp_path: Path, rows: int, dirty: float) -> None:
    with pytest.raises(ValueError):
        generate_csv(tmp_path / "x.csv", rows, dirty=dirty)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketflow")
    generate_command.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_writes_the_file_and_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "tickets.csv"
    argv = ["generate", "--rows", "120", "--out", str(out), "--seed", "42", "--dirty", "0.05"]
    args = _parser().parse_args(argv)
    assert args.func(args) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    assert "120 rows" in printed[0] and f"{out.stat().st_size:,} bytes" in printed[0]
    assert all(f"{kind}=1" in printed[0] for kind in DIRTY_KINDS)  # 6 dirty rows: one of each kind
    generate_csv(tmp_path / "direct.csv", 120, seed=42, dirty=0.05)
    assert out.read_bytes() == (tmp_path / "direct.csv").read_bytes()


@pytest.mark.parametrize(
    "argv",
    [["--rows", "10"], ["--rows", "-5", "--out", "x.csv"], ["--rows", "5", "--out", "x.csv", "--dirty", "2"]],
)
def test_cli_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["generate", *argv])
