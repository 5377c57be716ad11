"""Entry point of the CDK app: ``python -m infra.app`` (what ``cdk.json`` runs)."""

from __future__ import annotations

import os

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import InfraConfig, SourcePaths
from infra.stack import SettlementStack

STACK_NAME = "Settlement"


def build_app(
    app: App | None = None, *, sources: SourcePaths | None = None
) -> tuple[App, SettlementStack]:
    """Create the settlement stack in ``app`` with cdk-nag's AWS Solutions checks applied.

    Parameters
    ----------
    app
        The CDK app (context from ``cdk.json``/``-c``); a new ``App()`` when omitted.
    sources
        Where the ASL, the Glue script and the packages are; the checkout by default.

    Returns
    -------
    tuple[App, SettlementStack]
        The app (call ``synth()``) and the stack.
    """
    app = app or App()
    stack = SettlementStack(
        app,
        STACK_NAME,
        config=InfraConfig.from_context(app.node),
        sources=sources or SourcePaths.of_project(),
        env=_environment(),
        description="Dealer commission settlement (Step Functions, Lambda, Glue, RDS)",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def _environment() -> Environment | None:
    # Environment-agnostic unless the CLI resolved an account and region.
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    return Environment(account=account, region=region) if account and region else None


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
