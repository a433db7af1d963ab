//! SQL of the `leases` and `lease_config` tables.
//!
//! Every time is the database's (`clock_timestamp()`), never the holder's:
//! the holder keeps its own, earlier, deadline on its monotonic clock.
//! Durations travel as microseconds (`$n::int8 * interval '1 microsecond'`).

use super::render;
use crate::config::Schema;

/// Records the shard count of the schema unless one is recorded already.
const INSERT_CONFIG: &str = r"
INSERT INTO {schema}.lease_config (shards) VALUES ($1) ON CONFLICT (singleton) DO NOTHING
";

/// The shard count of the schema (a statement of its own, so that it sees a
/// row a concurrent starter inserted after `INSERT_CONFIG` began).
const SHARDS: &str = r"
SELECT shards FROM {schema}.lease_config
";

/// Takes shard `$1` for owner `$2` until the database's now + `$3` µs, if it
/// was never leased, is expired or released, or is this owner's own (a
/// holding this process gave up or lost track of, for example after a
/// timed-out acquisition). Every acquisition increments the epoch, a
/// re-acquisition by the same owner too, so no write of an earlier tenure
/// passes a fence again. Changing the epoch (a key column) takes the row's
/// FOR UPDATE lock: a takeover waits for every in-flight fenced write of
/// the old epoch to commit, so the new owner's recovery sees each of them.
/// No row returned: the shard is held by someone else.
const ACQUIRE: &str = r"
INSERT INTO {schema}.leases AS l (shard, owner, epoch, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + $3::int8 * interval '1 microsecond')
ON CONFLICT (shard) DO UPDATE
    SET owner = excluded.owner, epoch = l.epoch + 1, expires_at = excluded.expires_at
    WHERE l.expires_at <= clock_timestamp() OR l.owner = excluded.owner
RETURNING epoch
";

/// Who holds shard `$1`, to name them in a refusal.
const HOLDER: &str = r"
SELECT owner, epoch, expires_at::text FROM {schema}.leases WHERE shard = $1
";

/// Renews every shard of owner `$1` in one statement: the shards `$3` at
/// the epochs `$4`, each for `$2` µs from the database's now. A shard is
/// only renewed while it is still this owner's at that epoch and not yet
/// expired; the ones not returned are lost. Changes no key column, so it
/// does not wait for in-flight fenced writes.
const RENEW: &str = r"
UPDATE {schema}.leases AS l
SET expires_at = clock_timestamp() + $2::int8 * interval '1 microsecond'
FROM UNNEST($3::int4[], $4::int8[]) AS held(shard, epoch)
WHERE l.shard = held.shard AND l.epoch = held.epoch AND l.owner = $1
  AND l.expires_at > clock_timestamp()
RETURNING l.shard
";

/// Gives the shards `$2` at the epochs `$3` up at once, those that owner
/// `$1` still holds at them, so that another process can take them without
/// waiting for the expiry.
const RELEASE: &str = r"
UPDATE {schema}.leases AS l SET expires_at = clock_timestamp()
FROM UNNEST($2::int4[], $3::int8[]) AS gone(shard, epoch)
WHERE l.shard = gone.shard AND l.epoch = gone.epoch AND l.owner = $1
  AND l.expires_at > clock_timestamp()
";

/// The rendered statements of one lease.
#[derive(Debug)]
pub(crate) struct LeaseSql {
    pub(crate) insert_config: String,
    pub(crate) shards: String,
    pub(crate) acquire: String,
    pub(crate) holder: String,
    pub(crate) renew: String,
    pub(crate) release: String,
}

impl LeaseSql {
    pub(crate) fn new(schema: &Schema) -> Self {
        Self {
            insert_config: render(INSERT_CONFIG, schema),
            shards: render(SHARDS, schema),
            acquire: render(ACQUIRE, schema),
            holder: render(HOLDER, schema),
            renew: render(RENEW, schema),
            release: render(RELEASE, schema),
        }
    }
}
