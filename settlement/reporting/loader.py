"""Build a :class:`ReportModel` from ``runs/<run_id>/`` in the data store.

Reads ``run_report.json`` (spec §6) and the Parquet outputs with pyarrow. Large outputs
(``rejects/``, ``deltas/``) are aggregated in Arrow with decimal sums, never through float.
Optional keys and absent outputs are tolerated: the report shows "—" for what is unknown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.dataset as pads  # type: ignore[import-untyped, unused-ignore]

from settlement.adapters.storage import DataStore
from settlement.reporting.model import (
    BatchReconciliation,
    CurrencyTotals,
    DealerRow,
    DeltaTotals,
    InputBatch,
    PublishedTotal,
    ReasonCount,
    ReportModel,
    RunHeader,
    TierPayout,
)

TOP_DEALERS_PER_CURRENCY = 10
NO_TARGET = "NO_TARGET"
NO_TIER = "no tier"
_MONEY_FIELDS = ("base_total", "bonus_total", "clawback_total", "total")


class RunNotFoundError(LookupError):
    """The data store holds nothing under ``runs/<run_id>/``."""

    def __init__(self, run_id: str, store_uri: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} not found in the data store {store_uri}")


class ReportDataError(ValueError):
    """A run output is malformed; the message names the file, row and field."""


def load_report_model(store: DataStore, run_id: str, *, now: datetime | None = None) -> ReportModel:
    """Read everything the report of ``run_id`` shows.

    Parameters
    ----------
    store
        The data store holding ``runs/<run_id>/``.
    run_id
        The run to report on.
    now
        Time stamp printed in the report (default: the current UTC time).

    Returns
    -------
    ReportModel
        The figures of the run, money as ``Decimal``.

    Raises
    ------
    RunNotFoundError
        When the store has no file under ``runs/<run_id>/``.
    ReportDataError
        When an output is malformed (names the file and field).
    """
    prefix = f"runs/{run_id}"
    if not run_id or "/" in run_id or not any(True for _ in store.list(prefix, recursive=True)):
        raise RunNotFoundError(run_id, store.root_uri)
    report_key = f"{prefix}/run_report.json"
    report: dict[str, Any] = _read_run_report(store, report_key)
    missing = [name for name in ("run_report.json",) if not report]
    summary = _read_dataset(store, f"{prefix}/dealer_summary")
    rejects = _read_dataset(store, f"{prefix}/rejects", columns=["reason"])
    # deltas/ has a row per published transaction (10 M in a big month): summed batch by batch
    deltas = _open_dataset(store, f"{prefix}/deltas", columns=DELTA_COLUMNS)
    batch_counts = _read_dataset(store, f"{prefix}/batch_counts")
    for name, table in (
        ("dealer_summary/", summary),
        ("rejects/", rejects),
        ("deltas/", deltas),
        ("batch_counts/", batch_counts),
    ):
        if table is None:
            missing.append(name)
    header = _header(run_id, report, report_key)
    dealer_rows = (
        _dealer_rows(summary, f"{prefix}/dealer_summary/")
        if summary is not None and summary.num_rows
        else []
    )
    totals, totals_source = _totals(report, report_key, dealer_rows)
    published, published_records = _published(report, report_key)
    return ReportModel(
        header=header,
        generated_at=now or datetime.now(UTC),
        totals=tuple(totals),
        totals_source=totals_source,
        batches=tuple(_batches(report, report_key, batch_counts, header.inputs)),
        rejects_by_reason=tuple(_rejects_by_reason(rejects)),
        tier_payouts=tuple(_tier_payouts(dealer_rows)),
        top_dealers=tuple(_top_dealers(dealer_rows)),
        delta_totals=tuple(_delta_totals(deltas)),
        published=tuple(published),
        published_records=published_records,
        missing=tuple(missing),
    )


# --------------------------------------------------------------------------- reading
def _read_run_report(store: DataStore, key: str) -> dict[str, Any]:
    if not store.exists(key):
        return {}
    try:
        document = store.read_json(key)
    except ValueError as error:
        raise ReportDataError(f"{key}: not valid JSON ({error})") from error
    if not isinstance(document, dict):
        raise ReportDataError(f"{key}: expected a JSON object, got {type(document).__name__}")
    return document


def _read_dataset(
    store: DataStore, key: str, *, columns: Sequence[str] | None = None
) -> pa.Table | None:
    """The Parquet dataset under ``key`` as one table (``None`` when the directory is absent)."""
    dataset = _open_dataset(store, key, columns=columns)
    return None if dataset is None else dataset.to_table(columns=_listed(columns))


def _open_dataset(
    store: DataStore, key: str, *, columns: Sequence[str] | None = None
) -> pads.Dataset | None:
    """The Parquet dataset under ``key`` (hive partitions such as ``part=k`` included).

    ``None`` when the directory is absent; an empty dataset when it holds no Parquet file (Spark
    writes only ``_SUCCESS`` for an empty partitioned output). Spark's ``_SUCCESS`` and ``.crc``
    side files are skipped.
    """
    keys = list(store.list(key, recursive=True))
    files = [k for k in keys if k.endswith(".parquet")]
    files = [k for k in files if not k.rsplit("/", 1)[-1].startswith(("_", "."))]
    if not files:
        if not keys:
            return None
        return pads.dataset(pa.table({name: pa.array([]) for name in columns or ()}))
    dataset = pads.dataset(
        [store.path(k) for k in files],
        filesystem=store.filesystem,
        format="parquet",
        partitioning=pads.partitioning(flavor="hive"),
        partition_base_dir=store.path(key),
    )
    if columns is not None:
        absent = [name for name in columns if name not in dataset.schema.names]
        if absent:
            raise ReportDataError(f"{key}/: missing column(s) {', '.join(absent)}")
    return dataset


def _listed(columns: Sequence[str] | None) -> list[str] | None:
    return list(columns) if columns is not None else None


# --------------------------------------------------------------------------- run_report.json
def _header(run_id: str, report: Mapping[str, Any], key: str) -> RunHeader:
    timings = report.get("timings") or {}
    if not isinstance(timings, Mapping):
        raise ReportDataError(f"{key}: timings: expected an object of step → seconds")
    return RunHeader(
        run_id=str(report.get("run_id") or run_id),
        periods=tuple(str(p) for p in report.get("periods") or ()),
        periods_without_batches=tuple(str(p) for p in report.get("periods_without_batches") or ()),
        state=_optional_str(report.get("state")),
        requested_by=_optional_str(report.get("requested_by")),
        dry_run=None if report.get("dry_run") is None else bool(report["dry_run"]),
        error=_optional_str(report.get("error")),
        timings=tuple(
            (str(step), _seconds(value, f"{key}: timings.{step}"))
            for step, value in timings.items()
        ),
        matrix_versions=_describe_versions(report.get("matrix_versions")),
        target_versions=_describe_versions(report.get("target_versions")),
        inputs=tuple(
            InputBatch(
                batch_id=str(_field(item, "batch_id", f"{key}: inputs[{index}]")),
                period=_optional_str(item.get("period")),
                sha256=_optional_str(item.get("sha256")),
            )
            for index, item in enumerate(_objects(report.get("inputs"), f"{key}: inputs"))
        ),
    )


def _totals(
    report: Mapping[str, Any], key: str, dealer_rows: Sequence[DealerRow]
) -> tuple[list[CurrencyTotals], str]:
    """Totals from ``run_report.json``, else summed from ``dealer_summary/``."""
    if report.get("totals") is not None:
        items = _objects(report["totals"], f"{key}: totals")
        return [
            CurrencyTotals(
                currency=str(_field(item, "currency", f"{key}: totals[{index}]")),
                **{
                    name: _money(
                        _field(item, name, f"{key}: totals[{index}]"), _at(key, index, name)
                    )
                    for name in _MONEY_FIELDS
                },
            )
            for index, item in enumerate(items)
        ], "run_report.json"
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for row in dealer_rows:
        amounts = (row.base_total, row.bonus_total, row.clawback_total, row.total)
        sums[row.currency] = [a + b for a, b in zip(sums[row.currency], amounts, strict=True)]
    totals = [CurrencyTotals(currency, *amounts) for currency, amounts in sorted(sums.items())]
    return totals, "dealer_summary/" if dealer_rows else "—"


def _published(report: Mapping[str, Any], key: str) -> tuple[list[PublishedTotal], int | None]:
    """``published`` is a list of {currency, delta}; tolerate {"totals": […], "records": n}."""
    published = report.get("published")
    records = report.get("records", report.get("published_records"))
    if isinstance(published, Mapping):
        records = published.get("records", records)
        published = published.get("totals")
    totals = [
        PublishedTotal(
            currency=str(_field(item, "currency", f"{key}: published[{index}]")),
            delta=_money(
                _field(item, "delta", f"{key}: published[{index}]"),
                f"{key}: published[{index}].delta",
            ),
        )
        for index, item in enumerate(_objects(published, f"{key}: published"))
    ]
    return totals, None if records is None else _count(records, f"{key}: records")


def _batches(
    report: Mapping[str, Any],
    key: str,
    batch_counts: pa.Table | None,
    inputs: Sequence[InputBatch],
) -> list[BatchReconciliation]:
    """Counts per batch from ``batch_counts/`` when present, else from ``run_report.json``."""
    period_of = {batch.batch_id: batch.period for batch in inputs}
    if batch_counts is not None:
        rows: list[dict[str, Any]] = batch_counts.to_pylist()
        where = key.rsplit("/", 1)[0] + "/batch_counts/"
    else:
        rows = [dict(item) for item in _objects(report.get("batches"), f"{key}: batches")]
        where = f"{key}: batches"
    result = []
    for index, row in enumerate(rows):
        place = f"{where}[{index}]"
        batch_id = str(_field(row, "batch_id", place))
        result.append(
            BatchReconciliation(
                batch_id=batch_id,
                period=_optional_str(row.get("period")) or period_of.get(batch_id),
                rows_in=_count(_field(row, "rows_in", place), f"{place}.rows_in"),
                rows_settled=_count(_field(row, "rows_settled", place), f"{place}.rows_settled"),
                rows_rejected=_count(_field(row, "rows_rejected", place), f"{place}.rows_rejected"),
            )
        )
    return sorted(result, key=lambda b: (b.period or "", b.batch_id))


# --------------------------------------------------------------------------- Parquet outputs
def _dealer_rows(table: pa.Table, where: str) -> list[DealerRow]:
    required = ("period", "market", "dealer_id", "currency", *_MONEY_FIELDS)
    absent = [name for name in required if name not in table.column_names]
    if absent:
        raise ReportDataError(f"{where}: missing column(s) {', '.join(absent)}")
    rows = []
    for index, record in enumerate(table.to_pylist()):
        place = f"{where} row {index + 1}"
        rows.append(
            DealerRow(
                period=str(record["period"]),
                market=str(record["market"]),
                dealer_id=str(record["dealer_id"]),
                currency=str(record["currency"]),
                net_units=_optional_int(record.get("net_units")),
                target_units=_optional_int(record.get("target_units")),
                attainment=_optional_decimal(record.get("attainment"), f"{place}: attainment"),
                tier=_tier_label(record.get("bonus_tier"), record.get("flag")),
                **{name: _money(record[name], f"{place}: {name}") for name in _MONEY_FIELDS},
            )
        )
    return rows


def _tier_label(bonus_tier: object, flag: object) -> str:
    if flag == NO_TARGET:
        return NO_TARGET
    if bonus_tier is None or bonus_tier == "":
        return NO_TIER
    if isinstance(bonus_tier, Decimal):
        return f"≥ {_plain(bonus_tier.normalize())}"
    return f"≥ {bonus_tier}"


def _tier_payouts(rows: Iterable[DealerRow]) -> list[TierPayout]:
    dealers: dict[tuple[str, str], int] = defaultdict(int)
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        dealers[(row.currency, row.tier)] += 1
        totals[(row.currency, row.tier)] += row.total
    return [
        TierPayout(currency=currency, tier=tier, dealers=dealers[(currency, tier)], total=total)
        for (currency, tier), total in sorted(
            totals.items(), key=lambda item: _tier_order(*item[0])
        )
    ]


def _tier_order(currency: str, tier: str) -> tuple[str, int, Decimal]:
    """NO_TARGET, then "no tier", then tiers by threshold."""
    if tier == NO_TARGET:
        return currency, 0, Decimal(0)
    if tier == NO_TIER:
        return currency, 1, Decimal(0)
    try:
        return currency, 2, Decimal(tier.removeprefix("≥ "))
    except InvalidOperation:
        return currency, 3, Decimal(0)


def _top_dealers(rows: Iterable[DealerRow]) -> list[DealerRow]:
    """The highest totals of each currency (amounts of different currencies don't compare)."""
    by_currency: dict[str, list[DealerRow]] = defaultdict(list)
    for row in rows:
        by_currency[row.currency].append(row)
    top: list[DealerRow] = []
    for currency in sorted(by_currency):
        ranked = sorted(by_currency[currency], key=lambda r: (-r.total, r.dealer_id, r.period))
        top.extend(ranked[:TOP_DEALERS_PER_CURRENCY])
    return top


def _rejects_by_reason(table: pa.Table | None) -> list[ReasonCount]:
    if table is None or table.num_rows == 0:
        return []
    counts = table.group_by("reason").aggregate([([], "count_all")]).to_pylist()
    reasons = [ReasonCount(str(c["reason"]), int(c["count_all"])) for c in counts]
    return sorted(reasons, key=lambda r: (-r.rows, r.reason))


DELTA_COLUMNS = ("currency", "base_delta", "bonus_delta", "delta")
_DELTA_SUMS = DELTA_COLUMNS[1:]


def _delta_totals(dataset: pads.Dataset | None) -> list[DeltaTotals]:
    """Records and sums per currency, one record batch at a time (memory stays flat)."""
    if dataset is None:
        return []
    records: dict[str, int] = {}
    sums: dict[str, dict[str, Decimal]] = {}
    for batch in dataset.to_batches(
        columns=list(DELTA_COLUMNS), batch_readahead=1, fragment_readahead=1
    ):
        if batch.num_rows == 0:
            continue
        grouped = pa.Table.from_batches([batch]).group_by("currency")
        aggregated = grouped.aggregate([([], "count_all"), *((c, "sum") for c in _DELTA_SUMS)])
        for row in aggregated.to_pylist():
            currency = str(row["currency"])
            records[currency] = records.get(currency, 0) + int(row["count_all"])
            totals = sums.setdefault(currency, dict.fromkeys(_DELTA_SUMS, Decimal(0)))
            for column in _DELTA_SUMS:
                totals[column] += _money(row[f"{column}_sum"] or 0, f"deltas/: {column}")
    return [
        DeltaTotals(currency=currency, records=records[currency], **sums[currency])
        for currency in sorted(records)
    ]


# --------------------------------------------------------------------------- value helpers
def _objects(value: object, where: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ReportDataError(f"{where}: expected a list of objects")
    return value


def _field(item: Mapping[str, Any], name: str, where: str) -> Any:
    if item.get(name) is None:
        raise ReportDataError(f"{where}: missing field {name}")
    return item[name]


def _at(key: str, index: int, name: str) -> str:
    return f"{key}: totals[{index}].{name}"


def _money(value: object, where: str) -> Decimal:
    """An exact Decimal from a decimal string, int or Decimal; floats are refused."""
    if isinstance(value, bool | float):
        raise ReportDataError(f"{where}: {value!r} is a float, expected a decimal string")
    try:
        return Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as error:
        raise ReportDataError(f"{where}: {value!r} is not a decimal") from error


def _optional_decimal(value: object, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):  # attainment is a ratio, not money: keep its text exact
        return Decimal(repr(value))
    return _money(value, where)


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ReportDataError(f"{where}: {value!r} is not a whole number")
    try:
        return int(value)
    except ValueError as error:
        raise ReportDataError(f"{where}: {value!r} is not a whole number") from error


def _seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ReportDataError(f"{where}: {value!r} is not a number of seconds")
    try:
        return float(value)
    except ValueError as error:
        raise ReportDataError(f"{where}: {value!r} is not a number of seconds") from error


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _optional_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _describe_versions(value: object) -> tuple[str, ...]:
    """Versions as text, whatever shape the writer chose (list, market → id, list of objects)."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(f"{k}: {v}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return tuple(
            ", ".join(f"{k}={v}" for k, v in item.items())
            if isinstance(item, Mapping)
            else str(item)
            for item in value
        )
    return (str(value),)
