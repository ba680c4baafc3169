#!/usr/bin/env python3
"""CDK entry point (cdk.json: "app"). `python app.py` alone synthesises to cdk.out without Docker or AWS
credentials; `cdk deploy` builds the assets and deploys. See infra/app.py."""

from infra.app import create_app

if __name__ == "__main__":
    app, _ = create_app()
    app.synth()
