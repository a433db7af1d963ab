//! SQL of the `cluster_members` table and the cluster's read of `leases`.
//!
//! Times are the database's (`clock_timestamp()`); durations travel as
//! microseconds, as for the leases.

use super::render;
use crate::config::Schema;

const JOIN: &str = r"
INSERT INTO {schema}.cluster_members (node, address, expires_at)
VALUES ($1, $2, clock_timestamp() + $3::int8 * interval '1 microsecond')
ON CONFLICT (node) DO UPDATE SET address = excluded.address, expires_at = excluded.expires_at
";

/// Renews the node (re-inserting it if its row expired and was pruned) and
/// prunes members gone for more than an hour, in one statement.
const RENEW: &str = r"
WITH renewed AS (
    INSERT INTO {schema}.cluster_members (node, address, expires_at)
    VALUES ($1, $2, clock_timestamp() + $3::int8 * interval '1 microsecond')
    ON CONFLICT (node) DO UPDATE SET expires_at = excluded.expires_at
    RETURNING node
), pruned AS (
    DELETE FROM {schema}.cluster_members
    WHERE expires_at < clock_timestamp() - interval '1 hour' AND node <> $1
)
SELECT count(*) FROM renewed
";

/// Every member row, expired ones too (flagged): only live members get
/// shards, but a holder whose membership lapsed while its leases still
/// renew must stay reachable at its address.
const MEMBERS: &str = r"
SELECT node, address, expires_at > clock_timestamp() FROM {schema}.cluster_members
";

const HOLDERS: &str = r"
SELECT shard, owner, epoch FROM {schema}.leases WHERE expires_at > clock_timestamp()
";

const LEAVE: &str = r"
DELETE FROM {schema}.cluster_members WHERE node = $1
";

#[derive(Debug)]
pub(crate) struct ClusterSql {
    pub(crate) join: String,
    pub(crate) renew: String,
    pub(crate) members: String,
    pub(crate) holders: String,
    pub(crate) leave: String,
}

impl ClusterSql {
    pub(crate) fn new(schema: &Schema) -> Self {
        Self {
            join: render(JOIN, schema),
            renew: render(RENEW, schema),
            members: render(MEMBERS, schema),
            holders: render(HOLDERS, schema),
            leave: render(LEAVE, schema),
        }
    }
}
