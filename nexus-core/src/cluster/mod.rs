//! Several processes serving one set of entities: membership and shard
//! leases in the store, shards spread over the live nodes, refs that reach
//! an entity's owner wherever it runs, and handoff when a shard moves.
//!
//! Behind the cargo feature `cluster` (it brings the HTTP/2 transport).
//! [`guide::cluster`](crate::guide::cluster) describes the model; in short:
//!
//! - **Membership and leases** live in the store ([`Coordination`];
//!   Postgres: `nexus_store_pg::PgCoordination`). A node that stops
//!   heartbeating drops out when its membership expires, and its shards
//!   can be taken when their leases expire. No consensus among the nodes.
//! - **Allocation** is a function of the view (the live members and who
//!   holds what, [`allocate`]): balanced, sticky (a join or a leave moves
//!   the fewest shards possible), computed by every node from the same
//!   view; the fenced leases settle any moment where two views disagree.
//! - **Routing**: [`EntitiesBuilder::cluster`](crate::EntitiesBuilder::cluster)
//!   makes every `entities.of(id).ask(..)` go to the node holding the id's
//!   shard: into the local mailbox here, over HTTP/2 there, with the same
//!   typed reply and errors.
//! - **Handoff**: a shard that moves is buffered (senders wait), its
//!   entities finish their queued commands and stop, the lease is
//!   released, and the buffered messages go on to the new owner, which
//!   took the shard under a new epoch.

mod allocation;
mod binding;
mod coordination;
mod handle;
mod node;
mod ownership;
mod peer;
mod routes;
pub mod transport;
mod view;

pub use allocation::allocate;
pub(crate) use binding::{Binding, NotApplied, budget};
pub use coordination::{Coordination, CoordinationError, Member, ShardHolder, View};
pub use handle::{Cluster, ClusterBuilder, ClusterError, MemberStatus};
pub(crate) use node::{Destination, ShardHost};
pub(crate) use ownership::NodeLease;
