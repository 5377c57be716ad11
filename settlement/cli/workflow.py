"""``settle submit | run | runs | show | demo``: the settlement workflow, locally (spec §9)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from settlement.bootstrap import Adapters, build_adapters
from settlement.cli.options import HomeOption, fail, require_file, settings_for
from settlement.cli.output import make_console, plain, value_table
from settlement.config import configured_variables, embedded_settings
from settlement.domain.batches import (
    INCOMING_PREFIX,
    InvalidBatchesError,
    InvalidRequestError,
    manifest_for,
    parse_run_request,
)
from settlement.domain.ports import RunRecord, RunRepository

if TYPE_CHECKING:
    from settlement.domain.reference import ReferenceKind

console = make_console()
errors = make_console(stderr=True)

PeriodOption = Annotated[
    list[str] | None, typer.Option("--period", help="A period YYYY-MM (repeatable).")
]


def register(app: typer.Typer) -> None:
    """Add the workflow commands to ``app``."""
    app.command("submit")(submit)
    app.command("run")(run)
    app.command("runs")(runs)
    app.command("show")(show)
    app.command("abandon")(abandon)
    app.command("release")(release)
    app.command("demo")(demo)


# --------------------------------------------------------------------------- submit
def submit(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The batch data file (.csv or .parquet).")
    ],
    period: Annotated[str, typer.Option("--period", help="The batch's period YYYY-MM.")],
    batch_id: Annotated[
        str | None, typer.Option("--batch-id", help="Default: the file name without extension.")
    ] = None,
    source: Annotated[str, typer.Option("--source", help="The sending system.")] = "cli",
    home: HomeOption = None,
) -> None:
    """Store a transaction batch and its manifest, as the external account would."""
    require_file(file)
    adapters = build_adapters(settings_for(home))
    try:
        manifest = submit_batch(adapters, file, period=period, batch_id=batch_id, source=source)
    except (InvalidBatchesError, OSError, ValueError) as error:
        raise fail(f"{file}: {error}") from None
    console.print(
        f"submitted batch [bold]{plain(manifest['batch_id'])}[/] for {plain(manifest['period'])}: "
        f"{manifest['row_count']} rows, sha256 {manifest['sha256'][:12]}…"
    )


def submit_batch(
    adapters: Adapters, file: Path, *, period: str, batch_id: str | None = None, source: str
) -> dict[str, Any]:
    """Write ``incoming/transactions/<batch_id>.<fmt>`` then its manifest (last, so a run never
    sees a manifest whose data file is still on its way).

    Returns
    -------
    dict
        The manifest written.
    """
    fmt = file.suffix.lower().lstrip(".")
    if fmt not in ("csv", "parquet"):
        raise ValueError("a batch is a .csv or .parquet file")
    data = file.read_bytes()
    batch = batch_id or file.stem
    manifest = manifest_for(batch, period, data, fmt, source=source)
    for other in ("csv", "parquet"):
        if other != fmt:
            adapters.store.delete(f"{INCOMING_PREFIX}{batch}.{other}")
    adapters.store.write_bytes(f"{INCOMING_PREFIX}{batch}.{fmt}", data)
    adapters.store.write_json(f"{INCOMING_PREFIX}{batch}.manifest.json", manifest)
    return manifest


# --------------------------------------------------------------------------- run
def run(
    *,
    period: PeriodOption = None,
    from_: Annotated[str | None, typer.Option("--from", help="First date YYYY-MM-DD.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last date YYYY-MM-DD.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compute, publish nothing.")] = False,
    requested_by: Annotated[str | None, typer.Option("--requested-by")] = None,
    home: HomeOption = None,
) -> None:
    """Run the settlement state machine for periods or a date range; prints the run id."""
    request = run_request(period, from_, to, dry_run=dry_run, requested_by=requested_by)
    from state_machine.local import new_run_id

    adapters = build_adapters(settings_for(home))
    name = new_run_id()
    try:
        execution = run_with_progress(adapters, request, run_id=name)
    except KeyboardInterrupt:
        raise fail(interrupted_line(adapters, name)) from None
    if execution.status == "SUCCEEDED":
        print_outcome(read_run_report(adapters, name))
        typer.echo(name)
        return
    record = adapters.database.runs.get_run(name)
    if record is None:
        # Refused before it opened (invalid input or batches, periods held): no run exists
        # under this id, so printing it would hand the operator an id `settle show` rejects.
        raise fail(f"run refused, no run was recorded: {execution.error}: {execution.cause}")
    typer.echo(name)
    if record.state == "RUNNING":
        # The failure handler itself failed (the execution ends in it): nothing released.
        from lambdas.record_failure import describe_failure

        error, cause = describe_failure({"Error": execution.error, "Cause": execution.cause})
        raise fail(
            f"run {name} failed and recording the failure failed too ({error}: {cause}); "
            f"it still holds its periods: fix that, then `settle abandon {name}`"
        )
    raise fail(f"run {name} failed: {execution.error}: {execution.cause}")


def read_run_report(adapters: Adapters, run_id: str) -> dict[str, Any] | None:
    """``runs/<run_id>/run_report.json``, or None when the run wrote none."""
    key = f"runs/{run_id}/run_report.json"
    return adapters.store.read_json(key) if adapters.store.exists(key) else None


def print_outcome(report: Mapping[str, Any] | None) -> None:
    """What a finished run published (or would have), and the periods it found no batch for."""
    if report is None:
        return
    print_periods_without_batches(report)
    if report.get("dry_run"):
        records = report.get("computed_delta_records")
        console.print(f"dry run: {records} delta records would be published; nothing was")
    elif report.get("state") == "SUCCEEDED" and not report.get("records"):
        console.print("nothing to publish: no transaction changed")
    elif report.get("records"):
        deltas = ", ".join(f"{d['currency']} {d['delta']}" for d in report.get("published", []))
        console.print(f"published {report['records']} delta records ({deltas})")


def print_periods_without_batches(report: Mapping[str, Any]) -> None:
    """A period with no batch is settled from nothing (spec §5: its publications reversed);
    a later period may hold clawbacks of sales the run changed."""
    without = report.get("periods_without_batches") or []
    if without:
        console.print(
            f"[yellow]no batches for {', '.join(without)}: settled nothing there, so whatever "
            "was published for it is reversed[/]"
        )
    for later in report.get("periods_to_recompute") or []:
        console.print(
            f"[yellow]{later['records']} cancellation(s) published for {plain(later['period'])} "
            "reverse sales this run changed: their clawbacks keep the old amounts until "
            f"{plain(later['period'])} is re-run too[/]"
        )


def interrupted_line(adapters: Adapters, run_id: str) -> str:
    """What an interrupted run left behind (the local runner released what it held)."""
    runs = adapters.database.runs
    record = runs.get_run(run_id)
    if record is None:
        return "interrupted (Ctrl-C) before the run opened: nothing was held or published"
    if record.state != "FAILED":
        return f"interrupted (Ctrl-C): run {run_id} is {record.state}"
    return f"interrupted (Ctrl-C): run {run_id} is FAILED{locks_left(runs, run_id)}"


def locks_left(runs: RunRepository, run_id: str) -> str:
    """What became of an ended run's periods, to follow "FAILED" in one line of output."""
    if runs.holds_locks(run_id):
        return (
            " and keeps its periods until its publication to Core View is settled (the next "
            f"run of them does it; see `settle show {run_id}`)"
        )
    return ", its periods released"


def run_request(
    periods: Sequence[str] | None,
    start: str | None,
    end: str | None,
    *,
    dry_run: bool,
    requested_by: str | None,
) -> dict[str, Any]:
    """The execution input of spec §8 from the command's options."""
    # Usage errors (exit 2): which options go together is the command line's business.
    if bool(periods) == bool(start or end):
        raise typer.BadParameter("give --period (repeatable) or --from and --to")
    if (start is None) != (end is None):
        raise typer.BadParameter("--from and --to go together")
    request: dict[str, Any] = (
        {"periods": list(periods or [])} if periods else {"from": start, "to": end}
    )
    request["dry_run"] = dry_run
    request["requested_by"] = requested_by or getpass.getuser()
    try:
        parse_run_request(request)  # a malformed period or date is the command line's too
    except InvalidRequestError as error:
        raise typer.BadParameter(str(error)) from None
    return request


def run_with_progress(adapters: Adapters, request: Mapping[str, Any], **options: Any) -> Any:
    """Run the workflow locally, showing each state as it starts and ends."""
    from state_machine.local import run_workflow

    with console.status("starting…") as status:
        return run_workflow(adapters, request, on_event=run_progress(status.update), **options)


def run_progress(update: Callable[[str], None]) -> Callable[[Any], None]:
    """An ``on_event`` that prints each finished state and keeps ``update``'s line current."""
    marks = {
        "succeeded": "[green]✓[/]",
        "failed": "[red]✗[/]",
        "caught": "[red]✗[/]",
        "retrying": "[yellow]↻[/]",
    }

    iterations_done: dict[str, set[str]] = {}

    def show(event: Any) -> None:
        if event.scope:
            # Inside a Map (the publish parts): count the iterations that finished.
            if event.kind == "succeeded":
                parent = event.scope.split("[", 1)[0]
                done = iterations_done.setdefault(parent, set())
                done.add(event.scope)
                update(f"{parent}… {len(done)} done")
            return
        if event.kind == "entered":
            update(f"{event.state}…")
        elif event.kind in marks:
            detail = f" [dim]{plain(event.error)}[/]" if event.error else ""
            if isinstance(event.data, dict) and event.data.get("run_opened") is False:
                # Refused before it opened: another run's periods were not touched.
                detail = " [dim](the run never opened: it held nothing to release)[/]"
            console.print(f"{marks[event.kind]} {event.state}{detail}")

    return show


# --------------------------------------------------------------------------- runs / show
def runs(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
    home: HomeOption = None,
) -> None:
    """List runs, newest first."""
    records = build_adapters(settings_for(home)).database.runs.list_runs(limit=limit)
    if as_json:
        typer.echo(json.dumps([run_json(record) for record in records], indent=2))
        return
    table = value_table("run id", "state", "periods", "dry run", "requested by", "started", "error")
    for record in records:
        table.add_row(
            record.run_id,
            record.state,
            ", ".join(record.periods),
            "yes" if record.dry_run else "",
            record.requested_by,
            f"{record.created_at:%Y-%m-%d %H:%M:%S}",
            (record.error or "")[:60],
        )
    console.print(table)


def show(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run id (the execution name).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """Show one run: its state, inputs, counts, totals and what was published."""
    adapters = build_adapters(settings_for(home))
    record = adapters.database.runs.get_run(run_id)
    if record is None:
        raise fail(f"no run {run_id}")
    report = read_run_report(adapters, run_id)
    if as_json:
        typer.echo(json.dumps({"run": run_json(record), "report": report}, indent=2))
        return
    print_run(record, report)


def abandon(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run to mark FAILED.")],
    home: HomeOption = None,
) -> None:
    """Mark a RUNNING run whose process was killed as FAILED and release its periods.

    Only for a run that no longer runs anywhere (its `settle run` was killed): what the
    workflow's failure handler would have done, including asking Core View whether a run that
    had reconciled was committed.
    """
    from state_machine.local import RunNotRunningError, RunStillRunningError, abandon_run

    adapters = build_adapters(settings_for(home))
    try:
        answer = abandon_run(adapters, run_id, "abandoned by the operator: its process had ended")
    except (RunNotRunningError, RunStillRunningError) as error:
        raise fail(str(error)) from None
    left = locks_left(adapters.database.runs, run_id)
    console.print(f"run {run_id} marked FAILED{left}: {plain(answer['cause'])}")


def release(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The failed run.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Who decided, and why (kept with the run).")
    ],
    home: HomeOption = None,
) -> None:
    """Release the periods a FAILED run kept, WITHOUT settling its publication.

    A last resort after an incident with the Core View team: a run that failed with its
    publication unresolved keeps its periods and the ledger lock, and the next run of them
    settles it by asking Core View. Only when that can never succeed (Core View holds other
    figures, and the incident decided how to correct them) release them by hand; the ledger is
    not touched.
    """
    adapters = build_adapters(settings_for(home))
    runs = adapters.database.runs
    record = runs.get_run(run_id)
    if record is None or record.state == "RUNNING" or not runs.holds_locks(run_id):
        found = "unknown" if record is None else record.state
        raise fail(f"run {run_id} is {found} and keeps no locks: nothing to release")
    runs.release_locks(run_id, note=f" | locks released by hand: {reason}")
    console.print(f"run {run_id}: its periods and the ledger lock are released ({plain(reason)})")


def run_json(record: RunRecord) -> dict[str, Any]:
    """A run record as JSON."""
    return {
        "run_id": record.run_id,
        "periods": record.periods,
        "state": record.state,
        "dry_run": record.dry_run,
        "requested_by": record.requested_by,
        "created_at": record.created_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "error": record.error,
        "step_timings": record.step_timings,
        "summary": record.summary,
    }


def print_run(record: RunRecord, report: Mapping[str, Any] | None) -> None:
    """The run for a person: header, batches, totals, published deltas, timings."""
    console.print(
        f"[bold]{plain(record.run_id)}[/]  {record.state}  periods {', '.join(record.periods)}"
    )
    console.print(f"requested by {plain(record.requested_by)}, dry run: {record.dry_run}")
    if record.error:
        console.print(f"[red]error:[/] {plain(record.error)}")
    if report is None:
        return
    print_periods_without_batches(report)
    if report.get("batches"):
        batches = value_table(
            "batch", "period", "rows in", "settled", "rejected", "in = settled + rejected",
            title="Reconciliation per batch",
            numeric={"rows in", "settled", "rejected"},
        )  # fmt: skip
        for batch in report["batches"]:
            counts = [batch.get(k) for k in ("rows_in", "rows_settled", "rows_rejected")]
            balanced = counts[0] == counts[1] + counts[2]
            batches.add_row(
                str(batch.get("batch_id")),
                str(batch.get("period")),
                *(str(count) for count in counts),
                Text("✓", style="green") if balanced else Text("✗", style="red"),
            )
        console.print(batches)
    if record.dry_run:
        print_dry_run_deltas(report)
    else:
        if report.get("totals") or report.get("published"):
            print_totals(report.get("totals", []), report.get("published", []))
        console.print(f"delta records published: {report.get('records', 0)}")
        print_uncommitted(report)
    if report.get("timings"):
        steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in report["timings"].items())
        console.print(f"[dim]timings: {steps}[/]")


def print_uncommitted(report: Mapping[str, Any]) -> None:
    """What Core View holds for a run that never committed (not booked; a re-run owes it all)."""
    acknowledged = report.get("acknowledged_by_core_view") or {}
    if acknowledged.get("batches") and not report.get("published_to_core_view"):
        console.print(
            f"[yellow]Core View acknowledged {acknowledged['records']} records in "
            f"{acknowledged['batches']} batches of this run, whose commit was not confirmed: "
            "unless the error above says Core View could not be asked, they are not booked "
            "and a new run publishes what is owed whole[/]"
        )


DRY_RUN_LABEL = "would publish (dry run)"


def print_totals(
    totals: Sequence[Mapping[str, Any]],
    deltas: Sequence[Mapping[str, Any]],
    *,
    delta_label: str = "published delta",
) -> None:
    """Totals per currency with the delta next to them (published, or on a dry run computed).

    A currency with a delta and no settled line (every line of it reversed) still gets a row.
    """
    delta_of = {entry["currency"]: entry["delta"] for entry in deltas}
    total_of = {entry["currency"]: entry for entry in totals}
    amounts = ("base", "bonus", "clawback", "total", delta_label)
    table = value_table("currency", *amounts, title="Totals", numeric=amounts)
    for currency in sorted(total_of.keys() | delta_of.keys()):
        entry = total_of.get(currency, {})
        table.add_row(
            currency,
            *(
                str(entry.get(k, "—"))
                for k in ("base_total", "bonus_total", "clawback_total", "total")
            ),
            str(delta_of.get(currency, "0.00")),
        )
    console.print(table)


def print_dry_run_deltas(report: Mapping[str, Any]) -> None:
    """What a dry run computed and would publish; it published nothing (spec §8)."""
    computed = report.get("computed_delta_totals") or []
    if report.get("totals") or computed:
        print_totals(report.get("totals", []), computed, delta_label=DRY_RUN_LABEL)
    if computed:
        parts = ("base delta", "bonus delta", "delta")
        table = value_table("currency", *parts, title=f"Deltas that {DRY_RUN_LABEL}", numeric=parts)
        for entry in sorted(computed, key=lambda entry: str(entry["currency"])):
            table.add_row(
                entry["currency"],
                *(str(entry.get(k, "—")) for k in ("base_delta", "bonus_delta", "delta")),
            )
        console.print(table)
    records = report.get("computed_delta_records")
    console.print(
        f"delta records that {DRY_RUN_LABEL}: {'—' if records is None else records}; "
        "nothing was published"
    )


# --------------------------------------------------------------------------- demo
def demo(
    rows: Annotated[int, typer.Option("--rows", help="Transactions in the month.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic data.")] = 7,
    period: Annotated[str, typer.Option("--period", help="The month to generate.")] = "2026-10",
    home: HomeOption = None,
) -> None:
    """Generate a month, upload reference data, submit, run; then correct the matrix and re-run.

    The demo works in its own workspace ``<home>/demo``, emptied first, so every demo starts
    from nothing published and the same seed always tells the same story. It uses only the
    embedded defaults there: a configured database, data store or Core View is never touched.
    """
    demo_home = settings_for(home).home / "demo"
    shutil.rmtree(demo_home, ignore_errors=True)
    adapters = build_adapters(embedded_settings(demo_home))
    console.print(f"demo workspace: {plain(demo_home)}")
    ignored = configured_variables()
    if ignored:
        errors.print(
            f"note: the demo ignores {', '.join(ignored)} (it keeps to its own workspace); "
            "unset them to inspect it with the commands it prints"
        )
    try:
        outcome = run_demo(adapters, rows=rows, seed=seed, period=period)
    except DemoFailedError as error:
        raise fail(str(error)) from None
    console.print(f"first run {outcome['first']}, re-run {outcome['second']}")
    # Under `uv run` (the README's way) `settle` is not on the PATH of the operator's shell.
    settle = "uv run settle" if os.environ.get("UV") else "settle"
    console.print(f"list the runs:   {settle} runs --home {plain(demo_home)}")
    console.print(f"report on one:   {settle} report RUN_ID --home {plain(demo_home)}")


class DemoFailedError(Exception):
    """A demo run did not succeed."""


def run_demo(
    adapters: Adapters,
    *,
    rows: int,
    seed: int,
    period: str,
    spark: Any = None,
    show_output: bool = True,
) -> dict[str, Any]:
    """The demo of spec §9, reusable by tests.

    Returns
    -------
    dict
        ``first`` and ``second`` run ids and the generated month.
    """
    from settlement.generator import generate_month, write_corrected_matrix

    say = console.print if show_output else _silent
    with tempfile.TemporaryDirectory(prefix="settle-demo-") as scratch:
        say(f"[bold]1.[/] generating {rows} transactions for {period} (seed {seed})")
        month = generate_month(
            Path(scratch), rows=rows, seed=seed, period=period, invalid_share=0.01
        )
        upload(adapters, "matrix", month.matrix_path)
        upload(adapters, "targets", month.targets_path)
        for batch in month.batches:
            submit_batch(
                adapters,
                batch.data_path,
                period=period,
                batch_id=batch.batch_id,
                source=month.source,
            )
        say(f"[bold]2.[/] uploaded matrix and targets, submitted {len(month.batches)} batch(es)")
        first = _demo_run(adapters, period, spark, show_output)
        if show_output:
            print_dealer_summary(adapters, first)
            print_run(
                _run(adapters, first), adapters.store.read_json(f"runs/{first}/run_report.json")
            )
        corrected = write_corrected_matrix(
            month.matrix_path, Path(scratch) / "matrix-corrected.csv"
        )
        upload(adapters, "matrix", corrected)
        say("[bold]3.[/] uploaded a corrected matrix (DE rates changed); re-processing the month")
        second = _demo_run(adapters, period, spark, show_output)
        if show_output:
            print_run(
                _run(adapters, second), adapters.store.read_json(f"runs/{second}/run_report.json")
            )
            print_deltas(adapters, second)
    return {"first": first, "second": second, "month": month}


def _silent(*_: Any, **__: Any) -> None:
    return None


def _run(adapters: Adapters, run_id: str) -> RunRecord:
    record = adapters.database.runs.get_run(run_id)
    assert record is not None
    return record


def _demo_run(adapters: Adapters, period: str, spark: Any, show_output: bool) -> str:
    from state_machine.local import run_workflow

    request = {"periods": [period], "requested_by": "settle demo"}
    if show_output:
        execution = run_with_progress(adapters, request, spark=spark)
    else:
        execution = run_workflow(adapters, request, spark=spark)
    if execution.status != "SUCCEEDED":
        raise DemoFailedError(f"run {execution.name} failed: {execution.error}: {execution.cause}")
    run_id: str = execution.name
    return run_id


def upload(adapters: Adapters, kind: ReferenceKind, path: Path) -> Any:
    """Store a reference file under ``incoming/reference/<kind>/`` and load it as a version."""
    from settlement.domain.reference.service import upload_reference

    data = path.read_bytes()
    adapters.store.write_bytes(f"incoming/reference/{kind}/{path.name}", data)
    return upload_reference(
        kind,
        path.name,
        data,
        uploaded_by="settle demo",
        repository=adapters.database.reference,
    )


def print_deltas(adapters: Adapters, run_id: str, *, top: int = 10) -> None:
    """The largest published corrections of a run."""
    columns = [
        "transaction_id",
        "period",
        "dealer_id",
        "currency",
        "base_delta",
        "bonus_delta",
        "delta",
    ]
    rows = _dataset(adapters, f"runs/{run_id}/deltas").to_table(columns=columns).to_pylist()
    rows.sort(key=lambda row: (-abs(row["delta"]), row["transaction_id"]))
    table = value_table(
        *columns,
        title=f"Largest of {len(rows)} deltas published by {run_id}",
        numeric=columns[-3:],
    )
    for row in rows[:top]:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)


def _dataset(adapters: Adapters, prefix: str) -> Any:
    import pyarrow.dataset as pads  # type: ignore[import-untyped, unused-ignore]

    store = adapters.store
    return pads.dataset(
        store.path(prefix), filesystem=store.filesystem, format="parquet", partitioning="hive"
    )


def print_dealer_summary(adapters: Adapters, run_id: str, *, top: int = 10) -> None:
    """The dealers with the largest totals of a run."""
    dataset = _dataset(adapters, f"runs/{run_id}/dealer_summary")
    columns = [
        "dealer_id",
        "market",
        "currency",
        "net_units",
        "target_units",
        "bonus_tier",
        "flag",
        "total",
    ]
    rows = dataset.to_table(columns=columns).sort_by([("total", "descending")]).slice(0, top)
    table = value_table(
        *columns,
        title=f"Top {top} dealers of {run_id}",
        numeric={"net_units", "target_units", "bonus_tier", "total"},
    )
    for row in rows.to_pylist():
        table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    console.print(table)
