//! SQL of the `events` and `streams` tables.
//!
//! An append is one statement: a conditional write of the stream's head in
//! `streams` (the `head` CTE) chained to the insert of the events at the
//! versions after the old head. The head row is the only point two writers
//! of one stream meet: a second `Any` writer waits for the first one's row
//! lock and then moves the head on from the new version, a stale `Exact`
//! writer matches no row and inserts nothing, so no event insert ever fails
//! on `(stream_id, version)`. A reused event id still fails on
//! `events_event_id_key` (23505), which rolls the head back with it.
//!
//! Parameters of every append statement: `$1` stream id, `$2` the expected
//! version (NULL for any), `$3`–`$11` the batch's columns as arrays (ids,
//! types, schema versions, JSON payloads, byte payloads, correlation ids,
//! causation ids, timestamps, headers); a fenced one adds `$12` shard and
//! `$13` epoch.

use super::append_group::GroupShape;
use super::render;
use crate::config::Schema;

/// The head of a stream that must not exist yet: inserted, or no row.
const HEAD_NEW: &str = r"
    INSERT INTO {schema}.streams (stream_id, aggregate_type, version)
    SELECT $1, split_part($1, '-', 1), cardinality($3::uuid[]) {from_fence}
    WHERE $2::int8 = 0
    ON CONFLICT (stream_id) DO NOTHING
    RETURNING 0::int8 AS base
";

/// The head of a stream that must be at `$2` (> 0) and not archived: moved
/// on, or no row.
const HEAD_EXACT: &str = r"
    UPDATE {schema}.streams
    SET version = version + cardinality($3::uuid[]), updated_at = now()
    WHERE stream_id = $1 AND version = $2::int8 AND NOT archived {and_fence}
    RETURNING version - cardinality($3::uuid[]) AS base
";

/// The head of any stream that is not archived: created or moved on, or no
/// row. Never fails under concurrency: `ON CONFLICT DO UPDATE` waits for a
/// concurrent writer of the row and then updates the version it committed.
const HEAD_ANY: &str = r"
    INSERT INTO {schema}.streams AS s (stream_id, aggregate_type, version)
    SELECT $1, split_part($1, '-', 1), cardinality($3::uuid[]) {from_fence}
    WHERE $2::int8 IS NULL
    ON CONFLICT (stream_id) DO UPDATE
        SET version = s.version + excluded.version, updated_at = now()
        WHERE NOT s.archived
    RETURNING s.version - cardinality($3::uuid[]) AS base
";

/// The events after the head, in the current log epoch: the `epoch`
/// column's default, which migration 0011 keeps at the newest epoch (a
/// constant in the plan, where a subquery of `log_epochs` cost every append
/// an index probe).
const INSERT_EVENTS: &str = r"
    INSERT INTO {schema}.events
        (stream_id, version, event_id, event_type, schema_version, payload, payload_bytes,
         correlation_id, causation_id, occurred_at, headers)
    SELECT $1, head.base + e.n, e.event_id, e.event_type, e.schema_version,
           e.payload, e.payload_bytes, e.correlation_id, e.causation_id, e.occurred_at, e.headers
    FROM head,
         UNNEST($3::uuid[], $4::text[], $5::int8[], $6::jsonb[], $7::bytea[], $8::uuid[],
                $9::uuid[], $10::timestamptz[], $11::jsonb[])
             WITH ORDINALITY
             AS e(event_id, event_type, schema_version, payload, payload_bytes, correlation_id,
                  causation_id, occurred_at, headers, n)
    ORDER BY e.n
    RETURNING epoch, version, tx_id, seq
";

/// The lease check of a fenced write: shard `$12`'s lease at epoch `$13`
/// and not expired by the database's clock.
///
/// Stops a writer whose lease was taken over (a paused or partitioned old
/// owner) from appending: the lease row is locked `FOR KEY SHARE`, so a
/// takeover, which changes the epoch (a key column), either committed
/// before and the row no longer matches (re-checked after the lock), or
/// waits until this append committed, and the new owner's recovery reads
/// it. The head is only written `FROM fence`, so a refused fence writes
/// nothing.
const FENCE: &str = r"
    SELECT FROM {schema}.leases
    WHERE shard = $12 AND epoch = $13 AND expires_at > clock_timestamp()
    FOR KEY SHARE
";

/// An append statement for one kind of expectation (`head`), fenced or not.
/// Unfenced it returns one row per stored event (none when the head was
/// refused); fenced it returns one row always, `ok` false when the fence
/// refused, a NULL version when the fence passed but the head did not.
fn append(head: &str, fenced: bool) -> String {
    if fenced {
        let head = head
            .replace("{from_fence}", "FROM fence")
            .replace("{and_fence}", "AND EXISTS (SELECT FROM fence)");
        format!(
            "WITH fence AS ({FENCE}), head AS ({head}), appended AS ({INSERT_EVENTS})
             SELECT appended.epoch, appended.version, appended.tx_id, appended.seq, fenced.ok
             FROM (SELECT EXISTS (SELECT FROM fence) AS ok) AS fenced
             LEFT JOIN appended ON true"
        )
    } else {
        let head = head.replace("{from_fence}", "").replace("{and_fence}", "");
        format!("WITH head AS ({head}) {INSERT_EVENTS}")
    }
}

/// The stream's version and whether shard `$2`'s lease is at epoch `$3`
/// and not expired: an empty fenced append writes nothing, but a stale
/// writer still learns that it is fenced rather than a version.
const FENCED_HEAD: &str = r"
SELECT coalesce((SELECT version FROM {schema}.streams WHERE stream_id = $1), 0),
       EXISTS (SELECT FROM {schema}.leases
               WHERE shard = $2 AND epoch = $3 AND expires_at > clock_timestamp())
";

/// The stream's current version (0 when it has no events): one lookup.
const STREAM_VERSION: &str = r"
SELECT coalesce((SELECT version FROM {schema}.streams WHERE stream_id = $1), 0)
";

/// The stream's head row.
const STREAM_HEAD: &str = r"
SELECT version, archived FROM {schema}.streams WHERE stream_id = $1
";

/// Archives a stream; no row when it has no events.
const ARCHIVE: &str = r"
UPDATE {schema}.streams SET archived = true, updated_at = now()
WHERE stream_id = $1
RETURNING version
";

/// Where the given event ids are stored, to tell an idempotent retry from a
/// reused id after an append failed.
const FIND_IDS: &str = r"
SELECT event_id, stream_id, version, epoch, tx_id, seq
FROM {schema}.events WHERE event_id = ANY($1::uuid[])
";

/// The columns of a recorded event but its stream id, which a stream read
/// knows already (one string fewer to decode per row). A JSON payload is
/// returned as its text.
const COLUMNS: &str = "e.epoch, e.tx_id, e.seq, e.version, e.event_id, e.event_type, \
                       e.schema_version, coalesce(e.payload_bytes, convert_to(e.payload::text, 'UTF8')), \
                       e.correlation_id, e.causation_id, e.occurred_at, e.headers";

/// Not a row of an archived stream: a probe of the small
/// `streams_archived_idx`.
const NOT_ARCHIVED: &str =
    "NOT EXISTS (SELECT FROM {schema}.streams s WHERE s.stream_id = e.stream_id AND s.archived)";

/// One stream from a version on, served by the primary key; nothing of an
/// archived stream (a one-time filter).
const READ_STREAM: &str = r"
SELECT {columns} FROM {schema}.events e
WHERE e.stream_id = $1 AND e.version >= $2
  AND NOT EXISTS (SELECT FROM {schema}.streams s WHERE s.stream_id = $1 AND s.archived)
ORDER BY e.version
";

/// One stream from a version on, only what recovery decodes: collected by
/// `read_stream_for_replay`, streamed by `replay` (`crate::replay`).
const REPLAY_STREAM: &str = r"
SELECT e.version, e.event_type, e.schema_version,
       coalesce(e.payload_bytes, convert_to(e.payload::text, 'UTF8'))
FROM {schema}.events e
WHERE e.stream_id = $1 AND e.version >= $2
  AND NOT EXISTS (SELECT FROM {schema}.streams s WHERE s.stream_id = $1 AND s.archived)
ORDER BY e.version
";

/// The rest of a replay after its first page (`$1` stream id, `$2` first
/// version): the replay statement without its archive check, so that a
/// stream archived after its page was read is replayed whole (an archived
/// stream takes no more events), not cut short.
const REPLAY_REST: &str = r"
SELECT e.version, e.event_type, e.schema_version,
       coalesce(e.payload_bytes, convert_to(e.payload::text, 'UTF8'))
FROM {schema}.events e
WHERE e.stream_id = $1 AND e.version >= $2
ORDER BY e.version
";

/// The first page of several replays in one statement: `$1` stream ids and
/// `$2` first versions, side by side (a stream may come twice), `$3` the
/// page size. Rows are the replay statement's, each led by its request's
/// place in the arrays (from 1), in request and then version order.
const REPLAY_FIRST_PAGES: &str = r"
SELECT r.request, e.version, e.event_type, e.schema_version, e.payload
FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS r(stream_id, from_version, request)
CROSS JOIN LATERAL (
    SELECT e.version, e.event_type, e.schema_version,
           coalesce(e.payload_bytes, convert_to(e.payload::text, 'UTF8')) AS payload
    FROM {schema}.events e
    WHERE e.stream_id = r.stream_id AND e.version >= r.from_version
      AND NOT EXISTS (SELECT FROM {schema}.streams s WHERE s.stream_id = r.stream_id AND s.archived)
    ORDER BY e.version
    LIMIT $3
) e
ORDER BY r.request, e.version
";

/// The horizon of a log read, as a bound on the position: a row of an
/// older epoch is always safe (its history is finished); a row of the
/// current one only below the snapshot's xmin, the oldest transaction still
/// running, which may still commit a smaller position. As one row
/// comparison on the leading columns of the position indexes it is an
/// index condition, so the scan stops at the horizon instead of fetching
/// rows past it only to drop them.
const BELOW_HORIZON: &str = "(e.epoch, e.tx_id) < ((SELECT max(epoch) FROM {schema}.log_epochs), \
                             pg_snapshot_xmin(pg_current_snapshot()))";

/// The horizon of a diagnostic: the oldest transaction still running and
/// the current epoch.
const HORIZON: &str = "(SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin, \
                       (SELECT max(epoch) FROM {schema}.log_epochs) AS epoch) AS horizon";

/// A page of the global log after a position and below the horizon, served
/// by `events_log_idx`.
const READ_ALL: &str = r"
SELECT {columns}, e.stream_id
FROM {schema}.events e
WHERE (e.epoch, e.tx_id, e.seq) > ($1::int4, $2::xid8, $3::int8)
  AND {below_horizon} AND {not_archived}
ORDER BY e.epoch, e.tx_id, e.seq
LIMIT $4
";

/// Whether committed rows after a position wait behind the horizon: asked
/// only when a page came back empty, to tell "nothing new" from "held back"
/// (one probe of `events_log_idx`).
const HELD_BACK_AFTER: &str = r"
SELECT EXISTS (
    SELECT FROM {schema}.events e
    WHERE (e.epoch, e.tx_id, e.seq) > ($1::int4, $2::xid8, $3::int8) AND {not_archived}
)
";

/// [`HELD_BACK_AFTER`] of one category (`$4`).
const HELD_BACK_AFTER_CATEGORY: &str = r"
SELECT EXISTS (
    SELECT FROM {schema}.events e
    WHERE split_part(e.stream_id, '-', 1) = $4
      AND (split_part(e.stream_id, '-', 1), e.epoch, e.tx_id, e.seq)
          > ($4::text, $1::int4, $2::xid8, $3::int8)
      AND {not_archived}
)
";

/// A page of one category's events after a position and below the
/// horizon, served by `events_category_idx` (its expression is the
/// category of the id). The position bound is one row comparison led by
/// the category, so it is an index condition of that index (a bound on the
/// position alone would be one of `events_log_idx`, which the planner would
/// then prefer).
const READ_CATEGORY: &str = r"
SELECT {columns}, e.stream_id
FROM {schema}.events e
WHERE split_part(e.stream_id, '-', 1) = $5
  AND (split_part(e.stream_id, '-', 1), e.epoch, e.tx_id, e.seq)
      > ($5::text, $1::int4, $2::xid8, $3::int8)
  AND {below_horizon} AND {not_archived}
ORDER BY split_part(e.stream_id, '-', 1), e.epoch, e.tx_id, e.seq
LIMIT $4
";

/// What holds the horizon back: the committed rows of the current epoch at
/// or above it, and the oldest running transaction (any database of the
/// server) or prepared transaction, with its age.
const HORIZON_LAG: &str = r"
WITH h AS (SELECT * FROM {horizon}),
running AS (
    SELECT pid, datname::text AS database, state, NULL::text AS gid,
           extract(epoch FROM now() - xact_start)::float8 AS age, age(backend_xid) AS xids
    FROM pg_stat_activity WHERE backend_xid IS NOT NULL
    UNION ALL
    SELECT NULL, database::text, 'prepared', gid,
           extract(epoch FROM now() - prepared)::float8, age(transaction)
    FROM pg_prepared_xacts
), oldest AS (SELECT * FROM running ORDER BY xids DESC LIMIT 1)
SELECT (SELECT count(*) FROM {schema}.events e, h
        WHERE e.epoch = h.epoch AND e.tx_id >= h.xmin),
       oldest.pid, oldest.database, oldest.state, oldest.gid, oldest.age
FROM (SELECT 1) AS one LEFT JOIN oldest ON true
";

/// The rendered statements of one store.
#[derive(Debug)]
pub(crate) struct EventSql {
    pub(crate) append_new: String,
    pub(crate) append_exact: String,
    pub(crate) append_any: String,
    pub(crate) append_new_fenced: String,
    pub(crate) append_exact_fenced: String,
    pub(crate) append_any_fenced: String,
    /// The coalesced append of each [`GroupShape`], by its index.
    pub(crate) append_group: Vec<String>,
    pub(crate) fenced_head: String,
    pub(crate) stream_version: String,
    pub(crate) stream_head: String,
    pub(crate) archive: String,
    pub(crate) find_ids: String,
    pub(crate) read_stream: String,
    pub(crate) replay_stream: String,
    pub(crate) replay_first_pages: String,
    pub(crate) replay_rest: String,
    pub(crate) read_all: String,
    pub(crate) read_category: String,
    pub(crate) held_back_after: String,
    pub(crate) held_back_after_category: String,
    pub(crate) horizon_lag: String,
}

impl EventSql {
    pub(crate) fn new(schema: &Schema) -> Self {
        let full = |t: &str| {
            let t = t
                .replace("{columns}", COLUMNS)
                .replace("{horizon}", HORIZON)
                .replace("{below_horizon}", BELOW_HORIZON)
                .replace("{not_archived}", NOT_ARCHIVED);
            render(&t, schema)
        };
        Self {
            append_new: render(&append(HEAD_NEW, false), schema),
            append_exact: render(&append(HEAD_EXACT, false), schema),
            append_any: render(&append(HEAD_ANY, false), schema),
            append_new_fenced: render(&append(HEAD_NEW, true), schema),
            append_exact_fenced: render(&append(HEAD_EXACT, true), schema),
            append_any_fenced: render(&append(HEAD_ANY, true), schema),
            append_group: GroupShape::all()
                .map(|shape| render(&shape.sql(), schema))
                .collect(),
            fenced_head: render(FENCED_HEAD, schema),
            stream_version: render(STREAM_VERSION, schema),
            stream_head: render(STREAM_HEAD, schema),
            archive: render(ARCHIVE, schema),
            find_ids: render(FIND_IDS, schema),
            read_stream: full(READ_STREAM),
            replay_stream: render(REPLAY_STREAM, schema),
            replay_first_pages: render(REPLAY_FIRST_PAGES, schema),
            replay_rest: render(REPLAY_REST, schema),
            read_all: full(READ_ALL),
            read_category: full(READ_CATEGORY),
            held_back_after: full(HELD_BACK_AFTER),
            held_back_after_category: full(HELD_BACK_AFTER_CATEGORY),
            horizon_lag: full(HORIZON_LAG),
        }
    }
}
