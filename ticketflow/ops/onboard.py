"""`ticketflow inspect`: what the pipeline would make of an export, before anything is uploaded.

The same functions the pipeline runs, on the head of the file: the inspect step's dialect and header mapping
(ticketcore.dialect, ticketcore.contract), the whole-file encoding check on what was read (ticketcore.source),
the timestamp readings (ticketcore.timeformats) and, for the outcome preview, the Glue job itself on local Spark
over a sample of the first records. Nothing here re-implements a rule of the transform.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ticketcore.contract import Contract, HeaderMapping, SchemaError, map_headers
from ticketcore.dialect import HEAD_BYTES, Dialect, csv_reader, detect_dialect, split_preamble
from ticketcore.source import EncodingCheck, text_head
from ticketcore.timeformats import choose_format, evidence_of, parse_value

READ_BYTES = 8 * 2**20  # of the upload read for the sample (the inspect step itself reads HEAD_BYTES)
DEFAULT_SAMPLE_ROWS = 1000
EXAMPLES = 3  # timestamp examples per column


class InspectInputError(Exception):
    """The target cannot be read (no such file, a directory, an S3 object that cannot be fetched)."""


@dataclass(frozen=True)
class Upload:
    name: str
    raw: bytes  # the first READ_BYTES of the object
    complete: bool  # `raw` is the whole object


def read_target(target: str, limit: int = READ_BYTES, s3_client: Any = None) -> Upload:
    """The first `limit` bytes of a local file or an `s3://bucket/key` object (a ranged GET)."""
    if target.startswith("s3://"):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, _, key = target[len("s3://"):].partition("/")
        if not bucket or not key:
            raise InspectInputError(f"{target}: expected s3://BUCKET/KEY")
        client = s3_client or boto3.client("s3")
        try:
            response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit}")
            raw = response["Body"].read()
        except (BotoCoreError, ClientError) as err:
            raise InspectInputError(f"{target}: cannot read the object ({err})") from None
        total = int(str(response.get("ContentRange", "")).rpartition("/")[2] or len(raw))
        return Upload(key.rpartition("/")[2], raw[:limit], total <= limit)
    path = Path(target)
    if path.is_dir():
        raise InspectInputError(f"{target} is a directory: give a CSV file (or .csv.gz, .zip)")
    if not path.is_file():
        raise InspectInputError(f"{target}: no such file")
    with path.open("rb") as fh:
        raw = fh.read(limit + 1)
    return Upload(path.name, raw[:limit], len(raw) <= limit)


def sample_records(text: str, dialect: Dialect, rows: int) -> tuple[list[list[str]], str]:
    """(the first `rows` data records, the text of the file up to the end of the last of them). The last record
    read is dropped when the text was cut inside it."""
    _, _, _, body = split_preamble(text)
    preamble_text = text[: len(text) - len(body)]
    reader = csv_reader(body, dialect.delimiter)
    next(reader, None)
    records: list[list[str]] = []
    lines_used = reader.line_num
    for record in reader:
        if len(records) >= rows:
            break
        records.append(record)
        lines_used = reader.line_num
    body_lines = body.splitlines(keepends=True)
    if lines_used >= len(body_lines) and body_lines and not body_lines[-1].endswith("\n") and records:
        records.pop()  # the head ended inside this record
        lines_used = max(1, lines_used - 1)
    return records, preamble_text + "".join(body_lines[:lines_used])


def timestamp_readings(contract: Contract, mapping: HeaderMapping, records: list[list[str]]) -> dict[str, Any]:
    """Per timestamp field of the file: the reading chosen from the sample (label, reason) and examples."""
    out: dict[str, Any] = {}
    positions = {c.field: i for i, c in reversed(list(enumerate(mapping.columns))) if c.field}
    for column in contract.columns_of_type("timestamp"):
        if column.name not in positions:
            continue
        pos = positions[column.name]
        values = [r[pos] if pos < len(r) else None for r in records]
        choice = choose_format(column.name, evidence_of(values, contract.missing_values), contract.timestamps)
        examples = []
        for raw in dict.fromkeys(v.strip() for v in values if v and v.strip()):
            parsed = parse_value(raw, choice, contract.missing_values)
            examples.append([raw, parsed.isoformat() if parsed else None])
            if len(examples) == EXAMPLES:
                break
        out[column.name] = {"header": mapping.columns[pos].header, "label": choice.label, "reason": choice.reason,
                            "examples": examples}
    return out


def preview(sample_text: str, dialect: Dialect, contract_path: str | None, workdir: Path) -> dict[str, Any]:
    """The Glue job on local Spark over the sample: its run report's counts."""
    from glue.ticket_etl_job import JobArgs, run
    from ticketcore.contract import load_contract
    from ticketflow.sparkenv import local_session

    source = workdir / "sample.csv"
    source.write_text(sample_text, encoding="utf-8", newline="")
    sample_dialect = detect_dialect(source.read_bytes()[:HEAD_BYTES])
    args = JobArgs(source=str(source), staging=str(workdir / "staging"), quarantine=str(workdir / "quarantine"),
                   reports=str(workdir / "reports"), run_id="inspect-preview", source_key="sample.csv",
                   dialect=json.dumps(sample_dialect.to_dict()), contract=contract_path)
    report = run(local_session(), args, load_contract(contract_path))
    keys = ("rows_read", "rows_valid", "rows_quarantined", "quarantined_by_reason", "duplicates_superseded",
            "nulls_coerced", "out_of_range", "unparsed_values", "timestamp_formats")
    out = {k: report[k] for k in keys if k in report}
    # Values outside an enum's set: a warning, or (severity error, e.g. priority) a DataQualityError at validation.
    severity = {e.column: e.severity for e in load_contract(contract_path).expectations if e.type == "in_set"}
    out["unknown_enum_values"] = {
        name: {**v, "severity": severity.get(name, "none")}
        for name, v in report.get("unknown_enum_values", {}).items() if v.get("count")
    }
    return out


def inspect_export(target: str, contract: Contract, contract_path: str | None = None,
                   sample_rows: int = DEFAULT_SAMPLE_ROWS, with_preview: bool = True) -> dict[str, Any]:
    """What the pipeline would make of `target` (a path or s3://URI), as one JSON-able document:
    {source, compression, encoding, dialect, profile, columns, not_preferred, problems, timestamps, sample,
    preview}. `problems` lists why the inspect step would refuse the file (empty when it would not).
    Raises InspectInputError when the target cannot be read."""
    upload = read_target(target)
    doc: dict[str, Any] = {"source": target, "problems": []}
    try:
        head = text_head(upload.raw, upload.complete, READ_BYTES)
        doc["compression"] = head.compression
        check = EncodingCheck()
        check.feed(head.data, final=head.complete)
        verdict = check.result(complete=head.complete)
        doc["encoding"] = {**verdict.to_dict(), "whole_file_checked": head.complete}
        dialect = detect_dialect(head.data[:HEAD_BYTES])
        doc["dialect"] = dialect.to_dict()
        mapping = map_headers(dialect.headers, contract)
    except SchemaError as err:
        doc["problems"] = list(getattr(err, "problems", None) or [str(err)])
        doc["missing_required"] = [c for c in contract.required
                                   if any(p.startswith(f"missing required column {c!r}") for p in doc["problems"])]
        return doc
    doc.update(mapping.to_dict())
    text = head.data.decode(verdict.read_as, errors="replace").lstrip("\ufeff")
    records, sample_text = sample_records(text, dialect, sample_rows)
    doc["timestamps"] = timestamp_readings(contract.with_profile(mapping.profile), mapping, records)
    doc["sample"] = {"records": len(records), "whole_file": head.complete and len(records) < sample_rows}
    if with_preview and records:
        with tempfile.TemporaryDirectory(prefix="ticketflow-inspect-") as tmp:
            doc["preview"] = preview(sample_text, dialect, contract_path, Path(tmp))
    return doc


def contract_overlay(doc: dict[str, Any], base_contract: str, contract: Contract) -> str:
    """A contract overlay (YAML) for the file inspected: `extends` the contract used, every field with an empty
    `aliases` list, and the unmapped headers listed for the user to move into the field they fill (all of the
    file's headers when the base contract maps none of its required fields)."""
    if "columns" in doc:
        unmapped = [c["header"] for c in doc["columns"] if c["field"] is None]
    else:  # refused: no mapping was made
        unmapped = list(doc.get("dialect", {}).get("headers", []))
    missing = doc.get("missing_required") or []
    lines = [
        f"# Contract overlay written by `ticketflow inspect` for {doc['source']}.",
        "# Each header below `unassigned` fills no field yet: its values are kept in the `extra` map column. To map",
        "# one, add it to the `aliases` of the field it fills (aliases here come before the base contract's).",
        *([f"# Required and not found yet: {', '.join(missing)}."] if missing else []),
        "# An enum's values take more synonyms the same way, e.g. priority: {values: {urgent: [sev1], low: [sev4]}}.",
        f"# Then: ticketflow inspect FILE --contract {'<this file>'}, and ticketflow run FILE --contract <this file>"
        " (an upload already run: ticketflow reprocess NAME --contract <this file>)",
        yaml.safe_dump({"extends": base_contract}, allow_unicode=True).strip(),
        "columns:",
    ]
    for name in contract.columns:
        lines.append(f"  {name}: {{aliases: []}}")
    lines.append("unassigned:")
    lines += [f"  - {json.dumps(h, ensure_ascii=False)}" for h in unmapped] or ["  []"]
    return "\n".join(lines) + "\n"


def text_report(doc: dict[str, Any]) -> list[str]:
    """The document as lines for a terminal."""
    lines = [f"{doc['source']}"]
    if doc.get("compression"):
        lines.append(f"  compression   {doc['compression']}")
    if "encoding" in doc:
        enc = doc["encoding"]
        scope = "whole file" if enc.get("whole_file_checked") else f"first {READ_BYTES // 2**20} MiB"
        lines.append(f"  encoding      {enc.get('read_as', enc.get('encoding'))} ({scope})")
    if "dialect" in doc:
        d = doc["dialect"]
        lines.append(f"  delimiter     {d['delimiter']!r}; records end {d['line_terminator']!r}; "
                     f"{d['preamble_lines']} preamble line(s); {len(d['headers'])} columns")
    if doc["problems"]:
        lines.append("  REFUSED: the inspect step would fail with SchemaError:")
        lines += [f"    - {p}" for p in doc["problems"]]
        lines.append("  to map this export: --write-contract OVERLAY.yaml writes an overlay to fill in; then run with "
                     "--contract OVERLAY.yaml")
        return lines
    lines.append(f"  profile       {doc.get('profile') or 'none (the base contract)'}")
    lines.append("  columns:")
    for c in doc["columns"]:
        if c["field"]:
            target = f"-> {c['field']}  ({c['rule']}: {c['matched']!r})"
        else:
            target = f"   unmapped (extra[{c['name']!r}])"
        lines.append(f"    {c['position']:>4} {c['header'][:40]!r:<44} {target}")
    for n in doc.get("not_preferred", []):
        lines.append(f"  not preferred: {n['header']!r} could fill {n['field']}; {n['preferred']!r} is preferred "
                     f"(kept in extra[{n['name']!r}])")
    if doc.get("timestamps"):
        lines.append("  timestamps:")
        for col, t in doc["timestamps"].items():
            lines.append(f"    {col:<18} {t['label']}  ({t['reason']})")
            for raw, parsed in t["examples"]:
                lines.append(f"      {raw!r} -> {parsed or 'null'}")
    sample = doc.get("sample", {})
    lines.append(f"  sample        {sample.get('records', 0):,} records"
                 + (" (the whole file)" if sample.get("whole_file") else ""))
    if "preview" in doc:
        p = doc["preview"]
        lines.append(f"  preview (the Glue job on the sample): {p['rows_read']:,} read, {p['rows_valid']:,} valid, "
                     f"{p['rows_quarantined']:,} quarantined")
        for reason, count in p.get("quarantined_by_reason", {}).items():
            lines.append(f"    {reason}: {count:,}")
        for column, u in p.get("unknown_enum_values", {}).items():
            effect = ("validation would FAIL (DataQualityError)" if u["severity"] == "error"
                      else "kept, reported as a warning")
            lines.append(f"    {column}: {u['count']:,} values outside the contract's set {u['values'][:10]}: "
                         f"{effect}; add them as synonyms in an overlay (--write-contract)")
    return lines
