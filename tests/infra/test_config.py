"""InfraConfig reads CDK context, strings (from `-c`) as well as JSON values (from cdk.json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from aws_cdk import App

from infra.config import PROJECT_ROOT, ContextError, InfraConfig, SourcePaths

REQUIRED = {"external_account_id": "210987654321", "coreview_url": "https://cv.example.com"}


def config_from(context: Mapping[str, object]) -> InfraConfig:
    return InfraConfig.from_context(App(context=dict(context)).node)


def test_defaults_apply_when_only_required_values_are_given() -> None:
    # GIVEN only the required context WHEN read THEN the documented defaults fill the rest
    config = config_from(REQUIRED)
    assert config.external_account_id == "210987654321"
    assert (config.glue_worker_type, config.glue_number_of_workers) == ("G.1X", 10)
    assert config.nat_gateways == 0
    assert config.database_multi_az is True


def test_string_values_from_the_command_line_are_converted() -> None:
    # GIVEN `-c` style string values WHEN read THEN numbers and booleans are typed
    config = config_from(
        {
            **REQUIRED,
            "glue_number_of_workers": "4",
            "nat_gateways": "1",
            "database_multi_az": "false",
        }
    )
    assert (config.glue_number_of_workers, config.nat_gateways) == (4, 1)
    assert config.database_multi_az is False


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"external_account_id": None}, "external_account_id is required"),
        ({"external_account_id": "12345"}, "external_account_id"),
        ({"coreview_url": "ftp://x"}, "coreview_url"),
        ({"glue_number_of_workers": "many"}, "glue_number_of_workers"),
        ({"glue_number_of_workers": 1}, "glue_number_of_workers"),
        ({"database_multi_az": "maybe"}, "database_multi_az"),
    ],
)
def test_bad_context_names_the_key(override: dict[str, object], named: str) -> None:
    # GIVEN one bad or missing value WHEN read THEN the error names that context key
    context = {key: value for key, value in {**REQUIRED, **override}.items() if value is not None}
    with pytest.raises(ContextError, match=named):
        config_from(context)


def test_cdk_json_context_is_a_valid_configuration() -> None:
    # GIVEN the context shipped in cdk.json WHEN read THEN it validates
    context = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    assert config_from(context).coreview_url.startswith("https://")


def test_project_sources_point_at_the_real_definition_and_script(tmp_path: Path) -> None:
    # GIVEN a project root WHEN its sources are derived THEN they are the contract paths
    sources = SourcePaths.of_project(tmp_path)
    assert sources.asl == tmp_path / "state_machine" / "settlement.asl.json"
    assert sources.glue_script == tmp_path / "glue_jobs" / "calculate_commissions.py"
    # AND a missing one is reported by path before any synthesis
    with pytest.raises(FileNotFoundError, match=r"settlement\.asl\.json"):
        sources.check_exist()
