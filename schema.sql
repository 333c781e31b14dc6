-- tvcat schema, version 1 (PRAGMA user_version = 1)
--
-- This file is the documented format of the two SQLite databases of tvcat.
-- The section after `-- @database catalog` creates catalog.db in the
-- repository; the section after `-- @database cache` creates the bar cache.
-- Anyone can read both with plain sqlite3.
--
-- Terms
--   series      One symbol at one timeframe, e.g. `BINANCE:BTCUSDT` at `15`.
--               Timeframes use TradingView notation: minutes as integers
--               (`1`, `15`, `240`), then `1S`, `1D`, `1W`, `1M`.
--   bar         One OHLCV row of a series: `ts` (Unix seconds, UTC, bar
--               open), open, high, low, close and volume as float64. NULL
--               means the source has no value.
--   window      A fixed span of bar time of one series: 8192 bars of its
--               timeframe, aligned to multiples of that span since
--               1970-01-01T00:00Z. One-minute bars have 8192-minute windows.
--   chunk       The bars of one series in one window, stored as one object.
--               Its id is the blake3 hash of its canonical encoding.
--   patch       A chunk that holds only the new and changed bars of a window,
--               applied on top of an earlier chunk of the same window. An
--               incremental stores the growing last window of a series as a
--               patch, so it costs the bars that changed, not the window.
--   manifest    An object that lists, per series, the windows of a backup
--               with their chunk ids (and patches), bar counts and time ranges.
--   backup      One committed manifest with its type (full, incremental,
--               differential, snapshot) and its scope (symbols, timeframes).
--   chain       A backup and the backups it needs to restore: the parents of
--               an incremental back to a full, or the full of a differential.
--   event       One immutable row of the `events` table: something that
--               happened, with the time it happened.
--   projection  A table derived from the events (and the manifests they
--               name). `tvcat catalog rebuild` recreates every projection
--               from the log, so a projection contains no fact of its own.
--
-- Invariants
--   * Objects (chunks, then the manifest) must be durable (written to a
--     temporary name, fsynced, renamed, directory fsynced) before the
--     `backup.committed` event that names them commits. A crash leaves at
--     worst unreferenced objects, never a committed backup that points at a
--     missing one.
--   * An event and the projection rows it changes are written in one
--     transaction.
--   * Events are never updated or deleted; `seq` has no gaps; `time` never
--     decreases with `seq`; `prev_hash` equals the `hash` of the event before.
--
-- Object files (objects/<first two hex digits>/<id>), all integers little-endian:
--
--   offset  width  field
--   0       4      magic "TVCO"
--   4       1      format version, 1
--   5       1      object kind: 1 = chunk, 2 = manifest
--   6       1      codec: 0 = zstd over the canonical bytes,
--                         1 = zstd over the packed columns (catalog/codec.py)
--   7       1      reserved, 0
--   8       8      length of the canonical bytes
--   16      ...    payload: for codec 0 one zstd frame of the canonical bytes;
--                  for codec 1 the packed columns, which carry their own zstd frame
--
--   The id is the lowercase hex blake3 hash of the canonical bytes, so it
--   does not depend on the codec: the same bars always have the same id, and
--   `tvcat verify --read-data` proves an object by decoding and re-hashing
--   it. Chunk canonical bytes start with the u32 bar count n and n i64 `ts`.
--   Then come open, high, low, close and volume, each as a validity bitmap
--   of ceil(n/8) bytes and n f64 values. Bit i of a bitmap (least
--   significant first) is set when row i is not NULL, and NULL rows store
--   +0.0. Manifest canonical bytes: the manifest's JSON as
--   msgspec encodes catalog/manifests.py's Manifest struct (fields in
--   declaration order, no whitespace). Version 1 writes and reads codecs 0
--   and 1.
--
-- Changes
--   1  First version.

-- @database catalog

PRAGMA user_version = 1;

-- events: the append-only log. One row is one thing that happened. Written
-- only by catalog/events.py, in the same transaction as the projection rows
-- it changes. Kinds are a noun and a past participle (`backup.committed`);
-- each kind has one msgspec struct in catalog/events.py, whose JSON is the
-- payload.
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,          -- 1, 2, 3, ... with no gaps
    time TEXT NOT NULL,               -- UTC, 'YYYY-MM-DDTHH:MM:SS.ffffffZ'; never decreases with seq
    kind TEXT NOT NULL,               -- e.g. 'backup.committed', 'import.completed'
    subject TEXT NOT NULL,            -- backup id, series 'SYMBOL TIMEFRAME', file path, or ''
    payload TEXT NOT NULL,            -- JSON of the kind's struct; read it with json_extract
    prev_hash TEXT NOT NULL,          -- `hash` of event seq - 1; 64 zeros for the first event
    hash TEXT NOT NULL                -- lowercase hex blake3 of prev_hash, seq, time, kind, subject
                                      -- and payload, each followed by a newline (catalog/events.py)
);
CREATE INDEX IF NOT EXISTS events_kind_time ON events (kind, time);
CREATE INDEX IF NOT EXISTS events_subject ON events (subject);

-- The log rejects changes and deletions, and appends that break the order.
CREATE TRIGGER IF NOT EXISTS events_reject_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed');
END;

CREATE TRIGGER IF NOT EXISTS events_reject_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
END;

CREATE TRIGGER IF NOT EXISTS events_check_order BEFORE INSERT ON events
BEGIN
    SELECT RAISE(ABORT, 'event seq must follow the last event without a gap')
    WHERE NEW.seq != coalesce((SELECT max(seq) FROM events), 0) + 1;
    SELECT RAISE(ABORT, 'event time must not be earlier than the last event')
    WHERE NEW.time < coalesce((SELECT time FROM events ORDER BY seq DESC LIMIT 1), '');
    SELECT RAISE(ABORT, 'event prev_hash must equal the hash of the last event')
    WHERE NEW.prev_hash != coalesce(
        (SELECT hash FROM events ORDER BY seq DESC LIMIT 1),
        '0000000000000000000000000000000000000000000000000000000000000000'
    );
END;

-- backups (projection): one row per backup id that was started. Written by
-- `backup.started`, completed by `backup.committed` or `backup.failed`.
CREATE TABLE IF NOT EXISTS backups (
    backup_id TEXT PRIMARY KEY,       -- 'YYYYMMDDTHHMMSS.ffffffZ-TYPE-XXXX': sorts by start time
    type TEXT NOT NULL,               -- 'full', 'incremental', 'differential' or 'snapshot'
    status TEXT NOT NULL,             -- 'started', 'committed', 'failed', or 'forgotten' after retention.decided
    parent_id TEXT,                   -- backup whose state this one's manifest is a delta to, or NULL
    base_full_id TEXT,                -- the full backup at the root of the chain, or NULL for a full
    symbols TEXT,                     -- JSON array of the symbols in scope; NULL means all
    timeframes TEXT,                  -- JSON array of the timeframes in scope; NULL means all
    started_at TEXT NOT NULL,         -- event time of backup.started (UTC, as in events.time)
    committed_at TEXT,                -- event time of backup.committed, or NULL
    failed_at TEXT,                   -- event time of backup.failed, or NULL
    error TEXT,                       -- the failure message, or NULL
    manifest_id TEXT,                 -- object id of the manifest, or NULL until committed
    cache_id TEXT,                    -- identity of the cache read (cache_meta.cache_id)
    change_seq INTEGER,               -- cache change sequence covered: the next incremental reads
                                      -- windows whose change_seq is greater
    series_count INTEGER,             -- series in the restored state of this backup
    bar_count INTEGER,                -- bars in the restored state of this backup
    window_count INTEGER,             -- windows in the restored state of this backup
    windows_written INTEGER,          -- windows listed in this backup's own manifest
    chunks_written INTEGER,           -- chunk objects this backup stored that did not exist before
    bytes_written INTEGER,            -- bytes on disk of the objects this backup added, manifest included
    duration_seconds REAL             -- from backup.started to backup.committed
);

-- backup_series (projection): one row per series in the restored state of a
-- committed backup. Written by `backup.committed` from its payload.
CREATE TABLE IF NOT EXISTS backup_series (
    backup_id TEXT NOT NULL,          -- backups.backup_id
    symbol TEXT NOT NULL,             -- e.g. 'CME_MINI:ES1!'
    timeframe TEXT NOT NULL,          -- normalised TradingView notation
    bar_count INTEGER NOT NULL,       -- bars of the series in the restored state
    window_count INTEGER NOT NULL,    -- windows of the series in the restored state
    first_ts INTEGER,                 -- first bar time, Unix seconds UTC
    last_ts INTEGER,                  -- last bar time, Unix seconds UTC
    windows_written INTEGER NOT NULL, -- windows of this series in this backup's own manifest
    PRIMARY KEY (backup_id, symbol, timeframe)
) WITHOUT ROWID;

-- backup_chunks (projection): one row per chunk of each window entry of a
-- backup's own manifest (a delta lists only what changed). Written by
-- `backup.committed` from the manifest object it names; retention and
-- garbage collection read it.
CREATE TABLE IF NOT EXISTS backup_chunks (
    backup_id TEXT NOT NULL,          -- backups.backup_id
    symbol TEXT NOT NULL,             -- series symbol
    timeframe TEXT NOT NULL,          -- series timeframe
    window_start INTEGER NOT NULL,    -- window start, Unix seconds UTC
    position INTEGER NOT NULL,        -- 0 for the window's chunk, 1, 2, ... for its patches in order
    chunk_id TEXT,                    -- object id of the chunk; NULL when the window was emptied
    bar_count INTEGER NOT NULL,       -- bars in the window after its patches, 0 when emptied
    PRIMARY KEY (backup_id, symbol, timeframe, window_start, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS backup_chunks_chunk ON backup_chunks (chunk_id);

-- restores (projection): one row per restore that completed or failed.
CREATE TABLE IF NOT EXISTS restores (
    seq INTEGER PRIMARY KEY,          -- events.seq of restore.completed or restore.failed
    time TEXT NOT NULL,               -- event time
    status TEXT NOT NULL,             -- 'completed' or 'failed'
    backup_id TEXT,                   -- backup restored, or NULL when none was chosen
    requested_at TEXT,                -- the --at time as given, or NULL
    target TEXT NOT NULL,             -- destination database path
    series_count INTEGER,             -- series written
    bar_count INTEGER,                -- bars written
    error TEXT                        -- failure message, or NULL
);

-- verifications (projection): one row per `tvcat verify` run.
CREATE TABLE IF NOT EXISTS verifications (
    seq INTEGER PRIMARY KEY,          -- events.seq of verify.completed
    time TEXT NOT NULL,               -- event time
    read_data INTEGER NOT NULL,       -- 1 when every object was decoded and re-hashed
    backups_checked INTEGER NOT NULL, -- backups examined
    objects_checked INTEGER NOT NULL, -- distinct objects examined
    fault_count INTEGER NOT NULL,     -- faults found; 0 means sound
    broken_backups TEXT NOT NULL      -- JSON array of the backup ids that cannot be restored
);

-- sync_tasks (projection): one row per sync task, in the state of its
-- latest sync.* event. The event log is the queue: a task is queued until a
-- sync.started event, and a daemon or `tvcat sync` takes queued tasks in
-- priority order, then by seq.
CREATE TABLE IF NOT EXISTS sync_tasks (
    task_id TEXT PRIMARY KEY,         -- sortable id: UTC time, then a random suffix
    queued_seq INTEGER NOT NULL,      -- events.seq of sync.queued
    status TEXT NOT NULL,             -- 'queued', 'running', 'completed', 'failed', 'interrupted' or 'cancelled'
    source TEXT NOT NULL,             -- location name or source spec, e.g. 'primary' or 'csv:/data/exports'
    target TEXT NOT NULL,             -- 'cache', 'backup' or 'remote'
    symbols TEXT,                     -- JSON array, or NULL for every series of the source
    timeframes TEXT,                  -- JSON array, or NULL for every timeframe
    since INTEGER,                    -- bar-open Unix seconds to fetch from, or NULL
    priority INTEGER NOT NULL,        -- 1 high, 2 medium, 3 low
    dry_run INTEGER NOT NULL,         -- 1 when the task writes nothing
    queued_at TEXT NOT NULL,          -- time of sync.queued
    started_at TEXT,                  -- time of the latest sync.started
    finished_at TEXT,                 -- time of sync.completed, sync.failed or sync.cancelled
    attempts INTEGER NOT NULL,        -- sync.started events so far
    pid INTEGER,                      -- process id of the latest attempt, to find one killed mid-way
    bars_inserted INTEGER,            -- over all series, when completed
    bars_updated INTEGER,             -- over all series, when completed
    bars_revised INTEGER,             -- stored closed bars changed by the source, when completed
    duration_seconds REAL,            -- of the final attempt
    error TEXT                        -- failure or cancel reason, or NULL
);
CREATE INDEX IF NOT EXISTS sync_tasks_status ON sync_tasks (status, priority, queued_seq);

-- source_files (projection): files that file-based sources read into a
-- cache, so a later sync into the same cache skips a file whose bytes are
-- unchanged.
CREATE TABLE IF NOT EXISTS source_files (
    cache_id TEXT NOT NULL,           -- cache_meta.cache_id of the cache written
    source TEXT NOT NULL,             -- source spec, e.g. 'csv:/data/exports'
    path TEXT NOT NULL,               -- file path as the source read it
    file_hash TEXT NOT NULL,          -- blake3 of the file's bytes
    task_id TEXT NOT NULL,            -- sync task that read it last
    PRIMARY KEY (cache_id, source, path)
) WITHOUT ROWID;

-- retention_decisions (projection): one row per backup judged by a
-- retention.decided event: kept or forgotten, and the rule that decided.
-- A dry run appends no event, so it leaves no rows.
CREATE TABLE IF NOT EXISTS retention_decisions (
    seq INTEGER NOT NULL,             -- events.seq of retention.decided
    time TEXT NOT NULL,               -- event time
    backup_id TEXT NOT NULL,          -- the backup judged
    keep INTEGER NOT NULL,            -- 1 kept, 0 forgotten
    rule TEXT NOT NULL,               -- e.g. 'keep-daily', 'needed-by', 'no-rule', 'max-backup-files'
    bucket TEXT,                      -- bucket of a bucket rule, e.g. '2024-03-10' or '2024-W10', else NULL
    needed_by TEXT,                   -- for 'needed-by': the kept backup whose restore needs this one
    timezone TEXT NOT NULL,           -- zone the buckets were computed in
    policy TEXT NOT NULL,             -- JSON of the policy applied
    PRIMARY KEY (seq, backup_id)
) WITHOUT ROWID;

-- forgotten_backups (projection): backups that retention forgot, with
-- when and why. Their objects are deleted by the next garbage collection
-- unless a kept backup shares them.
CREATE TABLE IF NOT EXISTS forgotten_backups (
    backup_id TEXT PRIMARY KEY,       -- the backup forgotten
    seq INTEGER NOT NULL,             -- events.seq of the retention.decided that forgot it
    forgotten_at TEXT NOT NULL,       -- event time
    rule TEXT NOT NULL,               -- rule of the decision, e.g. 'no-rule' or 'max-total-size'
    timezone TEXT NOT NULL            -- zone of the policy's buckets
);

-- Views are derived: when a repository made by an older tvcat contains an
-- older definition of a view, opening it replaces the view (catalog/schema.py).

-- backup_timeline: every committed backup with the times it existed,
-- forgotten ones included. Ask which backups existed at a time T with
--   WHERE committed_at <= T AND (forgotten_at IS NULL OR forgotten_at > T).
CREATE VIEW IF NOT EXISTS backup_timeline AS
SELECT b.backup_id, b.type, b.committed_at, f.forgotten_at,
       b.parent_id, b.base_full_id, b.series_count, b.bar_count, b.bytes_written
FROM backups AS b LEFT JOIN forgotten_backups AS f ON f.backup_id = b.backup_id
WHERE b.status IN ('committed', 'forgotten');

-- why_forgotten: for every forgotten backup, when, by which rule and
-- policy, and the decision event. Ask about backup X with
--   SELECT * FROM why_forgotten WHERE backup_id = X.
CREATE VIEW IF NOT EXISTS why_forgotten AS
SELECT f.backup_id, b.type, b.committed_at, f.forgotten_at, d.rule, d.bucket, d.timezone, d.policy, f.seq
FROM forgotten_backups AS f
JOIN backups AS b ON b.backup_id = f.backup_id
JOIN retention_decisions AS d ON d.seq = f.seq AND d.backup_id = f.backup_id;

-- reclaimable_objects: objects referenced by forgotten backups and by no
-- backup that is not forgotten: what garbage collection frees, or has freed
-- already. The catalog does not record deletions or sizes; the files do.
CREATE VIEW IF NOT EXISTS reclaimable_objects AS
SELECT DISTINCT object_id FROM (
    SELECT c.chunk_id AS object_id FROM backup_chunks AS c
    JOIN backups AS b ON b.backup_id = c.backup_id WHERE b.status = 'forgotten' AND c.chunk_id IS NOT NULL
    UNION SELECT b.manifest_id FROM backups AS b WHERE b.status = 'forgotten'
)
WHERE object_id NOT IN (
    SELECT c.chunk_id FROM backup_chunks AS c
    JOIN backups AS b ON b.backup_id = c.backup_id WHERE b.status = 'committed' AND c.chunk_id IS NOT NULL
    UNION SELECT b.manifest_id FROM backups AS b WHERE b.status = 'committed'
);

-- backup_contents: what restoring a backup gives, one row per series.
CREATE VIEW IF NOT EXISTS backup_contents AS
SELECT s.backup_id, b.type, b.committed_at, s.symbol, s.timeframe, s.bar_count,
       datetime(s.first_ts, 'unixepoch') AS first_bar_utc,
       datetime(s.last_ts, 'unixepoch') AS last_bar_utc,
       s.windows_written
FROM backup_series AS s JOIN backups AS b USING (backup_id);

-- series_history: every event that touched a series, oldest first: imports
-- (with the bars inserted and changed) and the committed backups that
-- contained the series.
CREATE VIEW IF NOT EXISTS series_history AS
SELECT e.seq, e.time, e.kind,
       json_extract(e.payload, '$.symbol') AS symbol,
       json_extract(e.payload, '$.timeframe') AS timeframe,
       json_extract(e.payload, '$.path') AS detail,
       json_extract(e.payload, '$.bars_inserted') AS bars_inserted,
       json_extract(e.payload, '$.bars_updated') AS bars_updated
FROM events AS e
WHERE e.kind = 'import.completed'
UNION ALL
SELECT e.seq, e.time, e.kind, s.symbol, s.timeframe, s.backup_id AS detail,
       NULL AS bars_inserted, NULL AS bars_updated
FROM events AS e JOIN backup_series AS s ON s.backup_id = e.subject
WHERE e.kind = 'backup.committed';

-- failed_actions: every failure event with its message, newest first. Add
-- `WHERE time >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')` for the
-- last day.
CREATE VIEW IF NOT EXISTS failed_actions AS
SELECT e.seq, e.time, e.kind, e.subject, json_extract(e.payload, '$.error') AS error
FROM events AS e
WHERE e.kind LIKE '%.failed'
ORDER BY e.seq DESC;

-- backup_chain: for every committed backup, itself and each backup its
-- restore needs, with depth 0 for the backup itself. The chain behind X is
--   SELECT * FROM backup_chain WHERE backup_id = X ORDER BY depth.
CREATE VIEW IF NOT EXISTS backup_chain AS
WITH RECURSIVE chain(backup_id, member_id, depth) AS (
    SELECT backup_id, backup_id, 0 FROM backups WHERE status = 'committed'
    UNION ALL
    SELECT chain.backup_id, b.parent_id, chain.depth + 1
    FROM chain JOIN backups AS b ON b.backup_id = chain.member_id
    WHERE b.parent_id IS NOT NULL
)
SELECT chain.backup_id, chain.depth, chain.member_id, m.type AS member_type,
       m.committed_at AS member_committed_at, m.manifest_id AS member_manifest_id
FROM chain JOIN backups AS m ON m.backup_id = chain.member_id;

-- @database cache

-- bars: the bar cache. One row is one bar of one series; the key is
-- (symbol, timeframe, ts). SQLite stores -0.0 in a REAL column as the
-- integer 0, so tvcat writes +0.0 for it. Written by imports, syncs and restores, and by
-- anyone with sqlite3: the triggers below record every change.
CREATE TABLE IF NOT EXISTS bars (
    symbol TEXT NOT NULL,             -- EXCHANGE:TICKER, e.g. 'BINANCE:BTCUSDT'
    timeframe TEXT NOT NULL,          -- normalised TradingView notation
    ts INTEGER NOT NULL,              -- bar open, Unix seconds UTC
    open REAL,                        -- NULL in close-only series
    high REAL,                        -- NULL in close-only series
    low REAL,                         -- NULL in close-only series
    close REAL,                       -- last price of the bar
    volume REAL,                      -- NULL when the source has no volume
    PRIMARY KEY (symbol, timeframe, ts)
) WITHOUT ROWID;

-- cache_meta: one row describing this cache file.
CREATE TABLE IF NOT EXISTS cache_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1), -- always 1: the table has one row
    cache_id TEXT NOT NULL,           -- random identity, new for every created or restored cache:
                                      -- an incremental whose parent read another cache_id compares
                                      -- every window instead of trusting window_changes
    change_seq INTEGER NOT NULL       -- current change sequence; a backup increments it before
                                      -- reading, so later changes get a greater number
);

-- window_changes: one row per window that changed, with the change sequence
-- current at its last change. Written only by the triggers below.
CREATE TABLE IF NOT EXISTS window_changes (
    symbol TEXT NOT NULL,             -- series symbol
    timeframe TEXT NOT NULL,          -- series timeframe
    window_start INTEGER NOT NULL,    -- start of the window, Unix seconds UTC (see `window` above)
    change_seq INTEGER NOT NULL,      -- cache_meta.change_seq at the last change of the window
    PRIMARY KEY (symbol, timeframe, window_start)
) WITHOUT ROWID;

-- window_spans: the span of one window in seconds for each timeframe seen.
-- The triggers need it because SQL cannot parse a timeframe. tvcat fills it
-- before it writes bars of a new timeframe. A bar whose timeframe is missing
-- here is rejected, so that no change goes untracked.
CREATE TABLE IF NOT EXISTS window_spans (
    timeframe TEXT PRIMARY KEY,       -- normalised TradingView notation
    span INTEGER NOT NULL             -- 8192 bars of the timeframe, in seconds
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS bars_track_insert AFTER INSERT ON bars
BEGIN
    SELECT RAISE(ABORT, 'unknown timeframe: add it to window_spans first')
    WHERE NOT EXISTS (SELECT 1 FROM window_spans WHERE timeframe = NEW.timeframe);
    INSERT INTO window_changes (symbol, timeframe, window_start, change_seq)
    SELECT NEW.symbol, NEW.timeframe, NEW.ts - (NEW.ts % span + span) % span,
           (SELECT change_seq FROM cache_meta WHERE id = 1)
    FROM window_spans WHERE timeframe = NEW.timeframe
    ON CONFLICT (symbol, timeframe, window_start) DO UPDATE SET change_seq = excluded.change_seq
    WHERE change_seq != excluded.change_seq;
END;

CREATE TRIGGER IF NOT EXISTS bars_track_update AFTER UPDATE ON bars
BEGIN
    SELECT RAISE(ABORT, 'unknown timeframe: add it to window_spans first')
    WHERE NOT EXISTS (SELECT 1 FROM window_spans WHERE timeframe = NEW.timeframe);
    INSERT INTO window_changes (symbol, timeframe, window_start, change_seq)
    SELECT OLD.symbol, OLD.timeframe, OLD.ts - (OLD.ts % span + span) % span,
           (SELECT change_seq FROM cache_meta WHERE id = 1)
    FROM window_spans WHERE timeframe = OLD.timeframe
    UNION ALL
    SELECT NEW.symbol, NEW.timeframe, NEW.ts - (NEW.ts % span + span) % span,
           (SELECT change_seq FROM cache_meta WHERE id = 1)
    FROM window_spans WHERE timeframe = NEW.timeframe
    ON CONFLICT (symbol, timeframe, window_start) DO UPDATE SET change_seq = excluded.change_seq
    WHERE change_seq != excluded.change_seq;
END;

CREATE TRIGGER IF NOT EXISTS bars_track_delete AFTER DELETE ON bars
BEGIN
    INSERT INTO window_changes (symbol, timeframe, window_start, change_seq)
    SELECT OLD.symbol, OLD.timeframe, OLD.ts - (OLD.ts % span + span) % span,
           (SELECT change_seq FROM cache_meta WHERE id = 1)
    FROM window_spans WHERE timeframe = OLD.timeframe
    ON CONFLICT (symbol, timeframe, window_start) DO UPDATE SET change_seq = excluded.change_seq
    WHERE change_seq != excluded.change_seq;
END;

-- provisional_bars: the still-forming newest bar of a series, stored by a
-- sync so the cache is current, and replaced by the next sync. A change to
-- it is expected and is not a revision. At most one row per series. A
-- restored cache starts with none.
CREATE TABLE IF NOT EXISTS provisional_bars (
    symbol TEXT NOT NULL,             -- EXCHANGE:TICKER
    timeframe TEXT NOT NULL,          -- normalised TradingView notation
    ts INTEGER NOT NULL,              -- bar open of the forming bar, Unix seconds UTC
    PRIMARY KEY (symbol, timeframe)
) WITHOUT ROWID;

-- series_info: the facts a source gave about a series besides its bars, kept
-- for gap checks against the trading session.
CREATE TABLE IF NOT EXISTS series_info (
    symbol TEXT NOT NULL,             -- EXCHANGE:TICKER
    timeframe TEXT NOT NULL,          -- normalised TradingView notation
    source TEXT NOT NULL,             -- source spec that gave it, e.g. 'tradingview'
    timezone TEXT,                    -- IANA zone of the exchange, or NULL
    session TEXT,                     -- session in the exchange's zone, e.g. '0930-1600', or NULL
    holidays TEXT NOT NULL,           -- JSON array of YYYYMMDD dates without a session
    updated_at TEXT NOT NULL,         -- UTC time the source last described the series
    PRIMARY KEY (symbol, timeframe)
) WITHOUT ROWID;
