//! SQL of the `projections` table, the lag and horizon probes, and the
//! wake-up channel.
//!
//! The probes read the `events` table by its position columns
//! (`epoch`, `tx_id`, `seq`): they are the only read-side statements that know how a
//! [`LogPosition`](nexus_core::LogPosition) maps to columns, so a change of
//! the log's layout changes them here and nowhere else.

use crate::config::Schema;
use crate::sql::render;

/// Records the position (and generation) of projection `$1` in one
/// statement, refused — no row returned — when:
/// - a fence is given (`$3` shard, `$4` epoch) and its lease row is not at
///   that epoch or has expired: a stale instance whose lease was taken over
///   records nothing, and since this runs in the batch's transaction, its
///   read-model writes roll back with it. `FOR KEY SHARE` makes a takeover
///   (which changes the epoch) wait for this transaction;
/// - `$7` (check) is set and the stored position is not `$5` or the stored
///   generation not `$8`: another instance moved the checkpoint.
const RECORD: &str = r"
WITH fence AS (
    SELECT FROM {schema}.leases
    WHERE shard = $3 AND epoch = $4 AND expires_at > clock_timestamp()
    FOR KEY SHARE
)
INSERT INTO {schema}.projections AS p (name, position, generation)
SELECT $1, $2, $6
WHERE $3::int4 IS NULL OR EXISTS (SELECT FROM fence)
ON CONFLICT (name) DO UPDATE
    SET position = excluded.position, generation = excluded.generation,
        rebuild_position = NULL, updated_at = now()
    WHERE NOT $7::bool OR (p.position IS NOT DISTINCT FROM $5 AND p.generation = $8)
RETURNING 1
";

/// Records how far a rebuild of projection `$1` has read, under the same
/// fence as [`RECORD`].
const RECORD_REBUILD: &str = r"
WITH fence AS (
    SELECT FROM {schema}.leases
    WHERE shard = $3 AND epoch = $4 AND expires_at > clock_timestamp()
    FOR KEY SHARE
)
UPDATE {schema}.projections SET rebuild_position = $2, updated_at = now()
WHERE name = $1 AND ($3::int4 IS NULL OR EXISTS (SELECT FROM fence))
RETURNING 1
";

/// The recorded position and generation of projection `$1`.
const LOAD: &str = r"
SELECT position, generation FROM {schema}.projections WHERE name = $1
";

/// Committed events after position (`$3` epoch, `$1` transaction id, `$2`
/// sequence) and the age in seconds of the oldest of them. Positions order
/// by epoch first: every event of a later epoch is after the position,
/// whatever its transaction id.
const LAG: &str = r"
SELECT count(*),
       coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0)::float8
FROM {schema}.events
WHERE (epoch, tx_id, seq) > ($3::int4, $1::text::xid8, $2::int8)
";

/// Whether committed events after the position wait behind the horizon
/// (the oldest running transaction's id), and who that transaction is: a
/// backend (named by pid, application, state and age) or a prepared
/// transaction (named by its gid). Both compare the horizon's 32-bit xid.
/// Only rows of the current epoch can wait: an older epoch's history is
/// finished (the horizon of `read_all`).
const HELD_BY: &str = r"
WITH h AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin,
           (pg_snapshot_xmin(pg_current_snapshot())::text::numeric % 4294967296)::text AS xid,
           (SELECT max(epoch) FROM {schema}.log_epochs) AS epoch
)
SELECT
    EXISTS (SELECT FROM {schema}.events e, h
            WHERE (e.epoch, e.tx_id, e.seq) > ($3::int4, $1::text::xid8, $2::int8)
              AND e.epoch = h.epoch AND e.tx_id >= h.xmin),
    (SELECT format('backend %s (application %L, %s, transaction open %s s)',
                   a.pid, a.application_name, a.state,
                   round(extract(epoch FROM clock_timestamp() - a.xact_start)::numeric, 1))
     FROM pg_stat_activity a, h WHERE a.backend_xid::text = h.xid LIMIT 1),
    (SELECT format('prepared transaction %L (owner %s, prepared %s s ago)',
                   p.gid, p.owner,
                   round(extract(epoch FROM clock_timestamp() - p.prepared)::numeric, 1))
     FROM pg_prepared_xacts p, h WHERE p.transaction::text = h.xid LIMIT 1),
    (SELECT xmin::text FROM h)
";

/// Serialises creating a projection's tables and view between processes.
pub(crate) const LOCK_SETUP: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";

/// The rendered statements of one schema.
#[derive(Debug)]
pub(crate) struct ProjectionSql {
    pub(crate) record: String,
    pub(crate) record_rebuild: String,
    pub(crate) load: String,
    pub(crate) lag: String,
    pub(crate) held_by: String,
}

impl ProjectionSql {
    pub(crate) fn new(schema: &Schema) -> Self {
        Self {
            record: render(RECORD, schema),
            record_rebuild: render(RECORD_REBUILD, schema),
            load: render(LOAD, schema),
            lag: render(LAG, schema),
            held_by: render(HELD_BY, schema),
        }
    }
}

/// The NOTIFY channel of a schema's appends. A channel is an identifier of
/// at most 63 bytes (`pg_notify` refuses a longer one, `LISTEN` truncates
/// it), so a long schema name is cut and suffixed with a stable hash of
/// the whole name (FNV-1a: the same in every process and release).
pub(crate) fn channel(schema: &Schema) -> String {
    let name = format!("nexus_events_{}", schema.as_str());
    if name.len() <= 63 {
        return name;
    }
    let hash = schema
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{}_{hash:016x}", &name[..46])
}
