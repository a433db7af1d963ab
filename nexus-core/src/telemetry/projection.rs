//! The handles one projection records through, registered when it is spawned.

use std::time::Duration;

use metrics::{Counter, Gauge, Unit};

use super::names;

pub(crate) struct ProjectionMetrics {
    events: Counter,
    batches: Counter,
    lag_events: Gauge,
    lag_seconds: Gauge,
    horizon_held: Gauge,
    horizon_stalls: Counter,
}

impl ProjectionMetrics {
    pub(crate) fn register(projection: &str) -> Self {
        describe();
        let projection = projection.to_owned();
        Self {
            events: metrics::counter!(names::PROJECTION_EVENTS, "projection" => projection.clone()),
            batches: metrics::counter!(names::PROJECTION_BATCHES, "projection" => projection.clone()),
            lag_events: metrics::gauge!(names::PROJECTION_LAG_EVENTS, "projection" => projection.clone()),
            lag_seconds: metrics::gauge!(names::PROJECTION_LAG_SECONDS, "projection" => projection.clone()),
            horizon_held: metrics::gauge!(names::HORIZON_HELD_SECONDS, "projection" => projection.clone()),
            horizon_stalls: metrics::counter!(names::HORIZON_STALLS, "projection" => projection),
        }
    }

    /// A batch of `events` was delivered; the newest was recorded `age` ago.
    pub(crate) fn delivered(&self, events: usize, age: Duration) {
        self.batches.increment(1);
        self.events.increment(events as u64);
        self.lag_seconds.set(age.as_secs_f64());
    }

    /// The lag as the store's probe measured it.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn lag(&self, events: u64, seconds: f64) {
        self.lag_events.set(events as f64);
        self.lag_seconds.set(seconds);
    }

    /// The log is drained: nothing waits.
    pub(crate) fn drained(&self) {
        self.lag_events.set(0.0);
        self.lag_seconds.set(0.0);
    }

    /// Committed events have waited `held` behind the horizon (zero: none wait).
    pub(crate) fn horizon_held(&self, held: Duration) {
        self.horizon_held.set(held.as_secs_f64());
    }

    pub(crate) fn horizon_stalled(&self) {
        self.horizon_stalls.increment(1);
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(names::PROJECTION_EVENTS, "Events a projection delivered");
    describe_counter!(names::PROJECTION_BATCHES, "Batches a projection delivered");
    describe_gauge!(
        names::PROJECTION_LAG_EVENTS,
        Unit::Count,
        "Committed events not delivered yet"
    );
    describe_gauge!(
        names::PROJECTION_LAG_SECONDS,
        Unit::Seconds,
        "Age of the events a projection delivers"
    );
    describe_gauge!(
        names::HORIZON_HELD_SECONDS,
        Unit::Seconds,
        "How long committed events have waited behind a held log horizon"
    );
    describe_counter!(names::HORIZON_STALLS, "Held log horizons reported");
}
