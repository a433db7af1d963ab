//! # Ownership: one writer per entity, across processes
//!
//! Nexus keeps every entity's writes in one actor. Inside one
//! [`ActorSystem`](crate::ActorSystem) the registry guarantees it: one live
//! actor per id, and one registry per aggregate name (a second
//! `Entities::<A>::builder(..).build()` on the same system is
//! [`ConfigError::AlreadyServed`](crate::ConfigError::AlreadyServed)). Across
//! processes, an entity type runs in one of three modes, chosen on its
//! builder.
//!
//! ## Database arbitration (the default)
//!
//! Several processes may serve the same entities. Writes stay correct through
//! the store's versioned append: a second writer's append conflicts and is
//! decided again on reloaded state ([`RetryPolicy`](crate::RetryPolicy)).
//! A version check cannot catch a stale *read* or a stale *rejection*,
//! because neither appends, so an entity confirms it is at the stream's head
//! before it sends a reply that did not write: one indexed read
//! ([`EventStore::stream_version`](crate::EventStore::stream_version), or
//! [`StateStore::version`](crate::store::StateStore::version)). Found
//! behind, it recovers and decides the command again. The first batch after
//! a recovery skips the read: the recovery itself happened after the
//! commands were sent.
//!
//! What holds: invariants 1 to 8 of the design, also across processes; no
//! reply reflects less than every write acknowledged before its command was
//! sent. What it costs: the head read per non-writing batch, and conflicts
//! (with their retries) whenever two processes write one entity at once.
//!
//! ## A lease: fenced ownership
//!
//! [`lease`](crate::EntitiesBuilder::lease) makes one process the owner of
//! each shard of streams (`nexus_store_pg::PgLease` on Postgres,
//! [`InMemoryLease`](crate::lease::InMemoryLease) in one process):
//!
//! - an entity takes its shard's lease before it recovers; another process
//!   holding it means [`EntityError::NotOwner`](crate::EntityError::NotOwner);
//! - each acquisition has a new, larger epoch ([`Tenure`](crate::lease::Tenure));
//!   every write carries it as a [`Fence`](crate::lease::Fence), and the
//!   store refuses a stale one *in the statement that would write*
//!   ([`StoreError::Fenced`](crate::StoreError::Fenced)); the entity then
//!   answers `NotOwner`, drops its state and stops;
//! - the owner renews its lease on a heartbeat and, by its own monotonic
//!   clock, stops acting on it before the database could consider it
//!   expired: a tenure ends at `sent + ttl - max_clock_drift`, where `sent` is
//!   read before the renewal was sent. A process paused past that point (a
//!   `SIGSTOP`, a long stall) wakes up no longer current, so it answers
//!   nothing from its old state, and its writes are fenced off;
//! - an entity whose lease ends while it waits drops its state at once; the
//!   next command takes the lease again, with a new epoch, and recovers.
//!
//! What holds: one writer per entity across processes, and replies without
//! the head read, as long as the clocks of holder and database drift apart by
//! less than `max_clock_drift` over one `ttl`. If that assumption breaks, a
//! second writer is still refused by the fence and, behind it, by the stream
//! version: the assumption guards reads, never the log. What it costs: a
//! lease statement per shard acquisition, one renewal statement per
//! heartbeat for all held shards, and the fence check inside each write.
//!
//! ## A declared sole writer
//!
//! [`sole_writer`](crate::EntitiesBuilder::sole_writer) declares that nothing
//! but this process writes the entity type's streams (a single-node
//! deployment). Replies skip the head read. Writes stay safe if the
//! declaration is wrong (the version check turns them into conflicts), but
//! reads and rejections may then be stale.
//!
//! ## The tests that guard each mode
//!
//! | failure | test |
//! | --- | --- |
//! | two `Entities` of one aggregate on one system | `nexus-core/tests/runtime_ownership.rs` (`a_second_registry_of_one_aggregate_is_refused`) |
//! | two systems share a store without a lease: stale reads and rejections | `runtime_ownership.rs` (`without_an_owner_replies_confirm_the_stream_head`, `concurrent_rejections_across_systems_are_never_stale`); three wallet-app processes and three stock processes: `tests/tests/no_ownership_pg.rs` |
//! | a lease taken away: no write, no answer from the old state | `runtime_ownership.rs` (`a_lost_lease_writes_nothing_and_answers_nothing_stale`, `a_write_the_store_fences_off_is_not_owner_and_stops_the_entity`, `a_holder_past_its_deadline_answers_nothing_from_its_old_state`) |
//! | a stale fence at the database, for events, snapshots and states; a takeover waits for an in-flight write | `nexus-store-pg/tests/fenced.rs` |
//! | one owner per shard, epochs that only grow, renewal, a killed or unreachable lease connection, different shard counts, 2,000 concurrent activations | `nexus-store-pg/tests/lease.rs` |
//! | the owner's lease connection cut mid-load; the owner `SIGSTOP`ped past its lease; Postgres restarted mid-load (real processes) | `tests/tests/fenced_ownership_pg.rs` |
//! | a colliding aggregate name | `nexus-macros/tests/ui/name_with_dash.rs`, `runtime_ownership.rs` (`a_name_with_a_dash_is_refused`) |
//!
//! ## Timing
//!
//! `nexus_store_pg::LeaseTiming` names the three values: `ttl` (how long a
//! lease lasts at the database after each renewal), `renew_every` and
//! `max_clock_drift`, checked at start-up to satisfy
//! `2 × renew_every + max_clock_drift < ttl`, so that one lost renewal never
//! ends a healthy lease. A holder acts on its lease until
//! `sent + ttl − max_clock_drift`, where `sent` is its monotonic clock read
//! before the renewal (or acquisition) statement was sent; the database
//! considers it expired at `now() + ttl` as of that statement, which is
//! later. Loss of the lease's connection is a failed renewal, nothing more:
//! the holder reconnects on the next heartbeat, and its deadline alone keeps
//! it safe meanwhile.
