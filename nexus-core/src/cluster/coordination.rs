//! What a cluster needs from its coordination engine: membership and fenced
//! shard leases, both kept by the store (Postgres for
//! `nexus_store_pg::PgCoordination`), never by the nodes among themselves.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::BoxError;
use crate::lease::{LeaseError, LeaseGuard};

/// One live node of the cluster, as the coordination engine knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The node's id: unique per process start, and the owner name of the
    /// shard leases it holds.
    pub node: String,
    /// Where its peers reach it (`host:port`).
    pub address: String,
    /// Whether its membership is current. Only live members get shards;
    /// a lapsed one is still reachable while it holds unexpired leases.
    pub live: bool,
}

/// Who holds one shard's lease, as of the last observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardHolder {
    /// The shard.
    pub shard: u32,
    /// The holder's node id.
    pub node: String,
    /// The epoch it holds the shard under.
    pub epoch: u64,
}

/// The cluster as the coordination engine saw it at one instant: the
/// members (live ones, whose membership has not expired, this node included
/// once it joined, and lapsed ones the engine still knows) and the holders
/// of unexpired shard leases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// The members, in any order.
    pub members: Vec<Member>,
    /// The shards held under an unexpired lease.
    pub holders: Vec<ShardHolder>,
}

/// Why the coordination engine could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinationError {
    /// The engine did not answer or failed; the node keeps its view and
    /// tries again on its next heartbeat, while its leases end by their
    /// own deadlines.
    #[error("cluster coordination ({operation}) failed: {source}")]
    Backend {
        /// What the node was doing.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

/// Membership and shard leases for one cluster (one database and schema).
///
/// A node [`join`](Self::join)s with its peer address, calls
/// [`observe`](Self::observe) on every heartbeat (which renews its
/// membership, for the membership's time to live, and reads everyone
/// else's), [`take`](Self::take)s the shards the allocation gives it, and
/// [`leave`](Self::leave)s when it shuts down. A node that stops
/// heartbeating drops out of the membership once its time to live passes,
/// and its shards can be taken once their leases expire.
#[async_trait]
pub trait Coordination: Send + Sync + 'static {
    /// This node's id (the owner of the leases it takes).
    fn node(&self) -> &str;

    /// How many shards the streams are spread over; the same for every
    /// node of the cluster.
    fn shards(&self) -> u32;

    /// How long a membership or a lease lives without renewal.
    fn ttl(&self) -> Duration;

    /// Registers this node at `address` (or updates its address).
    async fn join(&self, address: &str) -> Result<(), CoordinationError>;

    /// Renews this node's membership and reads the live members and the
    /// held shards.
    async fn observe(&self) -> Result<View, CoordinationError>;

    /// Reads the live members and the held shards without renewing this
    /// node's membership (a node on its way out still follows where its
    /// shards went).
    async fn view(&self) -> Result<View, CoordinationError>;

    /// Takes `shard` under a new epoch; fails with
    /// [`LeaseError::Held`] while another node's lease is unexpired.
    async fn take(&self, shard: u32) -> Result<LeaseGuard, LeaseError>;

    /// Gives `shard` up at once (rather than when its guards drop), so
    /// that its next owner can take it without waiting for a heartbeat.
    async fn release(&self, guard: LeaseGuard) -> Result<(), CoordinationError>;

    /// Removes this node from the membership.
    async fn leave(&self) -> Result<(), CoordinationError>;
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.node, self.address)
    }
}
