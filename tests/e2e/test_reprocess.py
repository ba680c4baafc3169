"""`ticketflow reprocess`: a contract fix applied to uploads already run, from the start, once.

A redrive cannot apply it (it resumes the failed state on what the old contract staged): the file is run
again as a new execution of the same object version; publication replaces the key's files as a re-upload
would; asking again with the same contract starts nothing.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ticketcore.contract import DEFAULT_CONTRACT_PATH
from ticketflow.cli import main as cli

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

HEADER = "Ref,Opened On,Updated,Status,Urgency,Channel,Subject,Description,Agent,Customer\n"


def export(path: Path, rows: int) -> Path:
    """A tool's export whose headers the base contract does not know (Ref, Opened On, Urgency)."""
    lines = [HEADER]
    for i in range(rows):
        lines.append(f"T-{i:04d},2024-03-{1 + i % 28:02d} 08:10:00,2024-03-{1 + i % 28:02d} 09:00:00,open,"
                     f"sev{1 + i % 4},email,Subject {i},Body {i},agent{i % 3},cust{i}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def overlay(path: Path) -> Path:
    path.write_text(
        f"extends: {DEFAULT_CONTRACT_PATH}\n"
        "columns:\n"
        '  ticket_id: {aliases: ["Ref"]}\n'
        '  created_at: {aliases: ["Opened On"]}\n'
        '  updated_at: {aliases: ["Updated"]}\n'
        '  priority: {aliases: ["Urgency"], values: {urgent: [sev1], high: [sev2], medium: [sev3], low: [sev4]}}\n',
        encoding="utf-8",
    )
    return path


def published_rows(home: Path) -> int:
    files = list((home / "bucket" / "support_ticket" / "processed").rglob("*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = cli(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out[out.index("{"):])


def test_reprocess_applies_a_contract_fix_from_the_start_once(tmp_path, capsys):
    home = str(tmp_path / "home")
    source = export(tmp_path / "helpdesk.csv", 12)
    code, first = run_json(capsys, "run", str(source), "--home", home, "--json")
    assert code == 1
    [failed] = first["executions"]
    assert failed["status"] == "FAILED" and failed["failed_state"] == "InspectSource", failed
    assert published_rows(Path(home)) == 0

    fix = overlay(tmp_path / "helpdesk.yaml")
    code = cli(["reprocess", failed["name"], "--home", home, "--contract", str(fix), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and "would run again as helpdesk-re-" in out, out
    assert not list((Path(home) / "executions").glob("helpdesk-re-*"))  # a dry run starts nothing

    code, again = run_json(capsys, "reprocess", failed["name"], "--home", home, "--contract", str(fix), "--json")
    assert code == 0, again
    [done] = again["executions"]
    assert done["status"] == "SUCCEEDED" and done["name"].startswith("helpdesk-re-")
    assert done["source_key"] == failed["source_key"]
    assert (done["rows_read"], done["rows_published"], done["rows_quarantined"]) == (12, 12, 0)
    assert published_rows(Path(home)) == 12
    # The same object version the upload's execution named.
    record = json.loads((Path(home) / "executions" / f"{done['name']}.json").read_text())
    original = json.loads((Path(home) / "executions" / f"{failed['name']}.json").read_text())
    assert json.loads(record["execution"]["input"]) == json.loads(original["execution"]["input"])

    # Asked again with the same contract: nothing runs, nothing is published twice.
    code, repeat = run_json(capsys, "reprocess", "--prefix", "helpdesk", "--home", home, "--contract", str(fix),
                            "--json")
    assert code == 0 and repeat["executions"] == [] and repeat["already_reprocessed"] == [done["name"]], repeat
    assert published_rows(Path(home)) == 12

    # A changed contract is a new revision: the prefix's newest upload runs again and replaces the files.
    fix.write_text(fix.read_text() + "# tightened\n", encoding="utf-8")
    code, third = run_json(capsys, "reprocess", "--prefix", "", "--home", home, "--contract", str(fix), "--json")
    assert code == 0 and [e["status"] for e in third["executions"]] == ["SUCCEEDED"], third
    assert third["executions"][0]["name"] not in (done["name"], failed["name"])
    assert published_rows(Path(home)) == 12  # replaced, not added
    manifest = json.loads((Path(home) / "bucket" / "support_ticket" / "processed" / "_manifests").rglob("*.json")
                          .__next__().read_text())
    assert manifest["run_id"] == third["executions"][0]["name"]


def test_reprocess_refuses_what_it_cannot_run(tmp_path, capsys):
    home = str(tmp_path / "home")
    assert cli(["reprocess", "nothing-like-this", "--home", home]) == 2
    assert "cannot reprocess: no execution named 'nothing-like-this'" in capsys.readouterr().err
    assert cli(["reprocess", "x", "--prefix", "y", "--home", home]) == 2
    assert "give one EXECUTION or --prefix P (not both)" in capsys.readouterr().err
    assert cli(["reprocess", "x", "--target", "aws", "--contract", "c.yaml"]) == 2
    assert "--contract applies to the local runtime only" in capsys.readouterr().err


def test_reprocess_of_a_prefix_runs_at_most_max_concurrent_at_once(tmp_path, capsys):
    from ticketflow.generate import generate_csv

    home = tmp_path / "home"
    files = []
    for i, name in enumerate(("q1_a.csv", "q1_b.csv", "q1_c.csv")):
        generate_csv(tmp_path / name, rows=40, seed=60 + i, dirty=0)
        files.append(str(tmp_path / name))
    code, first = run_json(capsys, "run", *files, "--home", str(home), "--json")
    assert code == 0 and len(first["executions"]) == 3
    code, again = run_json(capsys, "reprocess", "--prefix", "q1_", "--max-concurrent", "1", "--home", str(home),
                           "--json")
    assert code == 0 and [e["status"] for e in again["executions"]] == ["SUCCEEDED"] * 3, again
    spans = []
    for e in again["executions"]:
        execution = json.loads((home / "executions" / f"{e['name']}.json").read_text())["execution"]
        spans.append((execution["startDate"], execution["stopDate"]))
    spans.sort()
    # One at a time: each started after the one before it had stopped.
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), spans
