"""Sizes of the deployed stack that more than one part reads: the CDK stack (`infra/`) deploys them and the
cost model (`ticketflow/ops/cost.py`) prices them, so both read them here.

The validate function's memory and the Glue job's worker type and count are deployment settings (cdk.json
context, checked by `infra/settings.py`), not constants: they are not here.
"""

from __future__ import annotations

# Memory (MB) of the Lambda functions whose size is fixed in code; validate's is cdk.json `validate_memory_mb`.
FUNCTION_MEMORY_MB = {"trigger": 256, "inspect": 512, "publish": 512, "retract": 512, "notify": 256}

# DPUs per worker of each Glue 5.0 Spark worker type (AWS Glue developer guide, "Defining job properties for
# Spark jobs": G.1X = 1 DPU, 4 vCPU, 16 GB; G.2X = 2 DPU ... G.16X = 16 DPU; R.*X are memory-optimized DPUs,
# M-DPU, priced apart). G.025X is for streaming jobs only and is left out.
GLUE_DPU_PER_WORKER = {
    "G.1X": 1, "G.2X": 2, "G.4X": 4, "G.8X": 8, "G.12X": 12, "G.16X": 16,
    "R.1X": 1, "R.2X": 2, "R.4X": 4, "R.8X": 8,
}
MEMORY_OPTIMIZED_PREFIX = "R."

# Glue's execution classes (Job.ExecutionClass). FLEX runs on spare capacity for Glue 3.0+ `glueetl` jobs with
# G.1X or G.2X workers only (AWS Glue developer guide, "Flex execution").
EXECUTION_CLASSES = ("STANDARD", "FLEX")
FLEX_WORKER_TYPES = ("G.1X", "G.2X")
