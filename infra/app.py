"""Builds the CDK app: context defaults from cdk.json, the stack, and the cdk-nag rule packs."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
import cdk_nag

from infra.paths import CDK_JSON, REPO_ROOT
from infra.settings import Settings
from infra.stack import PipelineStack

STACK_NAME = "Ticketflow"
BUNDLING_STACKS = "aws:cdk:bundling-stacks"  # cx_api.BUNDLING_STACKS
# The cdk-nag rule packs the stack is checked against; each finding is fixed or suppressed with its reason in
# infra/nag_suppressions.py (rule ids start with the pack's prefix: AwsSolutions-, NIST.800.53.R5-, Serverless-).
NAG_PACKS = (cdk_nag.AwsSolutionsChecks, cdk_nag.NIST80053R5Checks, cdk_nag.ServerlessChecks)


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context: the CLI passes it in itself; `python app.py` and the tests read it here."""
    return dict(json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {}))


def create_app(
    *,
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    env: cdk.Environment | None = None,
) -> tuple[cdk.App, PipelineStack]:
    """`context` overrides everything (cdk.json and the CLI's -c). Without the CLI, which always says which
    stacks to bundle, bundling is skipped: the dependency layer needs Docker to build."""
    defaults = {**cdk_json_context(), BUNDLING_STACKS: []}
    final = dict(context or {})
    if os.environ.get("TICKETFLOW_SKIP_BUNDLING") == "1":
        final[BUNDLING_STACKS] = []
    # The CLI names the output directory; run directly, synthesise to ./cdk.out as the CLI would.
    outdir = outdir or os.environ.get("CDK_OUTDIR") or str(REPO_ROOT / "cdk.out")
    app = cdk.App(context=defaults, post_cli_context=final or None, outdir=outdir)
    if env is None:
        account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
        env = cdk.Environment(account=account, region=region) if account and region else None

    stack = PipelineStack(
        app,
        STACK_NAME,
        settings=Settings.from_node(app.node),
        env=env,
        description="ticketflow: support-ticket CSV ETL (S3 -> Step Functions -> Glue -> Athena)",
    )
    cdk.Tags.of(app).add("project", "ticketflow")
    for pack in NAG_PACKS:
        cdk.Aspects.of(app).add(pack(verbose=True))
    return app, stack
