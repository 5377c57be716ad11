"""`settle run`'s status line: the state being run, and the Map iterations that finished."""

from __future__ import annotations

from settlement.cli.workflow import run_progress
from state_machine.runner import StateEvent


def test_the_status_counts_finished_publish_parts() -> None:
    # GIVEN the status line of a run
    shown: list[str] = []
    show = run_progress(shown.append)
    # WHEN the publish Map starts and three of its iterations run, two of them finishing
    show(StateEvent("entered", "Publish delta parts"))
    for index in range(3):
        show(StateEvent("entered", "Publish one part", f"Publish delta parts[{index}]"))
    show(StateEvent("succeeded", "Publish one part", "Publish delta parts[2]"))
    show(StateEvent("succeeded", "Publish one part", "Publish delta parts[0]"))
    # THEN the line names the state, then how many parts are done
    assert shown == [
        "Publish delta parts…",
        "Publish delta parts… 1 done",
        "Publish delta parts… 2 done",
    ]
