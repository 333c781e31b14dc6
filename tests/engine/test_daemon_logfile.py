"""The daemon's log file: one line per event, rotated by size."""

from tvcat.catalog import events as ev
from tvcat.engine.daemon.logfile import close_log_file, format_line, open_log_file


def test_line_names_event_and_figures(repository):
    record = repository.record(ev.BackupFailed(backup_id="20261205T020000.000000Z-full-0001", type="full",
                                               error="disk full: no space left"))

    line = format_line(record)

    assert line.startswith(f"{record.seq} {record.time} backup.failed 20261205T020000.000000Z-full-0001 ")
    assert "type=full" in line
    assert 'error="disk full: no space left"' in line
    assert "\n" not in line


def test_long_error_is_cut_to_one_line(repository):
    record = repository.record(ev.JobFinished(job="backup:nightly", scheduled_for="2026-12-05T02:00:00.000000Z",
                                              ok=False, duration_seconds=1.25, error="line one\nline two " * 100))

    line = format_line(record)

    assert "\n" not in line
    assert len(line) < 600
    assert "ok=false" in line
    assert "duration_seconds=1.25" in line


def test_file_rotates_at_max_bytes(tmp_path, repository):
    path = tmp_path / "logs" / "tvcat.log"
    logger = open_log_file(path, max_bytes=400, backup_count=2)
    try:
        for number in range(20):
            record = repository.record(ev.JobFired(job=f"backup:n{number}", scheduled_for="2026-12-05T02:00:00.000000Z"))
            logger.info(format_line(record))
    finally:
        close_log_file(logger)

    kept = sorted(path.parent.iterdir())
    assert [file.name for file in kept] == ["tvcat.log", "tvcat.log.1", "tvcat.log.2"]
    assert all(file.stat().st_size <= 400 for file in kept)
    assert "backup:n19" in path.read_text(encoding="utf-8")


def test_verify_line_counts_faults(repository):
    fault = ev.VerifyFault(problem="missing", object_id="ab" * 32, detail="gone", backups=["b1"], series=["X:Y 60"])
    clean = repository.record(ev.VerifyCompleted(read_data=True, backups_checked=1, objects_checked=3, faults=[],
                                                 broken_backups=[], newest_sound_backup="b1"))
    broken = repository.record(ev.VerifyCompleted(read_data=True, backups_checked=1, objects_checked=3,
                                                  faults=[fault], broken_backups=["b1"], newest_sound_backup=None))

    assert "faults=0" in format_line(clean)
    assert "faults=1" in format_line(broken)
    assert "broken_backups=1" in format_line(broken)
