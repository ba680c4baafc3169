"""Synthetic support-ticket exports: realistic, messy-but-mapped CSV, byte-identical for a given seed.

Clean rows exercise everything the contract maps (header aliases, enum synonyms, mixed ISO and US
month-first timestamps, quoted multi-line text); a deterministic share of dirty rows exercises each
quarantine and coercion rule once per kind, and `GenerateStats` says what the ETL should make of them.
Rows are streamed, so memory stays constant whatever the row count.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from random import Random

# Export-style headers; each maps onto a contract column through its aliases.
HEADERS = [
    "Ticket ID", "Created At", "Updated At", "Resolved At", "First Response At", "Status", "Priority",
    "Channel", "Category", "Subject", "Description", "Customer ID", "Customer Email", "Agent",
    "CSAT Score", "Tags",
]  # fmt: skip
# Positions of the fields that dirty rows and duplicates rewrite.
ID, CREATED, UPDATED, RESOLVED, STATUS, SUBJECT, DESCRIPTION, CSAT = map(HEADERS.index, (
    "Ticket ID", "Created At", "Updated At", "Resolved At", "Status", "Subject", "Description", "CSAT Score",
))  # fmt: skip

DIRTY_KINDS = ("missing_ticket_id", "bad_created_at", "duplicate", "ragged", "bad_optional", "unknown_enum")
# Kinds whose rows the ETL quarantines (for `duplicate`: the superseded earlier row). The other kinds stay
# valid, with the bad optional value nulled or the unknown status kept as its normalised token.
QUARANTINED_KINDS = ("missing_ticket_id", "bad_created_at", "duplicate", "ragged")


@dataclass
class GenerateStats:
    rows: int  # data records written, header excluded
    physical_lines: int  # newline characters in the file (header + records + newlines inside descriptions)
    bytes: int
    dirty: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRTY_KINDS, 0))

    @property
    def expected_quarantined(self) -> int:
        return sum(self.dirty[kind] for kind in QUARANTINED_KINDS)

    @property
    def expected_valid(self) -> int:
        return self.rows - self.expected_quarantined


DAY = 86_400
CREATED_DAYS = 731  # 2024-01-01 .. 2025-12-31
_FIRST_DAY = date(2023, 12, 31)  # one day early so negative UTC offsets stay inside the table
# Per day: (ISO date, year, month, day); covers created_at plus every later delay.
_DAYS = [(d.isoformat(), d.year, d.month, d.day) for d in (_FIRST_DAY + timedelta(n) for n in range(1100))]
_OFFSETS = (120, -300, 330, 60, 0, -420)  # minutes east of UTC

# Canonical status -> (weight, surface forms as exports write them); forms are contract synonyms.
_STATUSES = {
    "new": (6, ("New", "new", " NEW", "Unassigned", "Received")),
    "open": (10, ("Open", " OPEN ", "open", "Reopened", "Active")),
    "pending": (8, ("Pending", "Pending Customer Response", "Waiting on Customer", "awaiting customer")),
    "in_progress": (10, ("In Progress", "in-progress", "IN_PROGRESS", "Working", "Investigating", "WIP")),
    "on_hold": (3, ("On Hold", "on-hold", "Paused", "Blocked")),
    "escalated": (3, ("Escalated", "ESCALATED ")),
    "resolved": (30, ("Resolved", "resolved ", "Fixed", "Solved", "Done")),
    "closed": (25, ("Closed", "CLOSED", "Completed", "Complete")),
    "cancelled": (5, ("Cancelled", "Canceled", "Spam", "Withdrawn", "Rejected")),
}
_STATUS_POOL = tuple(s for s, (w, _) in _STATUSES.items() for _ in range(w))
_DONE = frozenset({"resolved", "closed"})
_UNKNOWN_STATUSES = ("awaiting_parts", "Awaiting Parts", "Triage", "needs-info", "Waiting for Vendor")

_PRIORITIES = (
    ("Low", "low", "P4", "Lowest", "Minor") * 5
    + ("Medium", "medium", "Normal", "P3", " med", "MEDIUM") * 7
    + ("High", "P2", "Major", "HIGH ", "high") * 5
    + ("Urgent", "P1", "critical", "Critical", "P0", "Blocker") * 2
)
_CHANNELS = (
    ("Email", "email", "E-mail") * 4
    + ("Chat", "Live Chat", "livechat") * 3
    + ("Phone", "Call", "phone") * 2
    + ("Web Form", "Portal", "Website") * 2
    + ("Twitter", "Facebook", "Social Media", "API")
)

# Category -> subjects; the category text itself is written with light whitespace noise sometimes.
_SUBJECTS = {
    "Billing": ("Charged twice this month", "Invoice shows the wrong amount", "Update billing address",
                "Question about my invoice", "VAT missing on receipt"),
    "Technical Issue": ("App crashes on startup", "Error when uploading files", "Sync not working",
                        "Dashboard loads forever", "Export fails with a timeout"),
    "Account Access": ("Can't log in", "Password reset email never arrives", "Locked out after 2FA change",
                       "Need to change the account owner"),
    "Shipping": ("Order hasn't arrived", "Wrong item delivered", "Tracking number not working",
                 "Package arrived damaged"),
    "Refund Request": ("Refund not received", "Want to cancel and get a refund", "Partial refund, please"),
    "Product Question": ("Does the Pro plan include SSO?", "How do I add team members",
                         "Is there an API limit"),
    "Feature Request": ("Dark mode, please", "Bulk edit for tickets", "Export to Excel"),
}  # fmt: skip
_CATEGORY_POOL = tuple(_SUBJECTS)
_OPENERS = ("Hi,", "Hello team,", "Hi there,", "Good morning,", "Hey,")
_SENTENCES = (
    "I tried again this morning, but nothing changed.",
    "This started after the last update.",
    "Order #{n} is affected, and possibly others.",
    "We were charged {amount} on invoice INV-{n}, which doesn't match the quote.",
    "I already cleared the cache, restarted the app and logged out and in again.",
    "Could you look into it as soon as possible?",
    "It works on my phone but not on the laptop.",
    "Our whole team (about {n2} people) is blocked by this.",
    "Please advise.",
    "Attaching a screenshot for reference.",
    "The café branch uses the same account, so it's affecting both locations.",
)
_ERRORS = ("Payment declined", "Session expired, please log in again", "500 Internal Server Error",
           "Invalid token", "Quota exceeded")  # fmt: skip
_SIGN_OFFS = ("Thanks,", "Best regards,", "Cheers,", "Thank you!")
_STEPS = "Steps to reproduce:\n1. Open the dashboard\n2. Click Export\n3. Wait about a minute"

_FIRST = ("james", "maria", "wei", "fatima", "john", "ana", "oliver", "priya", "lucas", "emma", "noah",
          "sofia", "ahmed", "chloe", "kenji", "olga", "diego", "hannah")  # fmt: skip
_LAST = ("smith", "garcia", "chen", "khan", "johnson", "silva", "brown", "patel", "martin", "muller",
         "obrien", "nguyen", "kowalski", "tanaka", "rossi", "dubois")  # fmt: skip
_DOMAINS = ("example.com", "example.org", "mail.test", "acme.example", "globex.test")
_AGENTS = ("Sam Carter", "Priya Natarajan", "José Álvarez", "Zoë Fischer", "Liam O'Connor", "Mei Lin",
           "Søren Jensen", "Aisha Bello", "  Tom  Becker", "Grace Kim ")  # fmt: skip
_TAGS = ("billing", "urgent", "VIP", "refund", "login", "bug", "mobile", "iOS", "android", "shipping",
         "feature-request", "follow up")  # fmt: skip
CUSTOMERS = 5000
_EMAILS = tuple(
    f"{_FIRST[c % len(_FIRST)]}.{_LAST[c // len(_FIRST) % len(_LAST)]}@{_DOMAINS[c % len(_DOMAINS)]}"
    for c in range(CUSTOMERS)
)
_CSAT = ("5", "5", "5", "4", "4", "4", "3", "2", "1")

_BAD_CREATED = ("not a date", "2024-13-45", "TBD", "0000-00-00", "2024-02-30 10:00:00")
_BAD_CSAT = ("excellent", "9", "very good", "10", "0")
_BAD_UPDATED = ("yesterday", "last week", "tbd", "soon")

_POOL_SIZE = 256  # clean rows kept as duplicate candidates (bounded: constant memory)


class _Factory:
    """Builds rows from one `Random`, so the whole file follows from the seed."""

    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        self.random = self.rng.random

    def pick(self, seq: tuple[str, ...]) -> str:
        # Indexing by random() is several times faster than Random.choice, which matters at 1M rows.
        return seq[int(self.random() * len(seq))]

    def timestamp(self, t: int, allow_date_only: bool = False) -> str:
        """Render second `t` after 2024-01-01T00:00Z in one of the accepted formats.

        Formats that drop precision (US minutes, date-only) only round down, and later timestamps are at
        least two minutes after earlier ones, so every ordering still holds after parsing. Date-only is
        reserved for created_at, where rounding down can never put it after the other columns.
        """
        r = self.random()
        if r < 0.42:
            iso, _, _, _ = _DAYS[t // DAY + 1]
            s = t % DAY
            return f"{iso}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"
        if r < 0.68:
            iso, _, _, _ = _DAYS[t // DAY + 1]
            s = t % DAY
            return f"{iso} {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
        if r < 0.78:
            offset = _OFFSETS[int(self.random() * len(_OFFSETS))]
            local = t + offset * 60
            iso, _, _, _ = _DAYS[local // DAY + 1]
            s = local % DAY
            sign, mag = ("+" if offset >= 0 else "-"), abs(offset)
            ms = int(self.random() * 1000)
            return (f"{iso}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{ms:03d}"
                    f"{sign}{mag // 60:02d}:{mag % 60:02d}")  # fmt: skip
        if allow_date_only and r < 0.83:
            return _DAYS[t // DAY + 1][0]
        # US exports: always month first; zero padding varies between rows.
        _, y, m, d = _DAYS[t // DAY + 1]
        s = t % DAY
        if self.random() < 0.5:
            return f"{m}/{d}/{y} {s // 3600}:{s // 60 % 60:02d}"
        return f"{m:02d}/{d:02d}/{y} {s // 3600:02d}:{s // 60 % 60:02d}"

    def description(self, category: str) -> str:
        rnd = self.random
        parts = self.rng.sample(_SENTENCES, 1 + int(rnd() * 3))  # distinct: no repeated sentence
        if rnd() < 0.08:
            parts.insert(int(rnd() * len(parts)), f'The error says "{self.pick(_ERRORS)}".')
        text = " ".join(parts)
        if "{" in text:  # only a few sentences have placeholders; formatting the rest is wasted time
            text = text.format(
                n=10_000 + int(rnd() * 90_000), n2=3 + int(rnd() * 40),
                amount=f"${10 + int(rnd() * 990)}.{int(rnd() * 100):02d}",
            )  # fmt: skip
        text = f"Regarding {category.lower()}: {text}" if rnd() < 0.3 else text
        if rnd() < 0.05:  # about 5% span several lines, like pasted emails
            name = self.pick(_FIRST).capitalize()
            body = f"{text}\n\n{_STEPS}" if rnd() < 0.3 else text
            return f"{self.pick(_OPENERS)}\n{body}\n{self.pick(_SIGN_OFFS)}\n{name}"
        return text

    def email(self, customer: int) -> str:
        # The same customer keeps one address; only its letter case varies between rows.
        address = _EMAILS[customer]
        r = self.random()
        return address if r < 0.5 else address.title() if r < 0.85 else address.upper()

    def tags(self) -> str:
        rnd = self.random
        if rnd() < 0.35:
            return ""
        items = [self.pick(_TAGS) for _ in range(1 + int(rnd() * 3))]
        return (";" if rnd() < 0.5 else ", ").join(dict.fromkeys(items))

    def clean(self, number: int) -> tuple[list[str], int, str]:
        """A valid ticket: (fields, updated_at second, canonical status)."""
        rnd = self.random
        day = int(rnd() * CREATED_DAYS)
        # Most tickets arrive in office hours.
        second = int(8 * 3600 + rnd() * 10 * 3600) if rnd() < 0.75 else int(rnd() * DAY)
        created = day * DAY + second
        status = self.pick(_STATUS_POOL)
        first_response = resolved = None
        if status != "new" and (status != "cancelled" or rnd() < 0.5):
            first_response = created + 300 + int(rnd() ** 2 * 2 * DAY)
        answered = created if first_response is None else first_response
        if status in _DONE:
            resolved = answered + 600 + int(rnd() ** 2 * 20 * DAY)
            updated = resolved + 120 + int(rnd() * 3 * DAY)
        else:
            updated = answered + 120 + int(rnd() * 10 * DAY)
        category = self.pick(_CATEGORY_POOL)
        customer = int(rnd() * CUSTOMERS)
        csat = ""
        if status in _DONE and rnd() < 0.6:
            csat = self.pick(_CSAT)
            csat = f"{csat}.0" if rnd() < 0.15 else csat
        ts = self.timestamp
        fields = [  # in HEADERS order
            f"TCK-{number:06d}",
            ts(created, allow_date_only=True),
            ts(updated),
            ts(resolved) if resolved is not None else "",
            ts(first_response) if first_response is not None else "",
            self.pick(_STATUSES[status][1]),
            self.pick(_PRIORITIES),
            self.pick(_CHANNELS),
            category if rnd() < 0.9 else f" {category.replace(' ', '  ')}",
            self.pick(_SUBJECTS[category]),
            self.description(category),
            f"CUST-{customer:05d}",
            self.email(customer),
            "" if status == "new" else self.pick(_AGENTS),
            csat,
            self.tags(),
        ]
        return fields, updated, status

    def duplicate(self, original: tuple[list[str], int, str]) -> list[str]:
        """A later export of the same ticket: updated at least an hour later, possibly resolved since."""
        fields, updated, status = original
        fields = list(fields)
        later = updated + 3600 + int(self.random() * 10 * DAY)
        fields[UPDATED] = self.timestamp(later)
        if status not in _DONE and status not in ("new", "cancelled") and self.random() < 0.6:
            fields[STATUS] = self.pick(_STATUSES["resolved"][1])
            fields[RESOLVED] = self.timestamp(later)
        return fields

    def make_dirty(self, fields: list[str], kind: str) -> list[str]:
        """Spoil a clean row in the one way `kind` names."""
        if kind == "missing_ticket_id":
            fields[ID] = ""
        elif kind == "bad_created_at":
            fields[CREATED] = self.pick(_BAD_CREATED)
        elif kind == "ragged":
            if self.random() < 0.5:
                fields.pop()  # a truncated line: one field short
            else:  # an unquoted comma split the subject: one field too many
                head, _, tail = fields[SUBJECT].partition(" ")
                fields[SUBJECT : SUBJECT + 1] = [head, tail]
        elif kind == "bad_optional":
            if self.random() < 0.5:
                fields[CSAT] = self.pick(_BAD_CSAT)
            else:
                fields[UPDATED] = self.pick(_BAD_UPDATED)
        elif kind == "unknown_enum":
            fields[STATUS] = self.pick(_UNKNOWN_STATUSES)
            fields[RESOLVED] = fields[CSAT] = ""
        return fields


def generate_csv(path: str | Path, rows: int, seed: int = 7, dirty: float = 0.02,
                 single_line: bool = False) -> GenerateStats:
    """Write `rows` synthetic tickets to `path` (UTF-8, comma, `\\n` line ends, header first).

    `single_line`: descriptions keep their text but their line breaks become spaces, so every record is one
    line (an export with no multi-line field, which the Glue job can read split by lines).

    round(rows * dirty) rows are dirty, evenly spread, one kind each, kinds in shuffled rounds so their
    shares are equal to within one. Only clean rows are ever duplicated, each at most once.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if not 0.0 <= dirty <= 1.0:
        raise ValueError(f"dirty must be a fraction between 0 and 1, got {dirty}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    factory = _Factory(seed)
    rng = factory.rng
    stats = GenerateStats(rows=rows, physical_lines=1, bytes=0)
    n_dirty = round(rows * dirty)
    candidates: list[tuple[list[str], int, str]] = []
    clean_seen = 0
    kinds: list[str] = []
    dirty_index = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADERS)
        for i in range(rows):
            # Bresenham-style spacing: exactly n_dirty dirty rows, evenly spread, no stored positions.
            kind = None
            if (i + 1) * n_dirty // rows > i * n_dirty // rows:
                if dirty_index % len(DIRTY_KINDS) == 0:
                    kinds = list(DIRTY_KINDS)
                    rng.shuffle(kinds)
                kind = kinds[dirty_index % len(DIRTY_KINDS)]
                dirty_index += 1
                if kind == "duplicate" and not candidates:  # nothing clean to duplicate yet
                    kind = factory.pick(tuple(k for k in DIRTY_KINDS if k != "duplicate"))
                stats.dirty[kind] += 1
            if kind == "duplicate":
                # Each candidate is duplicated at most once: swap it to the end and pop it.
                j = int(rng.random() * len(candidates))
                candidates[j], candidates[-1] = candidates[-1], candidates[j]
                row = factory.duplicate(candidates.pop())
            else:
                row, updated, status = factory.clean(i + 1)
                if single_line:
                    row[DESCRIPTION] = row[DESCRIPTION].replace("\n", " ")
            # Counted before spoiling: a ragged row may shift the description out of its position.
            stats.physical_lines += 1 + row[DESCRIPTION].count("\n")
            if kind is None:
                clean_seen += 1
                # A bounded random sample of the clean rows so far are the duplicate candidates.
                if len(candidates) < _POOL_SIZE:
                    candidates.append((row, updated, status))
                elif rng.random() * clean_seen < _POOL_SIZE:
                    candidates[int(rng.random() * _POOL_SIZE)] = (row, updated, status)
            elif kind != "duplicate":
                row = factory.make_dirty(row, kind)
            writer.writerow(row)
    stats.bytes = os.path.getsize(path)
    return stats
