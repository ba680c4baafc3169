"""The README's terminal transcripts, replayed.

A transcript is a ```console block right after a `<!-- replay: NAME -->` comment. Its lines that start with
`$ ` are commands, run in order by one bash (so `source`, `cd` and `export` carry over); a command ending in
`<<'EOF'` takes the lines up to `EOF` as its here-document. Every other line is output the command must
print: compared after `normalise` (execution ids, version ids, times, durations, the scratch folder and
runs of spaces vary from run to run), in order, other lines of the real output may come between. A `...`
line stands for lines left out, and is not compared.

`python -m tests.e2e.transcripts NAME` runs one transcript in a scratch folder and prints what each command
printed (to write or refresh the README's block).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
# What the scratch folder holds besides the commands' own files: the clone's venv, data and contracts.
LINKED = (".venv", "data", "contracts")

_MARK = re.compile(r"<!-- replay: ([\w-]+) -->\s*\n```console\n(.*?)\n```", re.S)
_HEREDOC = re.compile(r"<<'?(\w+)'?\s*$")


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def transcripts(text: str | None = None) -> dict[str, list[Step]]:
    """NAME -> its steps, for every replayable block of the README."""
    found = {}
    for match in _MARK.finditer(text if text is not None else README.read_text(encoding="utf-8")):
        steps: list[Step] = []
        lines = iter(match.group(2).splitlines())
        for line in lines:
            if line.startswith("$ "):
                command = line[2:]
                heredoc = _HEREDOC.search(command)
                if heredoc:
                    body = []
                    for more in lines:
                        body.append(more)
                        if more == heredoc.group(1):
                            break
                    command = "\n".join([command, *body])
                steps.append(Step(command))
            elif steps:
                steps[-1].expected.append(line)
        found[match.group(1)] = steps
    return found


_VARIABLE = [
    (re.compile(r"-[0-9a-f]{20}\b"), "-<id>"),
    (re.compile(r"\b[0-9a-f]{16}\.[0-9a-f]{12}\b"), "<version>"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?(\+00:00)?"), "<time>"),
    (re.compile(r"\b\d+h \d\dm\b|\b\d+m \d\ds\b|\b\d+(\.\d+)?s\b"), "<duration>"),
    (re.compile(r"\S*/demo/"), "<demo>/"),
    (re.compile(r"(-+ +)+-+"), "<rule>"),  # a table's rule: its widths follow the varying cells
]


def normalise(line: str) -> str:
    for pattern, replacement in _VARIABLE:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def replay(steps: list[Step], scratch: Path, timeout: float = 1800) -> list[str]:
    """Run every command in one bash in `scratch` (the clone's venv, data and contracts linked in); returns
    each command's output (stdout and stderr), in order."""
    for name in LINKED:
        if not (scratch / name).exists():
            (scratch / name).symlink_to(REPO / name)
    marker = f"--- step {uuid.uuid4().hex} ---"
    # stderr into stdout, as a terminal shows both.
    script = "exec 2>&1\n" + "".join(f"echo '{marker}'\n{step.command}\n" for step in steps) + f"echo '{marker}'\n"
    done = subprocess.run(["bash"], input=script, cwd=scratch, stdout=subprocess.PIPE, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8",
                                                "TMPDIR": str(scratch), "JAVA_HOME": _java_home()})
    return done.stdout.split(marker + "\n")[1:-1]


def _java_home() -> str:
    """The JDK PySpark would find from the test's own environment (the scratch shell gets a bare PATH)."""
    import os
    import shutil

    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    return str(Path(java).resolve().parents[1]) if java else ""


def missing_lines(expected: list[str], output: str) -> list[str]:
    """The expected lines (normalised, `...` skipped) not found in `output` in order."""
    actual = [normalise(line) for line in output.splitlines()]
    missing, position = [], 0
    for line in expected:
        if line.strip() == "...":
            continue
        wanted = normalise(line)
        try:
            position = actual.index(wanted, position) + 1
        except ValueError:
            missing.append(line)
    return missing


def main(name: str) -> int:
    steps = transcripts()[name]
    with tempfile.TemporaryDirectory() as scratch:
        outputs = replay(steps, Path(scratch))
    for step, output in zip(steps, outputs, strict=False):
        print(f"$ {step.command}")
        print(output, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
