//! SQL of the `events` table.

use super::render;
use crate::config::Schema;

/// Appends a batch in one statement. `$2` is the version the stream must be
/// at, or NULL for "any": the batch lands at the current version + 1…n.
/// A stale version inserts nothing (zero rows); a concurrent writer of the
/// same version fails on the primary key (23505); a reused event id fails on
/// `events_event_id_key` (23505). Nothing partial is ever written.
const APPEND: &str = r"
WITH head AS (
    SELECT coalesce(max(version), 0) AS version
    FROM {schema}.events WHERE stream_id = $1
)
INSERT INTO {schema}.events
    (stream_id, version, event_id, event_type, schema_version, payload,
     correlation_id, causation_id, occurred_at, headers)
SELECT $1, head.version + e.n, e.event_id, e.event_type, e.schema_version, e.payload,
       e.correlation_id, e.causation_id, e.occurred_at, e.headers
FROM head,
     UNNEST($3::uuid[], $4::text[], $5::int8[], $6::bytea[], $7::uuid[], $8::uuid[],
            $9::timestamptz[], $10::jsonb[])
         WITH ORDINALITY
         AS e(event_id, event_type, schema_version, payload, correlation_id, causation_id,
              occurred_at, headers, n)
WHERE $2::int8 IS NULL OR head.version = $2::int8
ORDER BY e.n
RETURNING version, tx_id, seq
";

/// [`APPEND`] under a fence: the batch is only inserted while shard `$11`'s
/// lease is at epoch `$12` and not expired by the database's clock.
///
/// Stops a writer whose lease was taken over (a paused or partitioned old
/// owner) from appending: the lease row is locked `FOR KEY SHARE`, so a
/// takeover, which changes the epoch (a key column), either committed
/// before and the row no longer matches (re-checked after the lock), or
/// waits until this append committed, and the new owner's recovery reads
/// it. One row always: `ok` false when the fence refused (nothing
/// inserted), a NULL version when the fence passed but the version check
/// did not; a unique violation (23505) means the fence passed too.
const APPEND_FENCED: &str = r"
WITH fence AS (
    SELECT FROM {schema}.leases
    WHERE shard = $11 AND epoch = $12 AND expires_at > clock_timestamp()
    FOR KEY SHARE
), head AS (
    SELECT coalesce(max(version), 0) AS version
    FROM {schema}.events WHERE stream_id = $1
), appended AS (
    INSERT INTO {schema}.events
        (stream_id, version, event_id, event_type, schema_version, payload,
         correlation_id, causation_id, occurred_at, headers)
    SELECT $1, head.version + e.n, e.event_id, e.event_type, e.schema_version, e.payload,
           e.correlation_id, e.causation_id, e.occurred_at, e.headers
    FROM fence, head,
         UNNEST($3::uuid[], $4::text[], $5::int8[], $6::bytea[], $7::uuid[], $8::uuid[],
                $9::timestamptz[], $10::jsonb[])
             WITH ORDINALITY
             AS e(event_id, event_type, schema_version, payload, correlation_id, causation_id,
                  occurred_at, headers, n)
    WHERE $2::int8 IS NULL OR head.version = $2::int8
    ORDER BY e.n
    RETURNING version, tx_id, seq
)
SELECT appended.version, appended.tx_id, appended.seq, fenced.ok
FROM (SELECT EXISTS (SELECT FROM fence) AS ok) AS fenced
LEFT JOIN appended ON true
";

/// The stream's version and whether shard `$2`'s lease is at epoch `$3`
/// and not expired: an empty fenced append writes nothing, but a stale
/// writer still learns that it is fenced rather than a version.
const FENCED_HEAD: &str = r"
SELECT (SELECT coalesce(max(version), 0) FROM {schema}.events WHERE stream_id = $1),
       EXISTS (SELECT FROM {schema}.leases
               WHERE shard = $2 AND epoch = $3 AND expires_at > clock_timestamp())
";

/// The stream's current version (0 when it has no events).
const STREAM_VERSION: &str = r"
SELECT coalesce(max(version), 0) FROM {schema}.events WHERE stream_id = $1
";

/// Where the given event ids are stored, to tell an idempotent retry from a
/// reused id after an append failed.
const FIND_IDS: &str = r"
SELECT event_id, stream_id, version, tx_id, seq
FROM {schema}.events WHERE event_id = ANY($1::uuid[])
";

/// The columns of a recorded event but its stream id, which a stream read
/// knows already (one string fewer to decode per row).
const COLUMNS: &str = "tx_id, seq, version, event_id, event_type, schema_version, payload, \
                       correlation_id, causation_id, occurred_at, headers";

/// One stream from a version on, served by the primary key.
const READ_STREAM: &str = r"
SELECT {columns} FROM {schema}.events
WHERE stream_id = $1 AND version >= $2
ORDER BY version
";

/// One stream from a version on, only what recovery decodes: a quarter of
/// the columns, so a long recovery spends less time converting rows.
const REPLAY_STREAM: &str = r"
SELECT version, event_type, schema_version, payload FROM {schema}.events
WHERE stream_id = $1 AND version >= $2
ORDER BY version
";

/// A page of the global log after a position, served by
/// `events_position_idx`. `safe` is false for a row of a transaction at or
/// above the snapshot's xmin: an older transaction may still be running, may
/// still commit a smaller position, so the row must not be handed out yet.
const READ_ALL: &str = r"
SELECT {columns}, stream_id, tx_id < horizon.xmin AS safe
FROM {schema}.events,
     (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) AS horizon
WHERE (tx_id, seq) > ($1::xid8, $2::int8)
ORDER BY tx_id, seq
LIMIT $3
";

/// The rendered statements of one store.
#[derive(Debug)]
pub(crate) struct EventSql {
    pub(crate) append: String,
    pub(crate) append_fenced: String,
    pub(crate) fenced_head: String,
    pub(crate) stream_version: String,
    pub(crate) find_ids: String,
    pub(crate) read_stream: String,
    pub(crate) replay_stream: String,
    pub(crate) read_all: String,
}

impl EventSql {
    pub(crate) fn new(schema: &Schema) -> Self {
        let with_columns = |t: &str| render(&t.replace("{columns}", COLUMNS), schema);
        Self {
            append: render(APPEND, schema),
            append_fenced: render(APPEND_FENCED, schema),
            fenced_head: render(FENCED_HEAD, schema),
            stream_version: render(STREAM_VERSION, schema),
            find_ids: render(FIND_IDS, schema),
            read_stream: with_columns(READ_STREAM),
            replay_stream: render(REPLAY_STREAM, schema),
            read_all: with_columns(READ_ALL),
        }
    }
}
