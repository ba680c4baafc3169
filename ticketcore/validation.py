"""Validate a run's staged output with a great-expectations suite built from the contract.

Pure: no AWS here (storage comes in as a `Storage`). great-expectations takes 2-3.5 s to import, so it is
imported lazily, in a background thread (`prefetch_gx`) while the staged Parquet is fetched and read: the
import is Python bytecode holding the GIL, the read is Arrow C++ that releases it (two cores or more).

Only the columns the suite needs are read (pyarrow, enum columns dictionary-encoded -> categoricals), and
great-expectations' pandas engine evaluates the suite on them. `bench/validation_bench.py` measures this
against the alternatives (every column; GX's SQL engine on DuckDB).
"""

from __future__ import annotations

import gc
import importlib
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as pads

from ticketcore.contract import Contract, ContractError, Expectation
from ticketcore.storage import Storage

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuite
    from great_expectations.datasource.fluent.interfaces import Batch

SUITE_NAME = "staged_tickets"
ROWS_VALID_PARAMETER = "rows_valid"  # suite parameter: the run report's count, supplied at validation time
PARTIAL_UNEXPECTED_COUNT = 20
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT}
ARROW_TYPES = {
    "string": pa.string(),
    "enum": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "integer": pa.int32(),
    "array": pa.list_(pa.string()),
}


class DataQualityError(Exception):
    """The staged output failed error-severity expectations; nothing is published. The class name is the
    error name Step Functions sees, so it must not be retried (a redrive after fixing the data or the
    contract re-runs the validation)."""

    def __init__(self, message: str, result: ValidationResult | None = None) -> None:
        super().__init__(message)
        self.result = result


# ------------------------------------------------------------------ great-expectations, imported lazily

_gx_lock = threading.Lock()
_gx_thread: threading.Thread | None = None


def prefetch_gx() -> None:
    """Start importing great-expectations in a background thread; `_gx()` joins it. Idempotent, and a
    no-op once GX is imported."""
    global _gx_thread
    with _gx_lock:
        if _gx_thread is None and "great_expectations.expectations" not in sys.modules:
            _gx_thread = threading.Thread(target=_import_gx_quietly, name="gx-import", daemon=True)
            _gx_thread.start()


def _import_gx_quietly() -> None:
    """Import GX with the cyclic GC paused, then freeze what it built.

    The import allocates ~460k long-lived objects (modules, classes, pydantic models); collections during it
    cost ~0.4 s CPU and find almost nothing, and every later full collection (and the one at interpreter
    exit, ~1 s) would traverse them all again. `gc.freeze()` moves them to the permanent generation.
    A failure here (even a rare import-lock clash with the main thread) is retried by `_gx()` in the
    calling thread, where it raises normally."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        importlib.import_module("great_expectations.expectations")
    except Exception:
        pass
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _gx() -> tuple[Any, Any]:
    """(great_expectations, great_expectations.expectations), waiting for the prefetch if one runs."""
    prefetch_gx()
    if _gx_thread is not None:
        _gx_thread.join()
    gx = importlib.import_module("great_expectations")
    return gx, importlib.import_module("great_expectations.expectations")


def _skip_batch_fingerprint() -> None:
    """GX's pandas engine md5s every in-memory DataFrame under 1 GB (`hash_pandas_object`) as a batch
    marker, twice per validation: ~1.1 s of a 1M-row run. The marker is informational only; no metric
    or expectation reads it. Above `HASH_THRESHOLD` GX skips it itself: lower the threshold to 0."""
    from great_expectations.execution_engine import pandas_execution_engine

    if not hasattr(pandas_execution_engine, "HASH_THRESHOLD"):  # pragma: no cover - GX upgrade guard
        raise RuntimeError("great_expectations changed: pandas_execution_engine.HASH_THRESHOLD is gone")
    pandas_execution_engine.HASH_THRESHOLD = 0


def gx_context() -> Any:
    """An ephemeral (in-memory) data context with progress bars off (GX draws tqdm bars on stderr)."""
    gx, _ = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


# ------------------------------------------------------------------ the suite, from the contract


# Contract checks evaluated on the run report, not by great-expectations on the staged rows.
RUN_REPORT_CHECKS = {"quarantine_share"}
# What the share check excludes: a superseded duplicate is an accounted-for older version, not a bad row.
NOT_A_BAD_ROW = {"duplicate_superseded"}
DEFAULT_MAX_QUARANTINE_SHARE = 0.5


def expectation_name(exp: Expectation) -> str:
    if exp.type == "quarantine_share":
        share = float(exp.params.get("max_share", DEFAULT_MAX_QUARANTINE_SHARE))
        return f"quarantine_share(rows quarantined <= {share:.0%} of rows read)"
    if exp.type == "max_length":
        return f"max_length({exp.column})"
    if exp.type == "not_before":
        return f"not_before({exp.column} >= {exp.params['other']})"
    if exp.type == "row_count_reconciles":
        return "row_count_reconciles(staged rows == rows_valid)"
    return f"{exp.type}({exp.column})"


RECONCILE_NAME = "row_count_reconciles(rows_read == rows_valid + rows_quarantined)"


def _gx_expectation(exp: Expectation, contract: Contract, gxe: Any) -> Any:
    meta = {"severity": exp.severity, "contract_type": exp.type, "name": expectation_name(exp)}
    if exp.type == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=exp.column, meta=meta)
    if exp.type == "unique":
        return gxe.ExpectColumnValuesToBeUnique(column=exp.column, meta=meta)
    if exp.type == "in_set":
        assert exp.column is not None
        values = list(contract.columns[exp.column].values)
        if not values:
            raise ContractError(f"in_set on {exp.column!r}: the column declares no values")
        return gxe.ExpectColumnValuesToBeInSet(column=exp.column, value_set=values, meta=meta)
    if exp.type == "between":
        assert exp.column is not None
        col = contract.columns[exp.column]
        low, high = exp.params.get("min", col.min), exp.params.get("max", col.max)
        return gxe.ExpectColumnValuesToBeBetween(column=exp.column, min_value=low, max_value=high, meta=meta)
    if exp.type == "max_length":  # the Glue job quarantines longer values; this checks what was staged
        assert exp.column is not None
        return gxe.ExpectColumnValueLengthsToBeBetween(
            column=exp.column, min_value=None, max_value=contract.field_limit(exp.column), meta=meta
        )
    if exp.type == "max_length":  # the Glue job quarantines longer values; this checks what was staged
        assert exp.column is not None
        return gxe.ExpectColumnValueLengthsToBeBetween(
            column=exp.column, min_value=None, max_value=contract.field_limit(exp.column), meta=meta
        )
    if exp.type == "not_before":
        share = float(exp.params.get("max_violation_share", 0.0))
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=exp.column, column_B=exp.params["other"], or_equal=True,
            ignore_row_if="either_value_is_missing", mostly=round(1.0 - share, 10), meta=meta,
        )
    if exp.type == "row_count_reconciles":
        return gxe.ExpectTableRowCountToEqual(value={"$PARAMETER": ROWS_VALID_PARAMETER}, meta=meta)
    raise ContractError(f"expectation type {exp.type!r} is not supported by the validate step")


def build_suite(contract: Contract) -> ExpectationSuite:
    """One great-expectations expectation per contract entry, severity in its `meta`. The run report's
    `rows_valid` is a suite parameter (`$PARAMETER`), supplied by `suite_parameters` at validation."""
    gx, gxe = _gx()
    return gx.ExpectationSuite(  # built whole: `add_expectation` would look for a context to save it in
        name=SUITE_NAME,
        expectations=[_gx_expectation(exp, contract, gxe) for exp in contract.expectations
                      if exp.type not in RUN_REPORT_CHECKS],
        meta={"contract": contract.name, "source": contract.source_path},
    )


def suite_parameters(run_report: dict[str, Any]) -> dict[str, Any]:
    return {ROWS_VALID_PARAMETER: int(run_report.get("rows_valid") or 0)}


def suite_columns(contract: Contract) -> list[str]:
    """The staged columns the suite reads, in contract order."""
    needed = {c for e in contract.expectations for c in (e.column, e.params.get("other")) if c}
    return [c for c in contract.columns if c in needed]


# ------------------------------------------------------------------ the result


@dataclass
class ValidationResult:
    success: bool  # no error-severity failure
    results: list[dict[str, Any]]
    failed_errors: list[str]
    failed_warnings: list[str]
    statistics: dict[str, Any]
    row_count: int
    timings: dict[str, float] = field(default_factory=dict)

    def error_message(self) -> str:
        failed = [r for r in self.results if not r["success"] and r["severity"] == "error"]
        noun = "expectation" if len(failed) == 1 else "expectations"
        return f"{len(failed)} {noun} failed: " + "; ".join(r["summary"] for r in failed)

    def to_report(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def raise_on_failure(self) -> None:
        """Raise DataQualityError naming the failed error-severity expectations (warnings never raise)."""
        if not self.success:
            raise DataQualityError(self.error_message(), self)


def evaluate(batch: Batch, suite: ExpectationSuite, run_report: dict[str, Any], contract: Contract,
             timings: dict[str, float] | None = None) -> ValidationResult:
    """Validate one GX batch (any engine) against the suite; add the run report's own reconciliation."""
    timings = dict(timings or {})
    start = time.perf_counter()
    params = suite_parameters(run_report)
    gx_result = batch.validate(suite, result_format=RESULT_FORMAT, expectation_parameters=params)
    timings["gx_validate"] = round(time.perf_counter() - start, 3)
    order = {expectation_name(e): i for i, e in enumerate(contract.expectations)}
    results = sorted((_entry(r, params) for r in gx_result.results), key=lambda e: order.get(e["name"], 99))
    if any(e.type == "row_count_reconciles" for e in contract.expectations):
        results.append(_reconciliation(run_report, contract))
    results += [_quarantine_share(run_report, e) for e in contract.expectations if e.type == "quarantine_share"]
    row_count = next((int(r["observed"]["observed_value"]) for r in results
                      if r["expectation"] == "expect_table_row_count_to_equal"
                      and isinstance(r["observed"].get("observed_value"), int)), None)
    if row_count is None:
        row_count = next((int(r["observed"]["element_count"]) for r in results
                          if isinstance(r["observed"].get("element_count"), int)), 0)
    failed_errors = [r["name"] for r in results if not r["success"] and r["severity"] == "error"]
    failed_warnings = [r["name"] for r in results if not r["success"] and r["severity"] == "warning"]
    statistics = {
        "evaluated": len(results),
        "successful": sum(r["success"] for r in results),
        "failed_errors": len(failed_errors),
        "failed_warnings": len(failed_warnings),
        "gx": dict(gx_result.statistics),
    }
    return ValidationResult(success=not failed_errors, results=results, failed_errors=failed_errors,
                            failed_warnings=failed_warnings, statistics=statistics, row_count=row_count,
                            timings=timings)


_OBSERVED_KEYS = ("observed_value", "element_count", "unexpected_count", "unexpected_percent",
                  "missing_count", "unexpected_percent_nonmissing", "partial_unexpected_list")


def _entry(r: Any, params: dict[str, Any]) -> dict[str, Any]:
    config = r.expectation_config
    meta = config.meta or {}
    kwargs = config.kwargs
    observed = {k: _jsonable(r.result[k]) for k in _OBSERVED_KEYS if k in (r.result or {})}
    entry: dict[str, Any] = {
        "name": meta.get("name", config.type),
        "expectation": config.type,
        "contract_type": meta.get("contract_type"),
        "column": kwargs.get("column") or kwargs.get("column_A"),
        "severity": meta.get("severity", "error"),
        "success": bool(r.success),
        "observed": observed,
    }
    info = r.exception_info or {}
    if info.get("raised_exception"):  # single-expectation shape
        entry["exception"] = info.get("exception_message")
    elif info and all(isinstance(v, dict) for v in info.values()):  # metric-keyed shape
        messages = [v.get("exception_message") for v in info.values() if v.get("raised_exception")]
        if messages:
            entry["exception"] = "; ".join(str(m) for m in messages)
    if entry.get("exception"):
        entry["success"] = False
    entry["summary"] = _summary(entry, kwargs, params)
    return entry


def _reconciliation(run_report: dict[str, Any], contract: Contract) -> dict[str, Any]:
    severity = next(e.severity for e in contract.expectations if e.type == "row_count_reconciles")
    counts = {k: run_report.get(k) for k in ("rows_read", "rows_valid", "rows_quarantined")}
    read, valid, quarantined = counts.values()
    ok = all(isinstance(v, int) for v in counts.values()) and read == valid + quarantined  # type: ignore[operator]
    return {
        "name": RECONCILE_NAME, "expectation": "run_report_reconciles",
        "contract_type": "row_count_reconciles", "column": None, "severity": severity, "success": ok,
        "observed": counts,
        "summary": f"{RECONCILE_NAME}: run report rows_read {read} {'==' if ok else '!='} rows_valid {valid} "
                   f"+ rows_quarantined {quarantined}",
    }


def quarantine_share_check(run_report: dict[str, Any], max_share: float) -> tuple[bool, int, int, dict[str, int]]:
    """(ok, bad rows, rows read, bad rows per reason, largest first) for a run report. A file whose rows are all
    quarantined fails whatever the share; a header-only file (no rows) passes; superseded duplicates are not bad
    rows. Raises nothing: a report without the counts is bad rows 0 of 0."""
    read = int(run_report.get("rows_read") or 0)
    by_reason = {r: int(n) for r, n in (run_report.get("quarantined_by_reason") or {}).items()
                 if r not in NOT_A_BAD_ROW and n}
    bad = sum(by_reason.values())
    ok = read == 0 or (bad < read and bad <= max_share * read)
    return ok, bad, read, dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])))


def _quarantine_share(run_report: dict[str, Any], exp: Expectation) -> dict[str, Any]:
    """The honest outcome: a file that is mostly (or wholly) quarantined fails validation instead of ending
    SUCCEEDED with little or nothing published. The summary names the main reasons with their counts."""
    max_share = float(exp.params.get("max_share", DEFAULT_MAX_QUARANTINE_SHARE))
    ok, bad, read, by_reason = quarantine_share_check(run_report, max_share)
    name = expectation_name(exp)
    main = "; ".join(f"{reason} {count:,}" for reason, count in list(by_reason.items())[:3])
    share = bad / read if read else 0.0
    summary = f"{name}: {bad:,} of {read:,} rows read quarantined ({share:.1%})"
    if bad == read and read:
        summary += ", every row"
    if main:
        summary += f"; main reasons: {main}"
    superseded = sum(int(n) for r, n in (run_report.get("quarantined_by_reason") or {}).items()
                     if r in NOT_A_BAD_ROW)
    if superseded:  # the run report's rows_quarantined counts them: say why the two numbers differ
        summary += f"; {superseded:,} superseded duplicate(s) not counted"
    return {
        "name": name, "expectation": "run_report_quarantine_share", "contract_type": "quarantine_share",
        "column": None, "severity": exp.severity, "success": ok,
        "observed": {"rows_read": read, "rows_quarantined_bad": bad, "share": round(share, 6),
                     "max_share": max_share, "by_reason": by_reason},
        "summary": summary,
    }


def _summary(entry: dict[str, Any], kwargs: Any, params: dict[str, Any]) -> str:
    name, obs = entry["name"], entry["observed"]
    if entry.get("exception"):
        return f"{name}: could not be evaluated ({entry['exception']})"
    count = obs.get("unexpected_count")
    # The summary reaches the DataQualityError, hence execution history, logs and the alert: counts only. The
    # examples (partial_unexpected_list) stay in the validation report, in the encrypted bucket.
    shown = " (examples in the validation report)" if obs.get("partial_unexpected_list") else ""
    kind = entry["contract_type"]
    if kind == "row_count_reconciles":
        expected = params.get(ROWS_VALID_PARAMETER)
        return f"{name}: staged output has {obs.get('observed_value')} rows, run report rows_valid {expected}"
    if kind == "not_null":
        return f"{name}: {count} null values"
    if kind == "unique":
        return f"{name}: {count} rows share duplicate values{shown}"
    if kind == "in_set":  # great-expectations' unexpected_percent: of the non-null values
        return (f"{name}: {count} values outside the set ({_pct(obs.get('unexpected_percent'))} of the non-null "
                f"values){shown}")
    if kind == "between":
        return f"{name}: {count} values outside [{kwargs.get('min_value')}, {kwargs.get('max_value')}]{shown}"
    if kind == "max_length":
        return f"{name}: {count} values longer than {kwargs.get('max_value')} characters{shown}"
    if kind == "not_before":
        # Rows missing either timestamp are not evaluated: the share is of the rows that have both.
        tolerated = 1.0 - float(kwargs.get("mostly", 1.0))
        pair = f"both {kwargs.get('column_A', '?')} and {kwargs.get('column_B', '?')}"
        element, missing = obs.get("element_count"), obs.get("missing_count")
        of = (f"{count} of the {int(element) - int(missing or 0):,} rows with {pair}" if element is not None
              else f"{count} of the rows with {pair}")
        return f"{name}: {of} violate ({_pct(obs.get('unexpected_percent'))}; {_pct(tolerated * 100)} tolerated)"
    return f"{name}: {count} unexpected values{shown}"


def _pct(value: Any) -> str:
    return "?%" if value is None else f"{float(value):.1f}%"


def _distinct(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def _jsonable(value: Any) -> Any:
    """GX results carry numpy scalars, datetimes and tuples: make them plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date) or hasattr(value, "isoformat"):  # also pandas Timestamp
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar, numpy datetime64
        item = value.item()
        return _jsonable(item) if item is not value else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# ------------------------------------------------------------------ reading the staged output


def staged_keys(storage: Storage, staging_uri: str) -> list[str]:
    """The staged Parquet objects of a run: `<staging>/tickets/year=YYYY/month=MM/*.parquet`."""
    prefix = storage.key_of(staging_uri).rstrip("/") + "/tickets/"
    return sorted(o.key for o in storage.list(prefix) if o.key.endswith(".parquet"))


def materialise(storage: Storage, keys: Sequence[str],
                workdir: str | os.PathLike[str] | None = None) -> list[str]:
    """Local file paths for `keys`: the object's own path where `storage.uri(key)` is a local file,
    otherwise a download into `workdir` (a new temporary directory if None; the caller removes it)."""
    local = {key: storage.uri(key) for key in keys}
    remote = [key for key, uri in local.items() if not Path(uri).is_file()]
    if remote:
        target = Path(workdir or tempfile.mkdtemp(prefix="ticketflow-staged-"))

        def fetch(item: tuple[int, str]) -> tuple[str, str]:
            index, key = item
            path = target / f"{index:05d}-{Path(key).name}"
            path.write_bytes(storage.read_bytes(key))
            return key, str(path)

        with ThreadPoolExecutor(max_workers=min(8, len(remote))) as pool:
            local.update(dict(pool.map(fetch, enumerate(remote))))
    return [local[key] for key in keys]


@contextmanager
def local_staged(storage: Storage, staging_uri: str) -> Iterator[list[str]]:
    """The run's staged files as local paths; downloaded copies are removed on exit."""
    keys = staged_keys(storage, staging_uri)
    with tempfile.TemporaryDirectory(prefix="ticketflow-staged-") as tmp:
        yield materialise(storage, keys, tmp)


def contract_schema(contract: Contract, columns: Sequence[str]) -> pa.Schema:
    return pa.schema([pa.field(c, ARROW_TYPES[contract.columns[c].type]) for c in columns])


def read_staged(paths: Sequence[str | os.PathLike[str]], contract: Contract,
                columns: Sequence[str] | None = None) -> pa.Table:
    """The suite's columns of the staged files as one Arrow table; enum columns dictionary-encoded (they
    become pandas categoricals). No files (a header-only upload) -> an empty table with the contract types."""
    columns = list(columns if columns is not None else suite_columns(contract))
    if not paths:
        return contract_schema(contract, columns).empty_table()
    enums = [c for c in columns if contract.columns[c].type == "enum"]
    fmt = pads.ParquetFileFormat(read_options=pads.ParquetReadOptions(dictionary_columns=enums))
    dataset = pads.dataset([str(p) for p in paths], format=fmt)
    present = [c for c in columns if c in dataset.schema.names]  # a missing column fails its expectation
    return dataset.to_table(columns=present)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(split_blocks=True, self_destruct=True)


# ------------------------------------------------------------------ entry points


def validate_staged(staged: Sequence[str | os.PathLike[str]] | pa.Table, run_report: dict[str, Any],
                    contract: Contract) -> ValidationResult:
    """Validate the staged output (local Parquet paths, or an Arrow table, which is consumed) against the
    contract's suite."""
    prefetch_gx()  # overlaps the import with the read below
    timings: dict[str, float] = {}
    start = time.perf_counter()
    table = staged if isinstance(staged, pa.Table) else read_staged(staged, contract)
    timings["read"] = round(time.perf_counter() - start, 3)
    clock = time.perf_counter()
    context = gx_context()
    timings["gx_import_wait"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    _skip_batch_fingerprint()
    frame = to_pandas(table)
    del table
    suite = build_suite(contract)
    batch = (context.data_sources.add_pandas(name="staged").add_dataframe_asset(name="tickets")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))
    timings["prepare"] = round(time.perf_counter() - clock, 3)
    result = evaluate(batch, suite, run_report, contract, timings)
    result.timings["total"] = round(time.perf_counter() - start, 3)
    return result


def validate_run(storage: Storage, staging_uri: str, run_report: dict[str, Any],
                 contract: Contract) -> ValidationResult:
    """List the run's staged files, make them local (download on S3), validate."""
    prefetch_gx()
    start = time.perf_counter()
    with local_staged(storage, staging_uri) as paths:
        fetched = round(time.perf_counter() - start, 3)
        result = validate_staged(paths, run_report, contract)
    total = round(time.perf_counter() - start, 3)
    result.timings = {"list_and_fetch": fetched, **result.timings, "total": total}
    result.statistics["files"] = len(paths)
    return result


def report_json(result: ValidationResult, **extra: Any) -> bytes:
    return json.dumps({**extra, **result.to_report()}, indent=2, default=str).encode("utf-8")
