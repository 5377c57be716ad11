"""The HTML report of a settlement run (``settle report RUN_ID``)."""

from __future__ import annotations

import uuid
from pathlib import Path

from settlement.adapters.storage import DataStore
from settlement.reporting.loader import ReportDataError, RunNotFoundError, load_report_model
from settlement.reporting.model import ReportModel
from settlement.reporting.render import render_report

__all__ = [
    "ReportDataError",
    "ReportModel",
    "RunNotFoundError",
    "load_report_model",
    "render_report",
    "write_report",
]


def write_report(store: DataStore, run_id: str, out: Path) -> Path:
    """Load, render and write the report of ``run_id`` to ``out`` in one piece.

    Parameters
    ----------
    store
        The data store holding ``runs/<run_id>/``.
    run_id
        The run to report on.
    out
        The HTML file to write (parent directories are created), or an existing directory
        to write ``<run_id>.html`` in.

    Returns
    -------
    Path
        The absolute path written.

    Raises
    ------
    RunNotFoundError, ReportDataError
        Before anything is written.
    OSError
        The file cannot be written (nothing is left behind).
    """
    html = render_report(load_report_model(store, run_id))
    target = out.expanduser().resolve()
    if target.is_dir():
        target = target / f"{run_id}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        temp.write_text(html, encoding="utf-8")
        temp.replace(target)
    finally:
        temp.unlink(missing_ok=True)
    return target
