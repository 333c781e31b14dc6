"""`tvcat config validate` on the sample file and on a broken one."""

from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "tvcat.yaml"


def test_config_validate_sample(cli):
    result = cli("config", "validate", SAMPLE)

    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout


def test_config_validate_reports_key(cli, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("sync_config:\n  sync_intervall: 300\n", encoding="utf-8")

    result = cli("config", "validate", broken)

    assert result.returncode == 3
    assert "line 2" in result.stderr
    assert "did you mean sync_config.sync_interval?" in result.stderr


def test_config_validate_json_defaults(cli, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\n", encoding="utf-8")

    result = cli("config", "validate", empty, "--json")

    assert result.returncode == 0, result.stderr
    assert '"metrics_host": "127.0.0.1"' in result.stdout
