"""`tvcat report` over a real history of syncs, backups and a failure."""

import json
import shutil


def test_report_counts_history(cli, tradingview_files, tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    silver = next(path for path in tradingview_files if path.name == "TVC_SILVER, 1W.csv")
    shutil.copy2(silver, exports / silver.name)
    broken = tmp_path / "broken"
    broken.mkdir()
    lines = silver.read_text(encoding="utf-8").splitlines()
    time_text, close, _volume = lines[5].split(",")
    lines[5] = f"{time_text},{close},-5"
    (broken / silver.name).write_text("\n".join(lines), encoding="utf-8")

    assert cli("sync", "--source", f"csv:{exports}", "--target", "cache").returncode == 0
    assert cli("sync", "--source", f"csv:{broken}", "--target", "cache", "--since", "2018-01-01").returncode == 3
    assert cli("backup", "--type", "full").returncode == 0
    assert cli("backup", "--type", "incremental").returncode == 0

    report = json.loads(cli("report", "--json").stdout)
    empty = json.loads(cli("report", "--hours", "0.000001", "--json").stdout)
    table = cli("report")

    assert report["syncs_started"] == 2
    assert report["syncs_completed"] == 1
    assert report["syncs_failed"] == 1
    assert report["sync_success_rate"] == 0.5
    assert report["sync_average_seconds"] > 0
    assert report["backups_created"] == 2
    assert report["backups_by_type"] == {"full": 1, "incremental": 1}
    assert report["errors_by_kind"] == {"sync.failed: InvalidSourceData": 1}
    assert report["tasks_by_direction"] == {"primary → cache": 2}
    assert empty["syncs_started"] == 0
    assert empty["sync_success_rate"] is None
    assert table.returncode == 0, table.stderr
    assert "sync success rate" in table.stdout
