"""The canonical ticket contract: loading it and mapping source headers onto it.

Pure Python (PyYAML only), so the Glue job, the Lambdas and the CLI all read the same file the same way.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ticketcore.timeformats import TimestampSettings, settings_from_mapping

DEFAULT_CONTRACT_PATH = Path(__file__).resolve().parent.parent / "contracts" / "support_tickets.yaml"
COLUMN_TYPES = {"string", "timestamp", "enum", "integer", "array"}
SEVERITIES = {"error", "warning"}

_NON_ALNUM = re.compile(r"[\W_]+")  # Unicode letters and digits are alphanumeric too
# What exports put between a record path and a field name: `ticket.created_at`, `fields:created`, `a > b`.
_PATH_SEPARATORS = re.compile(r"[.:>]")
# An enum label's leading rank or code: `1 - Critical`, `2 normal`, `P1 - Urgent` -> `critical`, `normal`, `urgent`.
ENUM_PREFIX = re.compile(r"^p?[0-9]+_(.+)$")  # [0-9], not \\d: Java and Python read it alike


class ContractError(ValueError):
    """The contract file itself is malformed."""


class SchemaError(Exception):
    """A source file cannot be processed at all (missing required columns, a true tie between headers, not
    text, empty). The class name is the error name Step Functions sees, so it must not be retried.

    `problems`: every problem found (the message joins them), so a user fixes a file in one round."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]


def normalise_header(raw: str) -> str:
    """Header text -> matching key: drop a BOM, Unicode NFKC (composed accents, full-width letters), case-fold,
    runs of anything but letters and digits -> `_`, edge `_` stripped. `" Ticket-ID"` -> `ticket_id`,
    `Ünïcode Näme` -> `ünïcode_näme`. Idempotent; empty only when the header has no letter or digit."""
    # Case-folded last: NFKC after it could compose a folded letter back into one that folds again (`ῶ`).
    text = unicodedata.normalize("NFKC", raw.replace("\ufeff", "")).casefold()
    # A few letters (Arabic presentation forms) decompose to marks only: then the letters as written.
    return _NON_ALNUM.sub("_", text).strip("_") or _NON_ALNUM.sub("_", raw.casefold()).strip("_")


def split_camel(raw: str) -> str:
    """Word boundaries of camelCase/PascalCase as spaces: `createdAt` -> `created At`, `LastModifiedDate` ->
    `Last Modified Date`, `HTTPStatus` -> `HTTP Status`. Other text is returned unchanged."""
    out: list[str] = []
    for i, ch in enumerate(raw):
        if i and ch.isupper():
            prev, nxt = raw[i - 1], raw[i + 1] if i + 1 < len(raw) else ""
            if prev.islower() or prev.isdigit() or (prev.isupper() and nxt.islower()):
                out.append(" ")
        out.append(ch)
    return "".join(out)


def normalise_token(raw: str) -> str:
    """Enumeration values are matched like headers (without NFKC, which Spark cannot do): `In Progress`,
    `in-progress` -> `in_progress`. The Spark rule is `spark_transform.normalise_enum`."""
    return _NON_ALNUM.sub("_", raw.replace("\ufeff", "").casefold()).strip("_")


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
    max_length: int | None = None  # characters of the source value; None: the contract's max_field_length

    def synonym_map(self) -> dict[str, str]:
        """Normalised synonym -> canonical value (canonical values map to themselves)."""
        mapping: dict[str, str] = {}
        for canonical, synonyms in self.values.items():
            for token in (canonical, *synonyms):
                mapping[normalise_token(token)] = canonical
        return mapping

    def enum_value(self, raw: str | None) -> str | None:
        """The Python form of the enum rule (Spark: `normalise_enum`): the canonical value of a label's token;
        else of the token without a leading rank/code (`1 - Critical`, `2 normal`, `P1 - Urgent`); else the
        token itself (an unknown value, kept and reported). None for None or an empty token."""
        if raw is None:
            return None
        token = normalise_token(raw)
        synonyms = self.synonym_map()
        if token in synonyms:
            return synonyms[token]
        stripped = ENUM_PREFIX.match(token)
        if stripped and stripped.group(1) in synonyms:
            return synonyms[stripped.group(1)]
        return token or None


@dataclass(frozen=True)
class Expectation:
    type: str
    severity: str
    column: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    """How one help-desk tool exports (the contract's `profiles:` section): data, never code.

    `signature`: normalised headers that mark the tool's exports; a file matching at least `min_matches` of
    them gets the profile (the best match wins). `aliases`: header names per canonical column, preferred over
    the base contract's. `values`: extra enum synonyms per column (canonical -> synonyms; they win over the
    base's). `separators`: list separators per array column (replacing the base's). `header_prefixes`:
    prefixes the tool puts before field names (normalised, e.g. `hs`)."""

    name: str
    label: str
    signature: tuple[str, ...]
    min_matches: int = 2
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    separators: dict[str, tuple[str, ...]] = field(default_factory=dict)
    header_prefixes: tuple[str, ...] = ()

    def score(self, keys: set[str]) -> int:
        """Signature headers present among the normalised `keys`."""
        return sum(1 for s in self.signature if s in keys)


# Athena (Trino) reads no row over 32 MB and Parquet pages grow with the value: a 1 MiB cell is already beyond
# any help-desk text (a long e-mail thread is tens of kilobytes), and far below what breaks a query.
DEFAULT_MAX_FIELD_LENGTH = 1_048_576


def _length_limit(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ContractError(f"{where} must be a positive whole number of characters, not {value!r}")
    return value


@dataclass(frozen=True)
class Contract:
    name: str
    columns: dict[str, Column]
    expectations: tuple[Expectation, ...]
    missing_values: tuple[str, ...]
    ambiguous_date_order: str
    source_path: str
    profiles: dict[str, Profile] = field(default_factory=dict)
    # Normalised words exports put before field names (`Ticket Status`, `hs_ticket_priority`).
    header_prefixes: tuple[str, ...] = ()
    profile: str | None = None  # the profile applied (`with_profile`), None for the base contract
    # Normalised keys of the profile's aliases: a match on one is reported as `profile:<name>`.
    profile_aliases: frozenset[str] = frozenset()
    # The `timestamps:` block: ambiguous date order, two-digit-year pivot, plausible range.
    timestamps: TimestampSettings = field(default_factory=TimestampSettings)
    # Longest source value, in characters, of a column without its own `max_length` (unknown columns too).
    max_field_length: int = DEFAULT_MAX_FIELD_LENGTH

    def field_limit(self, column: str | None) -> int:
        """The longest value, in characters, the column `column` (None: a column the contract does not name,
        kept in `extra`) may hold before its row is quarantined (`field_too_long:<column>`)."""
        col = self.columns.get(column) if column else None
        return col.max_length if col is not None and col.max_length is not None else self.max_field_length

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

    def preference(self) -> dict[str, tuple[str, int, str]]:
        """Normalised header -> (canonical column, rank, rule): rank 0 is the column's most preferred name.
        The order is the profile's aliases, then the canonical name, then the base aliases, as declared."""
        index: dict[str, tuple[str, int, str]] = {}
        for col in self.columns.values():
            names = [col.name, *col.aliases]
            if self.profile:
                own = [a for a in col.aliases if normalise_header(a) in self.profile_aliases]
                names = [*own, col.name, *[a for a in col.aliases if a not in own]]
            for rank, alias in enumerate(names):
                key = normalise_header(alias)
                if key in index:
                    continue
                if key == normalise_header(col.name):
                    rule = "exact"
                elif key in self.profile_aliases:
                    rule = f"profile:{self.profile}"
                else:
                    rule = "alias"
                index[key] = (col.name, rank, rule)
        return index

    def detect_profile(self, headers: list[str]) -> str | None:
        """The profile whose signature the headers match best (most signature headers present, then the larger
        share of its signature, then contract order), or None when none reaches its `min_matches`."""
        keys = {normalise_header(h) for h in headers}
        best: tuple[int, float, int] | None = None
        chosen = None
        for order, profile in enumerate(self.profiles.values()):
            hits = profile.score(keys)
            if hits < min(profile.min_matches, len(profile.signature)) or not hits:
                continue
            rank = (hits, hits / len(profile.signature), -order)
            if best is None or rank > best:
                best, chosen = rank, profile.name
        return chosen

    def with_profile(self, name: str | None) -> Contract:
        """The contract as it applies to one tool's exports: the profile's aliases first in each column's order
        of preference (a base alias of another column that the profile claims is dropped), its enum synonyms
        merged in (winning over the base's), its list separators and header prefixes. None: this contract.

        Raises KeyError for an unknown profile name."""
        if name is None:
            return self
        profile = self.profiles[name]
        claimed = {normalise_header(a): col for col, aliases in profile.aliases.items() for a in aliases}
        columns: dict[str, Column] = {}
        for col in self.columns.values():
            own = profile.aliases.get(col.name, ())
            base = [a for a in col.aliases if claimed.get(normalise_header(a), col.name) == col.name]
            aliases = tuple(dict.fromkeys([*own, *base]))
            values = col.values
            if col.name in profile.values:
                extra = profile.values[col.name]
                taken = {normalise_token(s) for syns in extra.values() for s in syns}
                values = {canon: tuple(s for s in syns if normalise_token(s) not in taken)
                          for canon, syns in col.values.items()}
                for canon, syns in extra.items():
                    values[canon] = (*values.get(canon, ()), *syns)
            separators = profile.separators.get(col.name, col.separators)
            columns[col.name] = replace(col, aliases=aliases, values=values, separators=separators)
        return replace(
            self,
            columns=columns,
            header_prefixes=tuple(dict.fromkeys([*profile.header_prefixes, *self.header_prefixes])),
            profile=name,
            profile_aliases=frozenset(claimed),
        )


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
    """The contract at `path` (default: contracts/support_tickets.yaml). A file with `extends: <base>` is an
    overlay (what `ticketflow inspect --write-contract` writes): see `merge_overlay`. Raises ContractError."""
    path = Path(path) if path else DEFAULT_CONTRACT_PATH
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    if isinstance(doc, dict) and doc.get("extends"):
        return parse_contract(yaml.safe_dump(resolve_overlay(doc, path)), source=str(path))
    return parse_contract(text, source=str(path))


def resolve_overlay(doc: dict[str, Any], path: Path, depth: int = 0) -> dict[str, Any]:
    """The whole contract an overlay at `path` describes: its `extends` (relative to the overlay's folder) loaded,
    itself maybe an overlay, then `merge_overlay`."""
    if depth > 8:
        raise ContractError(f"{path}: `extends` goes more than 8 levels deep (a cycle?)")
    base_path = (path.parent / str(doc["extends"])).resolve()
    try:
        base = yaml.safe_load(base_path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ContractError(f"{path}: extends {base_path}, which cannot be read ({err.strerror})") from None
    if not isinstance(base, dict):
        raise ContractError(f"{base_path}: expected a mapping")
    if base.get("extends"):
        base = resolve_overlay(base, base_path, depth + 1)
    return merge_overlay(base, doc)


def merge_overlay(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """An overlay's columns add to the base's: its aliases come first (they win a preference contest), an enum's
    `values` add synonyms to the base's canonical values (a new canonical value is added), its other keys
    replace the base's, a column the base lacks is added. Any other top-level key replaces the base's; `extends`
    and `unassigned` (the headers `inspect` found unmapped, a note for the user) are not contract."""
    merged = {k: v for k, v in base.items() if k != "extends"}
    columns = {name: dict(spec or {}) for name, spec in (base.get("columns") or {}).items()}
    for name, spec in (overlay.get("columns") or {}).items():
        spec = dict(spec or {})
        current = columns.setdefault(name, {})
        aliases = [*spec.pop("aliases", []), *current.get("aliases", [])]
        if isinstance(spec.get("values"), dict) and isinstance(current.get("values"), dict):
            values = {k: list(v or []) for k, v in current["values"].items()}
            for canonical, synonyms in spec.pop("values").items():
                values[canonical] = list(dict.fromkeys([*values.get(canonical, []), *(synonyms or [])]))
            current["values"] = values
        current.update(spec)
        if aliases:
            current["aliases"] = list(dict.fromkeys(aliases))
    merged["columns"] = columns
    for key, value in overlay.items():
        if key not in ("extends", "unassigned", "columns"):
            merged[key] = value
    return merged


def _strings(raw: Any) -> tuple[str, ...]:
    return tuple(str(a) for a in (raw or []))


def parse_profiles(raw: Any, columns: dict[str, Column], source: str) -> dict[str, Profile]:
    """The `profiles:` section: name -> {label, signature, min_matches, aliases, values, separators,
    header_prefixes}; every column it names must exist (and be an enum for `values`, an array for
    `separators`)."""
    profiles: dict[str, Profile] = {}
    for name, spec in (raw or {}).items():
        spec = spec or {}
        where = f"{source}: profile {name!r}"
        signature = tuple(normalise_header(s) for s in spec.get("signature", []))
        if not signature:
            raise ContractError(f"{where} declares no signature headers")
        for section, wanted in (("aliases", None), ("values", "enum"), ("separators", "array")):
            for col in spec.get(section) or {}:
                if col not in columns:
                    raise ContractError(f"{where} {section} names unknown column {col!r}")
                if wanted and columns[col].type != wanted:
                    raise ContractError(f"{where} {section} needs an {wanted} column, {col!r} is not")
        profiles[str(name)] = Profile(
            name=str(name),
            label=str(spec.get("label", name)),
            signature=signature,
            min_matches=int(spec.get("min_matches", 2)),
            aliases={c: _strings(a) for c, a in (spec.get("aliases") or {}).items()},
            values={c: {str(k): _strings(v) for k, v in (vals or {}).items()}
                    for c, vals in (spec.get("values") or {}).items()},
            separators={c: _strings(s) for c, s in (spec.get("separators") or {}).items()},
            header_prefixes=tuple(normalise_header(p) for p in spec.get("header_prefixes", [])),
        )
    return profiles


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
            max_length=_length_limit(spec.get("max_length"), f"{source}: column {name!r} max_length"),
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
    try:
        timestamps = settings_from_mapping(doc.get("timestamps"))
    except ValueError as err:
        raise ContractError(f"{source}: timestamps: {err}") from None
    contract = Contract(
        name=str(doc.get("name", "contract")),
        columns=columns,
        expectations=tuple(expectations),
        missing_values=tuple(str(v).strip().casefold() for v in doc.get("missing_values", [""])),
        ambiguous_date_order=timestamps.ambiguous_date_order,
        source_path=source,
        timestamps=timestamps,
        profiles=parse_profiles(doc.get("profiles"), columns, source),
        header_prefixes=tuple(normalise_header(p) for p in doc.get("header_prefixes", [])),
        max_field_length=_length_limit(doc.get("max_field_length"), f"{source}: max_field_length")
        or DEFAULT_MAX_FIELD_LENGTH,
    )
    contract.alias_index()  # fail on clashing aliases at load time
    for name in contract.profiles:
        try:
            contract.with_profile(name).alias_index()
        except ContractError as err:
            raise ContractError(f"{source}: profile {name!r}: {err}") from None
    if problems := structural_problems(columns):
        raise ContractError(f"{source}: the pipeline is built on these columns: " + "; ".join(problems))
    return contract


# The ways a header can reach a contract name, in order of trust: as written; with camelCase split into words;
# with a record path (`ticket.`) or an entity word (`Ticket `, `hs_`) taken off the front.
MAX_HEADERS_SHOWN = 30  # in a SchemaError's message (a wide export has hundreds)
# A header cell that looks like a value (an e-mail address, a number, a date): the first line is then probably a
# record of a file without its header row, and its cells are customer data that no message may quote.
_VALUE_LIKE = re.compile(r"^\S+@\S+\.\S+$|^[+-]?[\d][\d.,\s:/-]*$")


def looks_like_value(cell: str) -> bool:
    return bool(_VALUE_LIKE.match(cell.strip()))
TRANSFORMS = ("as-is", "camelCase", "prefix-stripped", "camelCase+prefix-stripped")


@dataclass(frozen=True)
class HeaderColumn:
    """One source column (by position): its header, its unique raw column name in the job (`name`: the
    canonical field for the column that fills it, else the normalised header, `_2`, `_3`... on a repeat; an
    empty header is `column_<position>`), the canonical field it fills (None: unmapped, kept in `extra`
    under `name`) and how it matched (`rule`: exact / alias / profile:<name>, prefixed by camelCase or
    prefix-stripped when the header had to be rewritten; `matched`: the contract name or alias it matched)."""

    position: int  # 1-based, as a spreadsheet user counts columns
    header: str
    name: str
    field: str | None = None
    rule: str | None = None
    matched: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "header": self.header, "name": self.name, "field": self.field,
                "rule": self.rule, "matched": self.matched}


@dataclass(frozen=True)
class NotPreferred:
    """A column that could fill `field` but lost to a column the contract prefers (kept as `name` in extra)."""

    position: int
    header: str
    name: str
    field: str
    rule: str
    preferred: str  # the header that fills the field

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "header": self.header, "name": self.name, "field": self.field,
                "rule": self.rule, "preferred": self.preferred}


@dataclass(frozen=True)
class HeaderMapping:
    """How one file's headers land on the contract, per source position (headers may repeat)."""

    columns: tuple[HeaderColumn, ...]
    profile: str | None = None
    not_preferred: tuple[NotPreferred, ...] = ()

    @property
    def source_headers(self) -> list[str]:
        return [c.header for c in self.columns]

    @property
    def output_names(self) -> list[str]:
        """Unique raw column name for each source position, in order."""
        return [c.name for c in self.columns]

    @property
    def unmapped(self) -> list[HeaderColumn]:
        """Columns that fill no field: published in the `extra` map under their `name`."""
        return [c for c in self.columns if c.field is None]

    def sources(self, field_name: str) -> list[str]:
        """Raw column names filling `field_name`, in file order: one, or several repeats of an array field's
        header (their items are merged), or none."""
        return [c.name for c in self.columns if c.field == field_name]

    @property
    def canonical(self) -> dict[str, str]:
        """Source header -> canonical field, for the columns that fill one."""
        return {c.header: c.field for c in self.columns if c.field is not None}

    @property
    def unknown(self) -> dict[str, str]:
        """Source header -> name, for unmapped columns (a repeated header: its first occurrence)."""
        out: dict[str, str] = {}
        for c in self.unmapped:
            out.setdefault(c.header, c.name)
        return out

    def to_dict(self) -> dict[str, Any]:
        """{profile, columns: [{position, header, name, field, rule, matched}], not_preferred: [...]}."""
        return {
            "profile": self.profile,
            "columns": [c.to_dict() for c in self.columns],
            "not_preferred": [n.to_dict() for n in self.not_preferred],
        }


def _strip_prefixes(header: str, key: str, prefixes: tuple[str, ...]) -> list[str]:
    """Shorter keys for a header: after each record-path separator (`ticket.created_at` -> `created_at`), and
    without leading entity words the contract lists (`ticket_status` -> `status`, `hs_ticket_priority` ->
    `ticket_priority` -> `priority`)."""
    out: list[str] = []
    parts = _PATH_SEPARATORS.split(header)
    for i in range(1, len(parts)):
        tail = normalise_header(" ".join(parts[i:]))
        if tail and tail != key:
            out.append(tail)
    stripped, changed = key, True
    while changed:
        changed = False
        for p in prefixes:
            if stripped.startswith(p + "_") and len(stripped) > len(p) + 1:
                stripped, changed = stripped[len(p) + 1:], True
                out.append(stripped)
    return list(dict.fromkeys(out))


def header_keys(header: str, prefixes: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(key, transform) to look a header up by, most trusted first (see TRANSFORMS)."""
    key = normalise_header(header)
    keys = [(key, "as-is")]
    camel = normalise_header(split_camel(header))
    if camel != key:
        keys.append((camel, "camelCase"))
    keys += [(k, "prefix-stripped") for k in _strip_prefixes(header, key, prefixes)]
    if camel != key:
        keys += [(k, "camelCase+prefix-stripped") for k in _strip_prefixes(split_camel(header), camel, prefixes)]
    seen: set[str] = set()
    return [(k, t) for k, t in keys if k and not (k in seen or seen.add(k))]  # type: ignore[func-returns-value]


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"


def map_headers(headers: list[str], contract: Contract) -> HeaderMapping:
    """Map source headers (by position) onto the contract, with the profile the headers point to applied.

    Each header is looked up as written, then camelCase-split, then prefix-stripped (the first way that
    reaches a contract name counts). When several columns could fill one field, the better (way, preference
    rank) wins and the others are kept unmapped and listed in `not_preferred`; a repeated header (the same
    normalised name) fills an array field with all its columns, any other field with its first. Raises
    SchemaError listing every problem at once: a true tie (different headers of equal rank for one field) and
    every missing required field with the closest headers found. Messages carry header names, never values."""
    if not headers or all(not h.strip() for h in headers):
        raise SchemaError("empty header: the file has no column names")
    profile = contract.detect_profile(headers)
    effective = contract.with_profile(profile)
    index = effective.preference()
    tiers = {t: i for i, t in enumerate(TRANSFORMS)}

    # Each header's best way to a field: ((transform tier, preference rank), field, rule, matched key).
    found: dict[int, tuple[tuple[int, int], str, str, str]] = {}
    for pos, header in enumerate(headers):
        for key, transform in header_keys(header, effective.header_prefixes):
            if key in index:
                field_name, rank, rule = index[key]
                rule = rule if transform == "as-is" else f"{transform}+{rule}"
                found[pos] = ((tiers[transform], rank), field_name, rule, key)
                break

    problems: list[str] = []
    fills: dict[int, str] = {}  # position -> field
    losers: dict[int, tuple[str, int]] = {}  # position -> (field, winning position)
    tied: set[str] = set()
    for col in effective.columns.values():
        contenders = sorted((found[p][0], p) for p in found if found[p][1] == col.name)
        if not contenders:
            continue
        best = contenders[0][0]
        top = [p for r, p in contenders if r == best]
        top_keys = {normalise_header(headers[p]) for p in top}
        if len(top_keys) > 1:
            problems.append(
                f"columns {[headers[p] for p in top]} could each be {col.name!r} and the contract prefers none of "
                f"them: rename or remove all but one"
            )
            tied.add(col.name)
            continue
        winners = top if col.type == "array" else top[:1]  # a repeated header of a list: all its columns
        for p in winners:
            fills[p] = col.name
        for _, p in contenders:
            if p not in fills:
                losers[p] = (col.name, winners[0])

    missing = [c for c in effective.required if c not in fills.values() and c not in tied]
    value_like = sum(looks_like_value(h) for h in headers)
    keys_found = {normalise_header(h): h for h in headers if normalise_header(h) and not looks_like_value(h)}
    for name in missing:
        col = effective.columns[name]
        wanted = [normalise_header(a) for a in (col.name, *col.aliases)]
        close: list[str] = []
        for w in wanted:
            close += [keys_found[k] for k in difflib.get_close_matches(w, list(keys_found), n=3, cutoff=0.75)]
        hint = f"; closest headers: {list(dict.fromkeys(close))[:3]}" if close else ""
        problems.append(
            f"missing required column {name!r}: no header matches it or its aliases {list(col.aliases)[:6]}{hint}"
        )
    if problems:
        if value_like:
            # Never quote the cells: they are probably the first record's values.
            found_text = (f"{value_like} of {len(headers)} header cells look like values (numbers, dates or e-mail "
                          f"addresses): is the header row missing? Headers not shown")
        else:
            shown = headers[:MAX_HEADERS_SHOWN]
            more = f" and {len(headers) - len(shown)} more" if len(headers) > len(shown) else ""
            found_text = f"headers found: {shown}{more}"
        raise SchemaError(
            f"{len(problems)} problem(s) with the header row ({len(headers)} columns): " + "; ".join(problems)
            + f" ({found_text})",
            problems,
        )

    # Unique raw names: a field's first column takes the field's name; repeats and unmapped columns follow.
    taken = set(effective.columns)
    names: dict[int, str] = {}
    for pos in range(len(headers)):
        f = fills.get(pos)
        if f is not None and f not in names.values():
            names[pos] = f
    for pos, header in enumerate(headers):
        if pos in names:
            continue
        base = fills.get(pos) or normalise_header(header) or f"column_{pos + 1}"
        names[pos] = _unique(base, taken | set(names.values()))
        taken.add(names[pos])
    columns = tuple(
        HeaderColumn(
            position=pos + 1,
            header=header,
            name=names[pos],
            field=fills.get(pos),
            rule=found[pos][2] if pos in fills else None,
            matched=found[pos][3] if pos in fills else None,
        )
        for pos, header in enumerate(headers)
    )
    not_preferred = tuple(
        NotPreferred(position=p + 1, header=headers[p], name=names[p], field=f, rule=found[p][2],
                     preferred=headers[w])
        for p, (f, w) in sorted(losers.items())
    )
    return HeaderMapping(columns=columns, profile=profile, not_preferred=not_preferred)
