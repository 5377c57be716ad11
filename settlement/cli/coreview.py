"""``settle coreview …``: the local Core View server (spec §7, §9)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from settlement.cli.options import HomeOption, fail, settings_for


def register(app: typer.Typer) -> None:
    """Add ``settle coreview serve`` to ``app``."""
    coreview = typer.Typer(help="The local Core View server.", no_args_is_help=True)
    coreview.command("serve")(serve)
    app.add_typer(coreview, name="coreview")


def serve(  # noqa: PLR0917 - Typer maps each parameter to an option
    home: HomeOption = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8787,
    db: Annotated[Path | None, typer.Option(help="SQLite file of what Core View holds.")] = None,
    token: Annotated[
        str | None, typer.Option(help="Bearer token to accept (default: the settings').")
    ] = None,
    fail_rate: Annotated[
        float, typer.Option(help="Share of writes failing (429 / 5xx / dropped, mixed).")
    ] = 0.0,
    fault_kinds: Annotated[
        str, typer.Option(help="Comma-separated subset of 429,5xx,drop.")
    ] = "429,5xx,drop",
    latency_ms: Annotated[float, typer.Option(help="Latency added to every write.")] = 0.0,
    retry_after: Annotated[float, typer.Option(help="Retry-After of a 429, seconds.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault generator.")] = 0,
) -> None:
    """Serve the Core View API on loopback until interrupted."""
    from settlement.local_coreview import FaultConfig, serve_forever
    from settlement.local_coreview.server import bind_loopback

    settings = settings_for(home)
    try:
        faults = FaultConfig(
            fail_rate=fail_rate,
            kinds=tuple(kind.strip() for kind in fault_kinds.split(",") if kind.strip()),
            latency_ms=latency_ms,
            retry_after_s=retry_after,
            seed=seed,
        )
    except ValueError as error:  # an option's value: a usage error (exit 2), like Click's own
        raise typer.BadParameter(str(error)) from None
    database = db or settings.home / "coreview.db"
    try:
        listener = bind_loopback(port)
    except OSError as error:
        raise fail(f"cannot listen on 127.0.0.1:{port}: {error.strerror or error}") from None
    typer.echo(f"Core View on http://127.0.0.1:{port} (db {database})", err=True)
    serve_forever(
        db=database, token=token or settings.coreview_token, faults=faults, listener=listener
    )
