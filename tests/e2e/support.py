"""Helpers for the end-to-end tests (imported by tests; fixtures live in conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from ticketcore import layout
from ticketflow.local.runtime import LocalRuntime

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "support_ticket_data.csv"


class Faults:
    """A programmable fault injector: rules of (service.operation, name) -> exception, per call."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, str | None, Callable[[int], BaseException | None]]] = []
        self.counts: dict[str, int] = {}

    def add(self, call: str, name: str | None, make: Callable[[int], BaseException | None]) -> None:
        self.rules.append((call, name, make))

    def __call__(self, service: str, operation: str, details: dict[str, Any]) -> None:
        call = f"{service}.{operation}"
        for rule_call, name, make in self.rules:
            if rule_call == call and name in (None, details.get("name")):
                n = self.counts.get(call + str(name), 0)
                self.counts[call + str(name)] = n + 1
                error = make(n)
                if error is not None:
                    raise error


def run_file(rt: LocalRuntime, path: Path, key: str | None = None) -> tuple[str, dict[str, Any]]:
    upload = rt.upload(path, key)
    assert len(upload.started) == 1, upload
    name = upload.started[0]
    return name, rt.wait(name, timeout=600)


def states_entered(rt: LocalRuntime, name: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in rt.history(name) if e["type"].endswith("StateEntered")
    ]


def attempts(rt: LocalRuntime, name: str, state: str) -> int:
    current, count = None, 0
    for e in rt.history(name):
        if e["type"].endswith("StateEntered"):
            current = e["stateEnteredEventDetails"]["name"]
        if e["type"] == "TaskScheduled" and current == state:
            count += 1
    return count


def published_table(rt: LocalRuntime):
    base = rt.storage.path(layout.TICKETS_PREFIX)
    if not base.exists() or not any(base.rglob("*.parquet")):
        return None
    return ds.dataset(base, format="parquet", partitioning="hive").to_table()


def outbox(rt: LocalRuntime) -> list[dict[str, Any]]:
    path = rt.home / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
