//! The name of every metric the runtime records, prefixed `nexus_`.
//!
//! Labels: `aggregate` is the aggregate's [`NAME`](crate::Aggregate::NAME),
//! `projection` a projection's name, `outcome` one of
//! [`OUTCOMES`], `from` (recoveries) `snapshot` or `origin`. No label
//! carries an id: ids go on spans, as fields.

/// Counter: commands answered or refused at the send, by `aggregate` and
/// `outcome` (one of [`OUTCOMES`]).
pub const COMMANDS: &str = "nexus_commands_total";
/// Histogram (seconds): from a command's send to its answer, by `aggregate`
/// (mailbox wait, recovery, decision and append included).
pub const COMMAND_DURATION: &str = "nexus_command_duration_seconds";
/// Counter: appends refused because another writer moved the stream first.
pub const CONFLICTS: &str = "nexus_conflicts_total";
/// Counter: batches decided again on reloaded state (after a conflict, or a
/// stream head found moved before an answer that did not write).
pub const RETRIES: &str = "nexus_command_retries_total";
/// Histogram: commands per batch an entity took from its mailbox (group commit).
pub const BATCH_SIZE: &str = "nexus_group_commit_batch_size";
/// Histogram: messages waiting in an entity's mailbox when it took a batch
/// (the batch included).
pub const MAILBOX_DEPTH: &str = "nexus_mailbox_depth";
/// Counter: writes committed (one per batch that wrote).
pub const APPENDS: &str = "nexus_appends_total";
/// Counter: events committed.
pub const EVENTS_APPENDED: &str = "nexus_events_appended_total";
/// Histogram (seconds): one batch's write, re-sends of an unknown outcome
/// included.
pub const APPEND_DURATION: &str = "nexus_append_duration_seconds";
/// Gauge: entities live in memory.
pub const ENTITIES_ACTIVE: &str = "nexus_entities_active";
/// Counter: entity actors started (first use, or again after a passivation
/// or stop).
pub const ENTITY_STARTS: &str = "nexus_entity_starts_total";
/// Counter: entities that passivated (idle past the receive timeout, or
/// evicted to make room under `max_active_entities`, or lease lost while idle).
pub const PASSIVATIONS: &str = "nexus_passivations_total";
/// Counter: entities that stopped (`then_stop`, `EntityRef::stop`).
pub const STOPS: &str = "nexus_entity_stops_total";
/// Counter: restarts after a failure (a panic, a store error, an unknown
/// outcome): the state is dropped and recovered again.
pub const RESTARTS: &str = "nexus_restarts_total";
/// Counter: recoveries, by `from` (`snapshot` or `origin`).
pub const RECOVERIES: &str = "nexus_recoveries_total";
/// Histogram (seconds): one recovery (snapshot load and tail replay).
pub const RECOVERY_DURATION: &str = "nexus_recovery_duration_seconds";
/// Counter: events replayed by recoveries.
pub const RECOVERY_EVENTS: &str = "nexus_recovery_events_total";
/// Gauge: entity leases held (one per entity that owns its stream under a lease).
pub const LEASES_HELD: &str = "nexus_leases_held";
/// Counter: entity leases lost while held (revoked, expired, or fenced off by the store).
pub const LEASES_LOST: &str = "nexus_leases_lost_total";
/// Counter: lease acquisitions refused (held elsewhere, or the backend failed).
pub const LEASE_REFUSALS: &str = "nexus_lease_refusals_total";
/// Gauge: shards a lease implementation holds in this process (`nexus-store-pg`'s `PgLease`).
pub const LEASE_SHARDS_HELD: &str = "nexus_lease_shards_held";
/// Counter: shards whose lease the database no longer had at renewal.
pub const LEASE_SHARDS_LOST: &str = "nexus_lease_shards_lost_total";
/// Counter: events a projection delivered to its sink, by `projection`.
pub const PROJECTION_EVENTS: &str = "nexus_projection_events_total";
/// Counter: batches a projection delivered, by `projection`.
pub const PROJECTION_BATCHES: &str = "nexus_projection_batches_total";
/// Gauge: committed events a projection has not delivered yet, by
/// `projection`. Measured by the store's probe (none: not set) whenever the
/// projection has drained the log, and at most once a second while it is
/// catching up.
pub const PROJECTION_LAG_EVENTS: &str = "nexus_projection_lag_events";
/// Gauge (seconds): age of the newest event a projection delivered when it
/// delivered it; 0 once drained. With a probe, the age of the oldest
/// undelivered event when drained but held back.
pub const PROJECTION_LAG_SECONDS: &str = "nexus_projection_lag_seconds";
/// Gauge (seconds): how long committed events have waited behind a held log
/// horizon (0 when nothing waits).
pub const HORIZON_HELD_SECONDS: &str = "nexus_log_horizon_held_seconds";
/// Counter: held horizons reported (past `horizon_warn_after`).
pub const HORIZON_STALLS: &str = "nexus_log_horizon_stalls_total";

/// The values of the `outcome` label of [`COMMANDS`]: answered `ok`,
/// `rejected` by the aggregate, failed on a `conflict`, `not_owner` (a
/// lease held elsewhere) or another `error`; `full` when refused at the
/// send, never enqueued (the mailbox is full, or the limit of active
/// entities is reached with none idle, under `WhenFull::Fail`); and
/// `shutting_down` when refused at the send or answered so by a system
/// shutting down.
pub const OUTCOMES: [&str; 7] = [
    "ok",
    "rejected",
    "conflict",
    "not_owner",
    "error",
    "full",
    "shutting_down",
];
