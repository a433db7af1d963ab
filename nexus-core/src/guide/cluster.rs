//! # The cluster: one writer per entity, any node for any request
//!
//! With the cargo feature `cluster`, several processes on one database and
//! schema form a cluster. Each entity runs on exactly one node, the holder
//! of its shard's fenced lease; any node accepts any command for it and
//! forwards the command there. The business code does not change:
//! `entities.of(id).ask(command)` returns the same typed reply and the same
//! [`EntityError`](crate::EntityError) variants wherever the entity runs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use nexus_core::cluster::Cluster;
//! use nexus_core::codec::{EventCodec, Json};
//! use nexus_core::{ActorSystem, Entities};
//! # use nexus_core::testkit::doc::{Add, Counter};
//! # async fn run(coordination: impl nexus_core::cluster::Coordination, store: Arc<dyn nexus_core::EventStore>) -> Result<(), Box<dyn std::error::Error>> {
//! // One per process: `coordination` is `nexus_store_pg::PgCoordination`.
//! let cluster = Cluster::builder(coordination).start().await?;
//! let system = ActorSystem::new();
//! let counters = Entities::<Counter>::builder(&system)
//!     .event_sourced(store, EventCodec::new(Json))
//!     .cluster(&cluster, Json) // commands and replies cross the wire as JSON
//!     .build()?;
//! counters.of("c1").ask(Add(1)).await?; // here or on its owner's node
//! // On SIGTERM: hand the shards off, then stop.
//! cluster.leave().await;
//! system.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```
//!
//! ## Coordination stays in Postgres
//!
//! There is no consensus protocol among the nodes. Postgres holds the two
//! facts a cluster needs ([`Coordination`](crate::cluster::Coordination)):
//!
//! - **membership**: each node's row (id, peer address) with an expiry the
//!   node renews on every heartbeat (a tenth of the lease ttl by default);
//!   a node that stops renewing is gone when its row expires, and a node
//!   that leaves deletes it;
//! - **shard leases**: the fenced leases of
//!   [`guide::ownership`](super::ownership), taken by nodes for whole
//!   shards. Every write of an entity carries its shard's epoch and is
//!   refused in the same statement once another node took the shard, and a
//!   node stops serving a shard by its own monotonic clock before the lease
//!   can expire at the database. A stopped or partitioned node therefore
//!   wakes up fenced: it neither writes nor answers from its old state.
//!
//! ## Allocation: balanced, sticky, computed by every node
//!
//! Every node computes which node should hold each shard from the view it
//! read ([`allocate`](crate::cluster::allocate)): the live members and who
//! holds what. Each node gets `shards / nodes` shards, and one more for
//! `shards % nodes` of them; a shard stays with its holder while the holder
//! is live and within its count; a shard that must move (its holder left,
//! or holds too many) goes to the node that ranks it highest by rendezvous
//! hashing among those short of their count. So a join moves exactly the
//! shards the joiner takes, and a leave exactly those the leaver held.
//!
//! A coordinator holding a lease could compute the same from a table of its
//! own; we chose the function because it has nothing to fail over. Two
//! nodes may briefly disagree (one read the view before a change, one
//! after): the leases make that harmless, since only one of them can take a
//! shard, and the next heartbeat brings both to the same view.
//!
//! ## Routing and forwarding
//!
//! A send computes the entity's shard (FNV-1a of the stream id, the same as
//! the lease's) and looks up the node's route for it:
//!
//! - **held here**: into the local mailbox, as without a cluster;
//! - **held elsewhere**: the command is encoded with the aggregate's
//!   [`RemoteCommands`](crate::remote::RemoteCommands) (which
//!   `#[aggregate]` generates; it compiles only when every command, reply
//!   and the error are serde types) and sent over HTTP/2 to the holder,
//!   which runs it on its entity and answers the typed reply or error;
//! - **moving, or not taken yet**: the send waits, bounded by the ask
//!   timeout, and goes where the shard went.
//!
//! A node that no longer holds a shard when a forwarded command arrives
//! forwards it on to the new holder (at most three forwards in all) or answers
//! "not the owner", which the sender treats as *not applied* and routes
//! again after a fresh view. Transport failures keep the same distinction:
//! a command that never reached a node that could apply it is retried
//! within the ask timeout while the route changes, then
//! [`Unreachable`](crate::EntityError::Unreachable) (not applied); one that
//! left without an answer is [`Interrupted`](crate::EntityError::Interrupted) (outcome
//! unknown; send it again with the same
//! [`command_id`](crate::CommandOptions::command_id) to apply it at most
//! once).
//!
//! ## Handoff
//!
//! When a shard moves because of a join or a graceful leave, its holder:
//!
//! 1. routes the shard's new messages to wait (the buffer), and lets the
//!    local sends already under way finish enqueueing;
//! 2. stops the shard's entities after the commands queued in their
//!    mailboxes, which they carry out and answer first;
//! 3. releases the lease at the database at once;
//! 4. sends the waiting messages on to the new owner, which takes the
//!    shard under a new epoch at its next view of the cluster (its
//!    heartbeat, or at once when the first forwarded message tells it its
//!    view is old).
//!
//! Nothing is lost (every message is carried out or answered), nothing is
//! duplicated (an entity runs on one node at a time), and one caller's
//! commands keep their order (each waits for its predecessor's answer or
//! acceptance, wherever it ran). Callers see latency, not errors. A
//! forwarded command carries its sender's deadline: a node that receives it
//! after the sender gave up (it was paused, say) refuses it unapplied
//! instead of carrying it out behind the sender's back. A leaving
//! node keeps its peer listener open two heartbeats after its last handoff,
//! forwarding what peers still send it while they learn the new holders.
//!
//! The one exception is an entity that does not finish its queued
//! commands within the handoff timeout (30 s by default, a handler stuck on
//! a slow call): the shard is released anyway, and what is still queued is
//! answered "not the owner" (not applied) by the fenced entity.
//!
//! A crashed node hands nothing off: its shards are taken once their
//! leases expire (the ttl after its last renewal), and commands for them
//! wait until then, bounded by the ask timeout, or get a retryable error.
//!
//! ## Singletons
//!
//! [`Cluster::lease`](crate::cluster::Cluster::lease) is a lease over the
//! node's shards: a singleton that takes it (a projection) runs on the node
//! holding its stream's shard, fenced by that shard's epoch, and moves with
//! the shard, its standby on the next owner taking over.
