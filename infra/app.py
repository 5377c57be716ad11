"""Entry point of the CDK app: ``python -m infra.app`` (what ``cdk.json`` runs)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import PROJECT_ROOT, InfraConfig, SourcePaths
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


def cdk_json_context(project_root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The ``context`` of ``cdk.json``: what a plain ``python -m infra.app`` runs with.

    Under the CDK CLI the same values arrive through ``CDK_CONTEXT_JSON`` and win, together
    with any ``-c key=value``.
    """
    cdk_json = project_root / "cdk.json"
    if not cdk_json.exists():
        return {}
    context: dict[str, Any] = json.loads(cdk_json.read_text())["context"]
    return context


def main() -> None:
    # The CLI chooses the output directory (CDK_OUTDIR); a plain run writes ./cdk.out.
    outdir = None if os.environ.get("CDK_OUTDIR") else str(PROJECT_ROOT / "cdk.out")
    app, stack = build_app(App(context=cdk_json_context(), outdir=outdir))
    assembly = app.synth()
    for message in assembly.get_stack_artifact(stack.artifact_id).messages:
        print(f"{message.level}: {message.id}: {message.entry.data}", file=sys.stderr)
    print(assembly.directory)


if __name__ == "__main__":
    main()
