//! SQL of the `snapshots` table.

use super::render;
use crate::config::Schema;

/// Saves a snapshot and applies retention in one statement: the newest
/// `$5` versions among the stored ones and the new one are kept (all when
/// `$5` is NULL); the others are deleted, and the new snapshot is only
/// written if it is among them.
const SAVE: &str = r"
WITH keep AS (
    SELECT version FROM (
        SELECT version FROM {schema}.snapshots WHERE stream_id = $1
        UNION SELECT $2::int8
    ) AS candidates
    ORDER BY version DESC
    LIMIT $5::int8
), pruned AS (
    DELETE FROM {schema}.snapshots
    WHERE stream_id = $1 AND version NOT IN (SELECT version FROM keep)
)
INSERT INTO {schema}.snapshots (stream_id, version, payload, taken_at)
SELECT $1, $2, $3, $4 WHERE $2 IN (SELECT version FROM keep)
ON CONFLICT (stream_id, version)
    DO UPDATE SET payload = excluded.payload, taken_at = excluded.taken_at
";

/// [`SAVE`] under a fence: the snapshot is written and older ones pruned
/// only while shard `$6`'s lease is at epoch `$7` and not expired.
///
/// Stops a writer whose lease was taken over from replacing or pruning the
/// new owner's snapshots (the row lock makes a takeover wait for it, as in
/// the fenced append). One row: `ok` false when the fence refused.
const SAVE_FENCED: &str = r"
WITH fence AS (
    SELECT FROM {schema}.leases
    WHERE shard = $6 AND epoch = $7 AND expires_at > clock_timestamp()
    FOR KEY SHARE
), keep AS (
    SELECT version FROM (
        SELECT version FROM {schema}.snapshots WHERE stream_id = $1
        UNION SELECT $2::int8
    ) AS candidates
    ORDER BY version DESC
    LIMIT $5::int8
), pruned AS (
    DELETE FROM {schema}.snapshots
    WHERE stream_id = $1 AND version NOT IN (SELECT version FROM keep)
      AND EXISTS (SELECT FROM fence)
), saved AS (
    INSERT INTO {schema}.snapshots (stream_id, version, payload, taken_at)
    SELECT $1, $2, $3, $4 FROM fence WHERE $2 IN (SELECT version FROM keep)
    ON CONFLICT (stream_id, version)
        DO UPDATE SET payload = excluded.payload, taken_at = excluded.taken_at
)
SELECT EXISTS (SELECT FROM fence)
";

/// Serialises the saves of one stream's snapshots until the transaction
/// ends, so each save's retention sees the snapshots of the one before.
const LOCK: &str = r"
SELECT pg_advisory_xact_lock(hashtextextended('nexus-store-pg snapshots {schema} ' || $1, 0))
";

const LOAD_LATEST: &str = r"
SELECT version, payload, taken_at FROM {schema}.snapshots
WHERE stream_id = $1 ORDER BY version DESC LIMIT 1
";

const VERSIONS: &str = r"
SELECT version FROM {schema}.snapshots WHERE stream_id = $1 ORDER BY version
";

/// The rendered statements of one store.
#[derive(Debug)]
pub(crate) struct SnapshotSql {
    pub(crate) save: String,
    pub(crate) save_fenced: String,
    pub(crate) lock: String,
    pub(crate) load_latest: String,
    pub(crate) versions: String,
}

impl SnapshotSql {
    pub(crate) fn new(schema: &Schema) -> Self {
        Self {
            save: render(SAVE, schema),
            save_fenced: render(SAVE_FENCED, schema),
            lock: render(LOCK, schema),
            load_latest: render(LOAD_LATEST, schema),
            versions: render(VERSIONS, schema),
        }
    }
}
