"""Where the files the stack packages live, and how an asset keeps only some of them.

Everything is resolved from the repository root, so synthesis works from any working directory.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

CDK_JSON = REPO_ROOT / "cdk.json"
STATE_MACHINE_DEFINITION = REPO_ROOT / "statemachine" / "pipeline.asl.json"
CONTRACT = REPO_ROOT / "contracts" / "support_tickets.yaml"
TICKETS_LATEST_SQL = REPO_ROOT / "ticketcore" / "sql" / "tickets_latest.sql"
GLUE_SCRIPT = REPO_ROOT / "glue" / "ticket_etl_job.py"
VALIDATE_DOCKERFILE = "lambdas/validate/Dockerfile"  # relative to REPO_ROOT, the image's build context
DEPENDENCIES_LAYER = REPO_ROOT / "infra" / "layers" / "deps"

# Never part of an asset, whatever else it includes (applied after the include rules).
BUILD_LITTER = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache", "**/.ruff_cache"]


def glob_only(*included: str) -> list[str]:
    """`exclude` patterns (IgnoreMode.GLOB) that keep only the given paths of REPO_ROOT.

    A path ending in "/" is a directory kept with everything under it; otherwise a single file.
    GLOB matches bare names at any depth and prunes an excluded directory without looking inside, so
    every parent directory of a kept path is re-included explicitly.
    """
    patterns = ["*", ".*"]
    for item in included:
        parts = item.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            keep = "!" + "/".join(parts[:depth])
            if keep not in patterns:
                patterns.append(keep)
        if item.endswith("/"):
            patterns.append(f"!{item}**")
    return [*patterns, *BUILD_LITTER]


def docker_only(*included: str) -> list[str]:
    """`exclude` patterns (IgnoreMode.DOCKER, .dockerignore syntax) that keep only the given paths.

    Docker re-includes a directory together with its contents and CDK walks into the parents of a
    re-included path by itself, so parents must NOT be listed (that would re-include their siblings).
    """
    return ["*", *[f"!{item.rstrip('/')}" for item in included], *BUILD_LITTER]
