"""Shared fixtures live in tests/fixtures; each is a plugin so topics stay apart."""

pytest_plugins = [
    "tests.fixtures.spark",
    "tests.fixtures.coreview",
    "tests.fixtures.postgres",
    "tests.fixtures.workflow",
    "tests.fixtures.generator",
]
