"""What the Lambdas install is locked with hashes, and `make test` fails when a lock is stale.

The locks (`make lock`: uv, for Python 3.12 on x86_64 Linux) are read here without any network: each
requirements.txt pin must be in its lock at the same version, nothing may be in the lock as a direct
requirement that requirements.txt no longer asks for, and every locked package carries SHA-256 hashes,
which pip checks with --require-hashes in the validate image and the dependency layer.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKED = {
    "validate image": ROOT / "lambdas" / "validate" / "requirements",
    "dependency layer": ROOT / "infra" / "layers" / "deps" / "requirements",
}


def canonical(name: str) -> str:
    """PEP 503 name, extras dropped: `PyYAML` -> `pyyaml`, `boto3[crt]` -> `boto3`."""
    return re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()


def requirements(text: str) -> dict[str, str]:
    """requirements.txt: name -> pinned version (every line must pin with ==)."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"not pinned: {line!r}"
            pins[canonical(name)] = version.strip()
    return pins


def lock_entries(text: str) -> dict[str, tuple[str, int, bool]]:
    """A uv/pip-compile lock: name -> (version, number of hashes, asked for by the requirements file)."""
    entries: dict[str, tuple[str, int, bool]] = {}
    name = ""
    for line in text.splitlines():
        if m := re.match(r"^([A-Za-z0-9][\w.\-\[\],]*)==([^\s\\]+)", line):
            name = canonical(m.group(1))
            entries[name] = (m.group(2), 0, False)
        elif name and (h := re.search(r"--hash=sha256:[0-9a-f]{64}", line)):
            version, hashes, direct = entries[name]
            entries[name] = (version, hashes + bool(h), direct)
        elif name and re.search(r"#\s+(?:via\s+)?-r \S*requirements\.txt", line):
            version, hashes, _ = entries[name]
            entries[name] = (version, hashes, True)
    return entries


def lock_problems(requirements_text: str, lock_text: str) -> list[str]:
    """Why a lock no longer matches its requirements.txt ([] when it does)."""
    pins, locked = requirements(requirements_text), lock_entries(lock_text)
    problems = []
    for name, version in pins.items():
        if name not in locked:
            problems.append(f"{name} is required but not locked")
        elif locked[name][0] != version:
            problems.append(f"{name} is required at {version}, locked at {locked[name][0]}")
    for name, (_, hashes, direct) in locked.items():
        if direct and name not in pins:
            problems.append(f"{name} is locked as a requirement that requirements.txt no longer has")
        if hashes == 0:
            problems.append(f"{name} is locked without a hash")
    return problems


@pytest.mark.parametrize("what", LOCKED)
def test_the_lock_matches_its_requirements(what):
    base = LOCKED[what]
    problems = lock_problems(base.with_suffix(".txt").read_text(), base.with_suffix(".lock").read_text())
    assert problems == [], f"{what}: run `make lock` ({'; '.join(problems)})"
    entries = lock_entries(base.with_suffix(".lock").read_text())
    assert all(hashes >= 1 for _, hashes, _ in entries.values())


def test_a_stale_lock_is_caught():
    base = LOCKED["validate image"]
    req, lock = base.with_suffix(".txt").read_text(), base.with_suffix(".lock").read_text()
    bumped = req.replace("great-expectations==1.24.1", "great-expectations==1.25.0")
    assert lock_problems(bumped, lock) == ["great-expectations is required at 1.25.0, locked at 1.24.1"]
    assert lock_problems(req + "polars==1.20.0\n", lock) == ["polars is required but not locked"]
    dropped = "\n".join(line for line in req.splitlines() if not line.startswith("duckdb"))
    assert lock_problems(dropped, lock) == [
        "duckdb is locked as a requirement that requirements.txt no longer has"
    ]
    unhashed = re.sub(r"(duckdb==[^\s\\]+) \\\n(?:\s+--hash=\S+(?: \\)?\n)+", r"\1\n", lock)
    assert lock_problems(req, unhashed) == ["duckdb is locked without a hash"]


def test_installs_take_only_the_locked_files():
    dockerfile = (ROOT / "lambdas" / "validate" / "Dockerfile").read_text()
    install = re.search(r"^RUN pip install (.*)$", dockerfile, re.M)
    assert install and "--require-hashes" in install.group(1) and "requirements.lock" in install.group(1)
    assert "requirements.txt" not in dockerfile
    functions = (ROOT / "infra" / "constructs" / "functions.py").read_text()
    assert "--require-hashes" in functions and "-r requirements.lock" in functions


def test_the_image_runs_what_the_tests_run():
    # The validate image's pins of packages whose behaviour the local tests depend on are pyproject's.
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    project = {canonical(p.split("==")[0]): p.split("==")[1].split()[0] for p in pins if "==" in p}
    image = requirements(LOCKED["validate image"].with_suffix(".txt").read_text())
    shared = set(project) & set(image)
    assert {"great-expectations", "aws-lambda-powertools"} <= shared
    assert {n: image[n] for n in shared} == {n: project[n] for n in shared}
