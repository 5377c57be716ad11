"""What the app reads from CDK context, and where the sources it deploys live."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constructs import Node

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class ContextError(ValueError):
    """A CDK context value is missing or malformed."""


@dataclass(frozen=True)
class InfraConfig:
    """Deployment choices, from ``cdk.json`` context or ``cdk synth -c key=value``.

    Attributes
    ----------
    external_account_id
        AWS account that delivers transaction batches under ``incoming/transactions/``.
    coreview_url
        Base URL of the Core View API (``SETTLE_COREVIEW_URL`` of the Lambdas).
    glue_worker_type, glue_number_of_workers
        Capacity of the calculation job.
    nat_gateways
        0 keeps the VPC isolated; Core View over the internet needs at least 1.
    database_instance_type
        RDS instance class without the ``db.`` prefix, e.g. ``t4g.medium``.
    database_multi_az
        Standby in a second AZ for the settlement database.
    dependency_layer_dir
        Directory (relative to the project root) holding the Lambda dependency layer
        (``python/…``); a placeholder layer is deployed, with a warning, when it is absent.
    """

    external_account_id: str
    coreview_url: str
    glue_worker_type: str = "G.1X"
    glue_number_of_workers: int = 10
    nat_gateways: int = 0
    database_instance_type: str = "t4g.medium"
    database_multi_az: bool = True
    dependency_layer_dir: str = "build/lambda-layer"

    def __post_init__(self) -> None:
        if not _ACCOUNT_ID.match(self.external_account_id):
            raise ContextError(
                f"context external_account_id: expected 12 digits, got {self.external_account_id!r}"
            )
        if not self.coreview_url.startswith(("https://", "http://")):
            raise ContextError(
                f"context coreview_url: expected http(s) URL, got {self.coreview_url!r}"
            )
        if self.glue_number_of_workers < 2:
            raise ContextError("context glue_number_of_workers: Glue needs at least 2 workers")
        if self.nat_gateways < 0:
            raise ContextError("context nat_gateways: must be >= 0")

    @classmethod
    def from_context(cls, node: Node) -> InfraConfig:
        """Read the configuration from the context of ``node`` (values may be strings)."""
        defaults = cls.__dataclass_fields__
        return cls(
            external_account_id=_required(node, "external_account_id"),
            coreview_url=_required(node, "coreview_url"),
            glue_worker_type=str(
                _optional(node, "glue_worker_type", defaults["glue_worker_type"].default)
            ),
            glue_number_of_workers=_as_int(
                "glue_number_of_workers",
                _optional(
                    node, "glue_number_of_workers", defaults["glue_number_of_workers"].default
                ),
            ),
            nat_gateways=_as_int(
                "nat_gateways", _optional(node, "nat_gateways", defaults["nat_gateways"].default)
            ),
            database_instance_type=str(
                _optional(
                    node, "database_instance_type", defaults["database_instance_type"].default
                )
            ),
            database_multi_az=_as_bool(
                "database_multi_az",
                _optional(node, "database_multi_az", defaults["database_multi_az"].default),
            ),
            dependency_layer_dir=str(
                _optional(node, "dependency_layer_dir", defaults["dependency_layer_dir"].default)
            ),
        )


@dataclass(frozen=True)
class SourcePaths:
    """Files the stack packages; injectable so tests can stand in for files not written yet.

    Attributes
    ----------
    project_root
        Root of the checkout: the Lambda code asset and the Glue ``--extra-py-files`` zip.
    asl
        The Amazon States Language definition of the settlement run.
    glue_script
        Entry script of the Glue job.
    """

    project_root: Path
    asl: Path
    glue_script: Path

    @classmethod
    def of_project(cls, project_root: Path = PROJECT_ROOT) -> SourcePaths:
        """The real sources of the checkout at ``project_root``."""
        return cls(
            project_root=project_root,
            asl=project_root / "state_machine" / "settlement.asl.json",
            glue_script=project_root / "glue_jobs" / "calculate_commissions.py",
        )

    def check_exist(self) -> None:
        """Fail with the missing path rather than deep inside synthesis."""
        for path in (self.project_root, self.asl, self.glue_script):
            if not path.exists():
                raise FileNotFoundError(f"infra source missing: {path}")


def _required(node: Node, key: str) -> str:
    value = node.try_get_context(key)
    if value is None or str(value).strip() == "":
        raise ContextError(f"context {key} is required (cdk.json or `-c {key}=…`)")
    return str(value).strip()


def _optional(node: Node, key: str, default: Any) -> Any:
    value = node.try_get_context(key)
    return default if value is None else value


def _as_int(key: str, value: Any) -> int:
    try:
        return int(str(value))
    except ValueError as error:
        raise ContextError(f"context {key}: expected an integer, got {value!r}") from error


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ContextError(f"context {key}: expected true/false, got {value!r}")
