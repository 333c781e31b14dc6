"""README and schema.sql agree with the code: every documented query runs, every object is documented."""

import re
import sqlite3
from pathlib import Path

import click
import pytest

from tvcat.catalog.schema import SCHEMA_PATH, schema_sections
from tvcat.cli.app import cli
from tvcat.engine.quickstart import run_quickstart

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _sql_blocks(text: str) -> list[str]:
    return re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL)


@pytest.fixture(scope="module")
def demo_catalog(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    run_quickstart(directory, lambda message: None)
    return directory / "repo" / "catalog.db"


def test_readme_has_audit_queries():
    assert len(_sql_blocks(README.read_text(encoding="utf-8"))) >= 5


@pytest.mark.parametrize("query", _sql_blocks(README.read_text(encoding="utf-8")))
def test_readme_query_returns_rows(demo_catalog, query):
    connection = sqlite3.connect(f"file:{demo_catalog}?mode=ro", uri=True)
    try:
        rows = connection.execute(query).fetchall()
    finally:
        connection.close()
    if "failed_actions" in query:
        assert isinstance(rows, list)
    else:
        assert rows, f"no rows from:\n{query}"


def _defined_objects(sql: str) -> list[tuple[str, str, str]]:
    """Return (kind, name, the text before the definition) for every CREATE TABLE/VIEW."""
    found = []
    for match in re.finditer(r"CREATE (TABLE|VIEW) IF NOT EXISTS (\w+)", sql):
        found.append((match[1], match[2], sql[:match.start()]))
    return found


@pytest.mark.parametrize("section", ["catalog", "cache"])
def test_schema_objects_have_comments(section):
    for kind, name, before in _defined_objects(schema_sections()[section]):
        last_lines = before.rstrip("\n").splitlines()[-1]
        assert last_lines.startswith("--"), f"{kind} {name} has no comment above it"


@pytest.mark.parametrize("section", ["catalog", "cache"])
def test_schema_columns_have_comments(section):
    sql = schema_sections()[section]
    for body in re.findall(r"CREATE TABLE IF NOT EXISTS \w+ \((.*?)\n\)", sql, flags=re.DOTALL):
        for line in body.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith(("--", "PRIMARY KEY")):
                continue
            if re.match(r"^\w+ (INTEGER|TEXT|REAL)", stripped):
                assert "--" in stripped, f"column without comment in {SCHEMA_PATH.name}: {stripped}"


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield prefix + name, command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + name + " ")


@pytest.mark.parametrize("name,command", list(_commands(cli)))
def test_command_has_help(name, command):
    assert command.help, f"tvcat {name} has no help"
    for parameter in command.params:
        if isinstance(parameter, click.Option) and not parameter.hidden:
            assert parameter.help, f"tvcat {name} {parameter.opts[0]} has no help"
