"""The CLI: help for every command, and exit codes that leave data untouched on bad input."""

import json
import os
from pathlib import Path

import click
import pytest

from tvcat.cli.app import cli as tvcat_group
from tvcat.errors import EXIT_CONFIRMATION, EXIT_INVALID_INPUT, EXIT_NOT_FOUND

COMMANDS = [
    [], ["import"], ["backup"], ["list"], ["list", "backups"], ["restore"], ["verify"], ["status"],
    ["catalog"], ["catalog", "rebuild"], ["audit"], ["audit", "verify"], ["config"], ["config", "validate"],
    ["config", "show"], ["quickstart"], ["sync"], ["gaps"], ["list", "tasks"], ["tasks"], ["tasks", "cancel"],
    ["prune"], ["forget"], ["report"], ["test"], ["daemon"], ["tasks", "run"], ["cat"],
    ["replicate"], ["catalog", "recover"],
]
EXPORT_NAME = "CRYPTO_SOLUSD, 1D.csv"


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: "-".join(command) or "tvcat")
def test_help_every_command(cli, repo_path, cache_path, command, flag):
    result = cli(*command, flag)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(" ".join(["Usage: tvcat", *command]))
    assert "Options:" in result.stdout
    assert result.stderr == ""
    assert not repo_path.exists()
    assert not cache_path.exists()


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Return the path of every command and group under `group`, itself included."""
    paths = {prefix}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths |= command_paths(command, prefix + (name,))
        else:
            paths.add(prefix + (name,))
    return paths


def test_help_cases_cover_every_command():
    assert command_paths(tvcat_group) == {tuple(command) for command in COMMANDS}


@pytest.fixture
def imported(cli, data_dir, bar_rows, cache_path) -> list[tuple]:
    """Import one real export through the CLI and return the cache rows after it."""
    result = cli("import", data_dir / "tradingview" / EXPORT_NAME)
    assert result.returncode == 0, result.stderr
    return bar_rows(cache_path)


def corrupt_copy(source: Path, folder: Path, line_number: int, value: str) -> Path:
    """Copy an export with the close cell of one line (1-based, header is 1) replaced by `value`."""
    lines = source.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    close_column = header.index("close")
    cells = lines[line_number - 1].split(",")
    cells[close_column] = value
    lines[line_number - 1] = ",".join(cells)
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / source.name
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return copy


@pytest.mark.parametrize("value", ["12.5x", "inf", "1e400", "--1"])
def test_import_corrupted_cell_exit_code(tmp_path, cli, data_dir, imported, bar_rows, cache_path, value):
    source = data_dir / "tradingview" / EXPORT_NAME
    # Raise every other close so that a partial write would show in the cache.
    lines = source.read_text(encoding="utf-8").splitlines()
    changed = [lines[0]] + [line.replace(",", ",9", 1) if index % 2 else line for index, line in enumerate(lines[1:])]
    changed_source = tmp_path / "changed" / EXPORT_NAME
    changed_source.parent.mkdir()
    changed_source.write_text("\n".join(changed) + "\n", encoding="utf-8")
    bad = corrupt_copy(changed_source, tmp_path / "bad", 150, value)

    result = cli("import", bad)

    assert result.returncode == EXIT_INVALID_INPUT, result.stderr
    assert "line 150" in result.stderr
    assert "Traceback" not in result.stderr
    assert bar_rows(cache_path) == imported


def test_import_one_bad_file_writes_none(tmp_path, cli, data_dir, imported, bar_rows, cache_path):
    """Every file is checked before any is written, so a good file before a bad one is not imported."""
    good = data_dir / "tradingview" / "TVC_SILVER, 1W.csv"
    bad = corrupt_copy(data_dir / "tradingview" / EXPORT_NAME, tmp_path / "bad", 2, "abc")

    result = cli("import", good, bad)

    assert result.returncode == EXIT_INVALID_INPUT, result.stderr
    assert bar_rows(cache_path) == imported


def test_import_missing_file_exit_code(tmp_path, cli, imported, bar_rows, cache_path):
    result = cli("import", tmp_path / "BINANCE_NOSUCH, 60.csv")

    assert result.returncode == EXIT_NOT_FOUND, result.stderr
    assert bar_rows(cache_path) == imported


@pytest.fixture
def backup_ids(cli, imported) -> list[str]:
    """Take two full backups through the CLI and return their ids."""
    ids = []
    for _ in range(2):
        result = cli("backup", "--type", "full", "--json")
        assert result.returncode == 0, result.stderr
        ids.append(json.loads(result.stdout)["backup_id"])
    return ids


def test_restore_existing_target_needs_force(tmp_path, cli, backup_ids):
    target = tmp_path / "existing.db"
    first = cli("restore", backup_ids[0], "--target-db", target)
    assert first.returncode == 0, first.stderr
    before = target.read_bytes()
    modified = os.stat(target).st_mtime_ns

    result = cli("restore", backup_ids[1], "--target-db", target)

    assert result.returncode == EXIT_CONFIRMATION, result.stderr
    assert "--force" in result.stderr
    assert target.read_bytes() == before
    assert os.stat(target).st_mtime_ns == modified


def test_restore_existing_cache_needs_force(cli, backup_ids, cache_path, bar_rows, imported):
    result = cli("restore", backup_ids[0])

    assert result.returncode == EXIT_CONFIRMATION, result.stderr
    assert bar_rows(cache_path) == imported


def test_restore_force_replaces_target(tmp_path, cli, backup_ids, bar_rows, imported):
    target = tmp_path / "existing.db"
    target.write_bytes(b"not a database, replaced by --force")

    result = cli("restore", backup_ids[1], "--target-db", target, "--force")

    assert result.returncode == 0, result.stderr
    assert bar_rows(target) == imported


@pytest.mark.parametrize("command", [["restore", "{id}", "--target-db", "{target}"], ["verify", "{id}"]],
                         ids=["restore", "verify"])
def test_unknown_backup_id_exit_code(tmp_path, cli, backup_ids, command):
    target = tmp_path / "never.db"
    arguments = [part.format(id="19990101T000000", target=target) for part in command]

    result = cli(*arguments)

    assert result.returncode == EXIT_NOT_FOUND, result.stderr
    assert "19990101T000000" in result.stderr
    assert not target.exists()


def test_ambiguous_backup_prefix_exit_code(tmp_path, cli, backup_ids):
    prefix = os.path.commonprefix(backup_ids)
    assert prefix != backup_ids[0]
    target = tmp_path / "never.db"

    result = cli("restore", prefix, "--target-db", target)

    assert result.returncode == EXIT_NOT_FOUND, result.stderr
    assert "ambiguous" in result.stderr
    for backup_id in backup_ids:
        assert backup_id in result.stderr
    assert not target.exists()


def test_unique_backup_prefix_restores(tmp_path, cli, backup_ids, bar_rows, imported):
    prefix = os.path.commonprefix(backup_ids)
    unique = backup_ids[1][: len(prefix) + 1]
    target = tmp_path / "prefix.db"

    result = cli("restore", unique, "--target-db", target)

    assert result.returncode == 0, result.stderr
    assert backup_ids[1] in result.stdout
    assert bar_rows(target) == imported


@pytest.mark.parametrize("arguments", [
    ["restore"],
    ["restore", "20", "--at", "2024-01-01T00:00:00Z"],
    ["backup", "--type", "full", "--symbols", "NOCOLON"],
    ["backup", "--type", "full", "--timeframes", "7X"],
], ids=["restore-neither", "restore-both", "invalid-symbol", "invalid-timeframe"])
def test_invalid_options_exit_code(cli, backup_ids, arguments):
    result = cli(*arguments)

    assert result.returncode == EXIT_INVALID_INPUT, result.stderr
    assert result.stderr.startswith("tvcat: error: ")


def test_commands_without_repository_exit_code(cli):
    for arguments in (["list", "backups"], ["verify"], ["audit", "verify"], ["restore", "x"]):
        result = cli(*arguments)
        assert result.returncode == EXIT_NOT_FOUND, arguments
        assert "no repository at" in result.stderr, arguments


def listed_backup_ids(cli) -> list[str]:
    result = cli("list", "backups", "--json")
    assert result.returncode == 0, result.stderr
    return [backup["backup_id"] for backup in json.loads(result.stdout)]


@pytest.mark.parametrize(("option", "value"), [
    ("--symbols", ""),
    ("--symbols", ",,"),
    ("--timeframes", " , "),
], ids=["symbols-empty", "symbols-commas", "timeframes-blank"])
def test_backup_empty_list_rejected(cli, backup_ids, option, value):
    result = cli("backup", "--type", "full", option, value)

    assert result.returncode == EXIT_INVALID_INPUT, result.stderr
    assert result.stderr == (
        f"tvcat: error: the list given to {option} is empty: pass at least one comma-separated value, "
        f"or leave out {option} to select all\n"
    )
    assert listed_backup_ids(cli) == backup_ids


def test_restore_empty_list_rejected(tmp_path, cli, backup_ids):
    target = tmp_path / "never.db"

    result = cli("restore", backup_ids[0], "--target-db", target, "--symbols", "")

    assert result.returncode == EXIT_INVALID_INPUT, result.stderr
    assert "the list given to --symbols is empty" in result.stderr
    assert not target.exists()


def test_split_list_given_and_not_given():
    from tvcat.cli.output import split_list
    from tvcat.errors import InvalidOption

    assert split_list((), "--symbols") is None
    assert split_list(("A:B, C:D", "E:F,,"), "--symbols") == ["A:B", "C:D", "E:F"]
    with pytest.raises(InvalidOption) as caught:
        split_list(("", ","), "--timeframes")
    assert "--timeframes" in str(caught.value)


def test_import_huge_timeframe_exit_code(cli, data_dir):
    result = cli("import", data_dir / "tradingview" / EXPORT_NAME, "--timeframe", "100000000000000000000000")

    assert result.returncode == EXIT_INVALID_INPUT, result.stderr
    assert result.stderr.startswith("tvcat: error: invalid timeframe '100000000000000000000000'")
    assert "Traceback" not in result.stderr


def test_import_undecodable_file_name(tmp_path, cli, data_dir):
    folder = tmp_path / os.fsdecode(b"exports\xfe")
    folder.mkdir()
    export = folder / EXPORT_NAME
    export.write_bytes((data_dir / "tradingview" / EXPORT_NAME).read_bytes())

    result = cli("import", export, "--json")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [report] = json.loads(result.stdout)
    assert report["path"] == str(tmp_path / "exports\ufffd" / EXPORT_NAME)
    assert report["symbol"] == "CRYPTO:SOLUSD"
