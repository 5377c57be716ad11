"""``settle upload`` and ``settle versions``: reference data (spec §3, §9)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from settlement.bootstrap import build_adapters
from settlement.cli.options import HomeOption, fail, require_file, settings_for
from settlement.cli.output import make_console, value_table
from settlement.domain.reference.errors import ReferenceUploadError
from settlement.domain.reference.models import REFERENCE_KINDS, ReferenceKind, VersionInfo
from settlement.domain.reference.service import incoming_key, load_incoming

console = make_console()

KindOption = Annotated[str, typer.Option("--kind", help="matrix or targets.")]


def register(app: typer.Typer) -> None:
    """Add ``settle upload`` and ``settle versions`` to ``app``."""
    app.command("upload")(upload)
    app.command("versions")(versions)


def upload(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The matrix or targets file (.csv or .xlsx).")
    ],
    kind: KindOption,
    home: HomeOption = None,
    uploaded_by: Annotated[
        str | None, typer.Option("--uploaded-by", help="Who uploads (default: your user name).")
    ] = None,
) -> None:
    """Store a reference file under incoming/reference/<kind>/ and load it as a new version."""
    checked_kind = _kind(kind)
    require_file(file)
    adapters = build_adapters(settings_for(home))
    key = incoming_key(checked_kind, file.name)
    adapters.store.write_bytes(key, file.read_bytes())
    try:
        result = load_incoming(
            key,
            store=adapters.store,
            repository=adapters.database.reference,
            uploaded_by=uploaded_by or _user_name(),
        )
    except ReferenceUploadError as error:
        _print_errors(error)
        message = f"{file.name} rejected with {len(error.errors)} error(s); nothing was loaded"
        raise fail(message) from None
    if result.created:
        console.print(f"{checked_kind} version {result.version_id}: {result.row_count} rows loaded")
    elif result.superseded_by is None:
        console.print(
            f"{checked_kind} version {result.version_id}: already loaded ({result.row_count} rows, "
            "same file)"
        )
    else:
        # Matrix versions replace whole markets; target versions upsert (dealer, period) pairs.
        replaced = (
            "its rows in the markets both contain"
            if checked_kind == "matrix"
            else "its targets where both name the same dealer and period"
        )
        typer.echo(
            f"warning: this file is {checked_kind} version {result.version_id}; version "
            f"{result.superseded_by}, uploaded since, replaced {replaced} and stays active: an "
            "identical file is one version. To make these values active again, upload them as a "
            "changed file (any change, e.g. the order of the rows).",
            err=True,
        )


def versions(
    kind: Annotated[
        str | None, typer.Option("--kind", help="matrix or targets (default: both).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """List the stored reference versions, oldest first."""
    kinds: list[ReferenceKind] = [_kind(kind)] if kind else [_kind(k) for k in REFERENCE_KINDS]
    adapters = build_adapters(settings_for(home))
    found = [v for k in kinds for v in adapters.database.reference.list_versions(k)]
    if as_json:
        typer.echo(json.dumps([_version_json(v) for v in found], indent=2))
        return
    table = value_table(
        "kind", "version", "uploaded at", "by", "file", "rows", "markets", "sha256",
        numeric={"rows"},
    )  # fmt: skip
    for version in found:
        table.add_row(
            version.kind,
            version.version_id,
            f"{version.uploaded_at:%Y-%m-%d %H:%M:%S}",
            version.uploaded_by,
            version.file_name,
            str(version.row_count),
            ", ".join(version.markets),
            version.sha256[:12],
        )
    console.print(table)


def _kind(kind: str) -> ReferenceKind:
    if kind == "matrix":
        return "matrix"
    if kind == "targets":
        return "targets"
    raise typer.BadParameter(f"must be matrix or targets, not {kind!r}", param_hint="--kind")


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _print_errors(error: ReferenceUploadError) -> None:
    """Every error as a table on stdout; stderr keeps the command's one line."""
    table = value_table("row", "column", "reason", title=f"{error.file_name}: rejected")
    for item in error.errors:
        table.add_row("" if item.row is None else str(item.row), item.column or "", item.reason)
    console.print(table)


def _version_json(version: VersionInfo) -> dict[str, Any]:
    return {
        "kind": version.kind,
        "version_id": version.version_id,
        "uploaded_at": version.uploaded_at.isoformat(),
        "uploaded_by": version.uploaded_by,
        "file_name": version.file_name,
        "row_count": version.row_count,
        "markets": list(version.markets),
        "sha256": version.sha256,
    }
