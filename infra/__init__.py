"""The AWS CDK app deploying the settlement: ``python -m infra.app`` (or ``cdk synth``)."""
