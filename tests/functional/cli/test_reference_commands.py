"""`settle upload` and `settle versions` through the real CLI on a fresh workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from settlement.cli.app import app

MATRIX = (
    "market,series,channel,component,min_attainment,rate,amount_per_unit,currency,valid_from,valid_to\n"
    "DE,3,PRIVATE,BASE,0,0.04,0,EUR,2026-01-01,\n"
    "DE,*,*,BASE,0,0.03,100,EUR,2026-01-01,\n"
    "DE,*,*,BONUS,1.0,0.01,0,EUR,2026-01-01,\n"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("SETTLE_HOME", "SETTLE_DATA_STORE", "SETTLE_DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path / "home"


def settle(home: Path, *arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [*arguments, "--home", str(home)])
    return result.exit_code, result.stdout, result.stderr


def test_upload_prints_the_new_version_and_versions_lists_it(home: Path, tmp_path: Path) -> None:
    # GIVEN a valid matrix file
    matrix = tmp_path / "matrix.csv"
    matrix.write_text(MATRIX)
    # WHEN it is uploaded twice and the versions are listed
    code, out, _ = settle(home, "upload", str(matrix), "--kind", "matrix")
    again_code, again_out, _ = settle(home, "upload", str(matrix), "--kind", "matrix")
    list_code, listing, _ = settle(home, "versions", "--json")
    # THEN the first upload made a version of 3 rows, the second re-used it
    assert (code, again_code, list_code) == (0, 0, 0)
    assert "3 rows loaded" in out
    assert "already loaded" in again_out
    versions = json.loads(listing)
    assert [(v["kind"], v["row_count"], v["markets"]) for v in versions] == [("matrix", 3, ["DE"])]


def test_a_bad_upload_lists_every_error_and_exits_non_zero(home: Path, tmp_path: Path) -> None:
    # GIVEN a matrix with a rate above 1 on row 2 and a BASE tier on row 3
    bad = tmp_path / "bad.csv"
    bad.write_text(
        MATRIX.splitlines()[0] + "\n"
        "DE,3,PRIVATE,BASE,0,1.5,0,EUR,2026-01-01,\n"
        "DE,*,*,BASE,0.5,0.03,0,EUR,2026-01-01,\n"
    )
    # WHEN it is uploaded
    code, out, err = settle(home, "upload", str(bad), "--kind", "matrix")
    # THEN both errors are listed with their rows on stdout, one line on stderr says the file
    # was rejected, and nothing was loaded
    assert code != 0
    assert "rate 1.5 is outside [0, 1]" in " ".join(out.split())
    assert "min_attainment" in out
    assert err == "error: bad.csv rejected with 2 error(s); nothing was loaded\n"
    assert json.loads(settle(home, "versions", "--json")[1]) == []


def test_uploading_a_replaced_file_again_warns_that_it_stays_replaced(
    home: Path, tmp_path: Path
) -> None:
    # GIVEN matrix A, then a corrected matrix B for the same market
    first, corrected = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(MATRIX)
    corrected.write_text(MATRIX.replace("0.04", "0.05"))
    settle(home, "upload", str(first), "--kind", "matrix")
    settle(home, "upload", str(corrected), "--kind", "matrix")
    # WHEN A is uploaded again
    code, out, err = settle(home, "upload", str(first), "--kind", "matrix")
    # THEN nothing changes, and the warning says B stays active and how to bring A's values back
    assert code == 0
    assert "already loaded" not in out
    assert err.startswith(
        "warning: this file is matrix version 1; version 2, uploaded since, replaced its rows in "
        "the markets both contain and stays active"
    )
    assert "upload them as a changed file" in err


def test_uploading_replaced_targets_again_says_only_shared_targets_were_replaced(
    home: Path, tmp_path: Path
) -> None:
    # GIVEN targets A (D1, D2), then targets B (D1 only)
    first, later = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("market,dealer_id,period,target_units\nDE,D1,2026-10,4\nDE,D2,2026-10,5\n")
    later.write_text("market,dealer_id,period,target_units\nDE,D1,2026-10,6\n")
    settle(home, "upload", str(first), "--kind", "targets")
    settle(home, "upload", str(later), "--kind", "targets")
    # WHEN A is uploaded again THEN the warning does not claim all of A was replaced
    code, _, err = settle(home, "upload", str(first), "--kind", "targets")
    assert code == 0
    assert "replaced its targets where both name the same dealer and period" in err


def test_values_that_look_like_markup_are_shown_as_written(home: Path, tmp_path: Path) -> None:
    # GIVEN a matrix file (its name in brackets too) whose rate and series look like styling
    bad = tmp_path / "[bold]matrix.csv"
    bad.write_text(
        MATRIX.splitlines()[0] + "\n"
        "DE,3,PRIVATE,BASE,0,[/x],0,EUR,2026-01-01,\n"
        "DE,[red]X5,PRIVATE,BASE,0,oops,0,EUR,2026-01-01,\n"
    )
    # WHEN it is uploaded
    code, out, err = settle(home, "upload", str(bad), "--kind", "matrix")
    # THEN the error table shows the values exactly as the file has them, nothing crashed
    assert code == 1
    table = " ".join(out.split())
    assert "[bold]matrix.csv: rejected" in table
    assert "'[/x]'" in table
    assert "MarkupError" not in out + err
    assert err == "error: [bold]matrix.csv rejected with 2 error(s); nothing was loaded\n"
