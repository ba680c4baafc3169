"""The canonical ticket contract: loading it and mapping source headers onto it.

Pure Python (PyYAML only), so the Glue job, the Lambdas and the CLI all read the same file the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONTRACT_PATH = Path(__file__).resolve().parent.parent / "contracts" / "support_tickets.yaml"
COLUMN_TYPES = {"string", "timestamp", "enum", "integer", "array"}
SEVERITIES = {"error", "warning"}
# Names the job derives itself; an unknown source column that normalises to one of them is renamed.
RESERVED_NAMES = {
    "resolution_hours",
    "year",
    "month",
    "_source_key",
    "_source_line",
    "_run_id",
    "_ingested_at",
    "_error_reason",
    "_raw_record",
}

_NON_ALNUM = re.compile(r"[\W_]+")  # Unicode letters and digits are alphanumeric too


class ContractError(ValueError):
    """The contract file itself is malformed."""


class SchemaError(Exception):
    """A source file cannot be processed at all (missing required columns, duplicate mapping, not text,
    empty). The class name is the error name Step Functions sees, so it must not be retried."""


def normalise_header(raw: str) -> str:
    """Trim, drop a BOM, case-fold, collapse non-alphanumerics to `_`, strip edge underscores."""
    text = raw.replace("\ufeff", "").strip().casefold()
    return _NON_ALNUM.sub("_", text).strip("_")


def normalise_token(raw: str) -> str:
    """Enumeration values are matched like headers: `In Progress`, `in-progress` -> `in_progress`."""
    return normalise_header(raw)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    normalise: tuple[str, ...] = ()
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    open_set: bool = False
    ordered: bool = False
    min: int | None = None
    max: int | None = None
    separators: tuple[str, ...] = (";", ",")

    def synonym_map(self) -> dict[str, str]:
        """Normalised synonym -> canonical value (canonical values map to themselves)."""
        mapping: dict[str, str] = {}
        for canonical, synonyms in self.values.items():
            for token in (canonical, *synonyms):
                mapping[normalise_token(token)] = canonical
        return mapping


@dataclass(frozen=True)
class Expectation:
    type: str
    severity: str
    column: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Contract:
    name: str
    columns: dict[str, Column]
    expectations: tuple[Expectation, ...]
    missing_values: tuple[str, ...]
    ambiguous_date_order: str
    source_path: str

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.required]

    def columns_of_type(self, type_: str) -> list[Column]:
        return [c for c in self.columns.values() if c.type == type_]

    def alias_index(self) -> dict[str, str]:
        """Normalised header -> canonical column name."""
        index: dict[str, str] = {}
        for col in self.columns.values():
            for alias in (col.name, *col.aliases):
                key = normalise_header(alias)
                owner = index.setdefault(key, col.name)
                if owner != col.name:
                    raise ContractError(f"alias {alias!r} is declared for both {owner!r} and {col.name!r}")
        return index


# What the transform itself is built on: the dedupe (ticket_id, updated_at), the partitioning (created_at) and
# resolution_hours (resolved_at). A contract may point them at other source headers through aliases; it cannot
# drop them, change their types, or make the id and the creation time optional.
STRUCTURAL_COLUMNS = {"ticket_id": "string", "created_at": "timestamp", "updated_at": "timestamp",
                      "resolved_at": "timestamp"}
STRUCTURAL_REQUIRED = ("ticket_id", "created_at")


def structural_problems(columns: dict[str, Column]) -> list[str]:
    problems = []
    for name, ctype in STRUCTURAL_COLUMNS.items():
        if name not in columns:
            problems.append(f"column {name!r} ({ctype}) is missing")
        elif columns[name].type != ctype:
            problems.append(f"column {name!r} must be {ctype}, not {columns[name].type}")
        elif name in STRUCTURAL_REQUIRED and not columns[name].required:
            problems.append(f"column {name!r} must be required")
    return problems


def load_contract(path: str | Path | None = None) -> Contract:
    path = Path(path) if path else DEFAULT_CONTRACT_PATH
    return parse_contract(path.read_text(encoding="utf-8"), source=str(path))


def parse_contract(text: str, source: str = "<string>") -> Contract:
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict):
        raise ContractError(f"{source}: expected a mapping with a 'columns' section")
    columns: dict[str, Column] = {}
    for name, spec in doc["columns"].items():
        spec = spec or {}
        ctype = spec.get("type", "string")
        if ctype not in COLUMN_TYPES:
            raise ContractError(f"{source}: column {name!r} has unknown type {ctype!r}")
        values = {str(k): tuple(str(s) for s in (v or [])) for k, v in (spec.get("values") or {}).items()}
        if ctype == "enum" and not values:
            raise ContractError(f"{source}: enum column {name!r} declares no values")
        columns[name] = Column(
            name=name,
            type=ctype,
            required=bool(spec.get("required", False)),
            aliases=tuple(str(a) for a in spec.get("aliases", [])),
            normalise=tuple(spec.get("normalise", [])),
            values=values,
            open_set=bool(spec.get("open", False)),
            ordered=bool(spec.get("ordered", False)),
            min=spec.get("min"),
            max=spec.get("max"),
            separators=tuple(spec.get("separators", [";", ","])),
        )
    expectations = []
    for raw in doc.get("expectations", []):
        raw = dict(raw)
        etype, severity, column = raw.pop("type"), raw.pop("severity", "error"), raw.pop("column", None)
        if severity not in SEVERITIES:
            raise ContractError(f"{source}: expectation {etype!r} has unknown severity {severity!r}")
        if column is not None and column not in columns:
            raise ContractError(f"{source}: expectation {etype!r} names unknown column {column!r}")
        expectations.append(Expectation(type=etype, severity=severity, column=column, params=raw))
    ts = doc.get("timestamps", {}) or {}
    order = ts.get("ambiguous_date_order", "month_first")
    if order not in ("month_first", "day_first"):
        raise ContractError(f"{source}: ambiguous_date_order must be month_first or day_first, got {order!r}")
    contract = Contract(
        name=str(doc.get("name", "contract")),
        columns=columns,
        expectations=tuple(expectations),
        missing_values=tuple(str(v).strip().casefold() for v in doc.get("missing_values", [""])),
        ambiguous_date_order=order,
        source_path=source,
    )
    contract.alias_index()  # fail on clashing aliases at load time
    if problems := structural_problems(columns):
        raise ContractError(f"{source}: the pipeline is built on these columns: " + "; ".join(problems))
    return contract


@dataclass(frozen=True)
class HeaderMapping:
    """How one file's headers land on the contract."""

    source_headers: list[str]
    canonical: dict[str, str]  # source header -> canonical column
    unknown: dict[str, str]  # source header -> normalised name (kept as string)

    @property
    def output_names(self) -> list[str]:
        """Column name for each source position, in order."""
        return [self.canonical.get(h) or self.unknown[h] for h in self.source_headers]

    def to_dict(self) -> dict[str, Any]:
        return {"source_headers": self.source_headers, "canonical": self.canonical, "unknown": self.unknown}


def map_headers(headers: list[str], contract: Contract) -> HeaderMapping:
    """Map source headers onto canonical names, raising SchemaError on what makes the file unusable."""
    if not headers or all(not h.strip() for h in headers):
        raise SchemaError("empty header: the file has no column names")
    seen: dict[str, str] = {}
    dup_raw = sorted({h for h in headers if headers.count(h) > 1})
    if dup_raw:
        raise SchemaError(
            f"duplicate headers {dup_raw}: each column name must appear once (headers: {headers})"
        )
    index = contract.alias_index()
    canonical: dict[str, str] = {}
    unknown: dict[str, str] = {}
    clashes: dict[str, list[str]] = {}
    for pos, header in enumerate(headers):
        norm = normalise_header(header) or f"column_{pos + 1}"
        target = index.get(norm)
        if target:
            clashes.setdefault(target, []).append(header)
            canonical[header] = target
        else:
            unknown[header] = f"{norm}_source" if norm in RESERVED_NAMES else norm
    multi = {t: hs for t, hs in clashes.items() if len(hs) > 1}
    if multi:
        detail = "; ".join(f"{t} <- {hs}" for t, hs in sorted(multi.items()))
        raise SchemaError(
            f"duplicate mapping: several source columns land on one canonical column ({detail})"
        )
    for header, norm in unknown.items():
        if norm in contract.columns or norm in seen.values():  # e.g. "Foo Bar" and "foo_bar"
            raise SchemaError(
                f"duplicate mapping: unknown column {header!r} normalises to {norm!r}, already taken"
            )
        seen[header] = norm
    missing = [c for c in contract.required if c not in clashes]
    if missing:
        raise SchemaError(
            f"missing required columns {missing}: no header matches them or their aliases "
            f"(headers found: {headers})"
        )
    return HeaderMapping(source_headers=list(headers), canonical=canonical, unknown=unknown)
