//! The handles one aggregate type records through, registered once when its
//! `Entities` is built, so that the hot path never builds a key or looks a
//! metric up: with no recorder installed each handle is a no-op.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Unit};

use super::names;

/// How a command was answered: the `outcome` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommandOutcome {
    Ok,
    Rejected,
    Conflict,
    NotOwner,
    Error,
    /// Refused at the send: no room in the mailbox or under the limit of
    /// active entities.
    Full,
    /// Refused at the send: the system or the registry is shutting down.
    ShuttingDown,
}

impl CommandOutcome {
    pub(crate) fn label(self) -> &'static str {
        names::OUTCOMES[self as usize]
    }
}

/// Every metric of one aggregate type.
pub(crate) struct EntityMetrics {
    commands: [Counter; 7],
    duration: Histogram,
    conflicts: Counter,
    retries: Counter,
    batch_size: Histogram,
    mailbox_depth: Histogram,
    appends: Counter,
    events_appended: Counter,
    append_duration: Histogram,
    active: Gauge,
    starts: Counter,
    passivations: Counter,
    stops: Counter,
    restarts: Counter,
    recoveries_from_snapshot: Counter,
    recoveries_from_origin: Counter,
    recovery_duration: Histogram,
    recovery_events: Counter,
    leases_held: Gauge,
    leases_lost: Counter,
    lease_refusals: Counter,
}

impl EntityMetrics {
    /// Registers the metrics of `aggregate` with the recorder in effect now
    /// (the thread's local one, else the global one, else none).
    pub(crate) fn register(aggregate: &'static str) -> Self {
        describe();
        let counter = |name: &'static str| metrics::counter!(name, "aggregate" => aggregate);
        let histogram = |name: &'static str| metrics::histogram!(name, "aggregate" => aggregate);
        let gauge = |name: &'static str| metrics::gauge!(name, "aggregate" => aggregate);
        let outcome = |outcome: CommandOutcome| metrics::counter!(names::COMMANDS, "aggregate" => aggregate, "outcome" => outcome.label());
        let recoveries = |from: &'static str| metrics::counter!(names::RECOVERIES, "aggregate" => aggregate, "from" => from);
        Self {
            commands: [
                outcome(CommandOutcome::Ok),
                outcome(CommandOutcome::Rejected),
                outcome(CommandOutcome::Conflict),
                outcome(CommandOutcome::NotOwner),
                outcome(CommandOutcome::Error),
                outcome(CommandOutcome::Full),
                outcome(CommandOutcome::ShuttingDown),
            ],
            duration: histogram(names::COMMAND_DURATION),
            conflicts: counter(names::CONFLICTS),
            retries: counter(names::RETRIES),
            batch_size: histogram(names::BATCH_SIZE),
            mailbox_depth: histogram(names::MAILBOX_DEPTH),
            appends: counter(names::APPENDS),
            events_appended: counter(names::EVENTS_APPENDED),
            append_duration: histogram(names::APPEND_DURATION),
            active: gauge(names::ENTITIES_ACTIVE),
            starts: counter(names::ENTITY_STARTS),
            passivations: counter(names::PASSIVATIONS),
            stops: counter(names::STOPS),
            restarts: counter(names::RESTARTS),
            recoveries_from_snapshot: recoveries("snapshot"),
            recoveries_from_origin: recoveries("origin"),
            recovery_duration: histogram(names::RECOVERY_DURATION),
            recovery_events: counter(names::RECOVERY_EVENTS),
            leases_held: gauge(names::LEASES_HELD),
            leases_lost: counter(names::LEASES_LOST),
            lease_refusals: counter(names::LEASE_REFUSALS),
        }
    }

    /// A command was answered `outcome`, `took` after it was sent.
    pub(crate) fn command(&self, outcome: CommandOutcome, took: Duration) {
        self.commands[outcome as usize].increment(1);
        self.duration.record(took);
    }

    /// An entity took a batch of `size` commands, `depth` messages being
    /// queued with it.
    pub(crate) fn batch(&self, size: usize, depth: usize) {
        self.batch_size.record(count(size));
        self.mailbox_depth.record(count(depth));
    }

    pub(crate) fn appended(&self, events: usize, took: Duration) {
        self.appends.increment(1);
        self.events_appended.increment(events as u64);
        self.append_duration.record(took);
    }

    pub(crate) fn conflict(&self) {
        self.conflicts.increment(1);
    }

    pub(crate) fn retry(&self) {
        self.retries.increment(1);
    }

    pub(crate) fn entity_added(&self) {
        self.active.increment(1.0);
        self.starts.increment(1);
    }

    pub(crate) fn entity_removed(&self) {
        self.active.decrement(1.0);
    }

    pub(crate) fn passivated(&self) {
        self.passivations.increment(1);
    }

    pub(crate) fn stopped(&self) {
        self.stops.increment(1);
    }

    pub(crate) fn restarted(&self) {
        self.restarts.increment(1);
    }

    pub(crate) fn recovered(&self, from_snapshot: bool, events: u64, took: Duration) {
        if from_snapshot {
            self.recoveries_from_snapshot.increment(1);
        } else {
            self.recoveries_from_origin.increment(1);
        }
        self.recovery_events.increment(events);
        self.recovery_duration.record(took);
    }

    pub(crate) fn lease_acquired(&self) {
        self.leases_held.increment(1.0);
    }

    pub(crate) fn lease_released(&self) {
        self.leases_held.decrement(1.0);
    }

    pub(crate) fn lease_lost(&self) {
        self.leases_lost.increment(1);
    }

    pub(crate) fn lease_refused(&self) {
        self.lease_refusals.increment(1);
    }
}

#[allow(clippy::cast_precision_loss)]
fn count(n: usize) -> f64 {
    n as f64
}

/// Units and help texts, for exporters that print them (Prometheus' `# HELP`).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        names::COMMANDS,
        "Commands answered or refused at the send, by aggregate and outcome"
    );
    describe_histogram!(
        names::COMMAND_DURATION,
        Unit::Seconds,
        "From a command's send to its answer"
    );
    describe_counter!(
        names::CONFLICTS,
        "Appends refused because another writer moved the stream"
    );
    describe_counter!(names::RETRIES, "Batches decided again on reloaded state");
    describe_histogram!(
        names::BATCH_SIZE,
        Unit::Count,
        "Commands per batch (group commit)"
    );
    describe_histogram!(
        names::MAILBOX_DEPTH,
        Unit::Count,
        "Messages queued when an entity took a batch"
    );
    describe_counter!(names::APPENDS, "Writes committed");
    describe_counter!(names::EVENTS_APPENDED, "Events committed");
    describe_histogram!(names::APPEND_DURATION, Unit::Seconds, "One batch's write");
    describe_gauge!(names::ENTITIES_ACTIVE, "Entities live in memory");
    describe_counter!(names::ENTITY_STARTS, "Entity actors started");
    describe_counter!(names::PASSIVATIONS, "Entities passivated (idle or evicted)");
    describe_counter!(names::STOPS, "Entities stopped");
    describe_counter!(names::RESTARTS, "Entity restarts after a failure");
    describe_counter!(
        names::RECOVERIES,
        "Recoveries, from a snapshot or the origin"
    );
    describe_histogram!(names::RECOVERY_DURATION, Unit::Seconds, "One recovery");
    describe_counter!(names::RECOVERY_EVENTS, "Events replayed by recoveries");
    describe_gauge!(names::LEASES_HELD, "Entity leases held");
    describe_counter!(names::LEASES_LOST, "Entity leases lost while held");
    describe_counter!(names::LEASE_REFUSALS, "Lease acquisitions refused");
}
