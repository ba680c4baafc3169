"""The README's transcripts run as written and still print what the README shows (see transcripts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.transcripts import Step, missing_lines, normalise, replay, transcripts

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

ALL = transcripts()


def test_the_readme_has_the_replayable_transcripts():
    assert set(ALL) >= {"operating", "watch"}
    assert all(steps and steps[0].command == "source .venv/bin/activate" for steps in ALL.values())


def test_the_comparison_ignores_what_varies_and_nothing_else():
    shown = ["tickets_2024-17b38efbb0b5dfc44a98: SUCCEEDED  (support_ticket/raw/tickets_2024.csv)", "...",
             "  rows read 300; published 295"]
    printed = "noise\ntickets_2024-0123456789abcdef0123: SUCCEEDED (support_ticket/raw/tickets_2024.csv)\n" \
              "more\n  rows read 300; published 295\n"
    assert missing_lines(shown, printed) == []
    assert missing_lines(shown, printed.replace("295", "294")) == ["  rows read 300; published 295"]
    assert missing_lines(list(reversed(shown)), printed) == [shown[0]]  # order matters
    assert normalise("Stopped    2026-12-01 13:48:23 UTC  (took 1m 05s)") == "Stopped <time> UTC (took <duration>)"


@pytest.mark.parametrize("name", sorted(ALL))
def test_transcript_replays_as_written(name: str, tmp_path: Path):
    steps: list[Step] = ALL[name]
    outputs = replay(steps, tmp_path)
    assert len(outputs) == len(steps), outputs
    for step, output in zip(steps, outputs, strict=True):
        missing = missing_lines(step.expected, output)
        assert not missing, f"$ {step.command}\nREADME lines not printed: {missing}\nprinted:\n{output}"
