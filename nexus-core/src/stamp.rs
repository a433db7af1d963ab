//! When a batch's events were made: the wall clock, read once per batch.
//!
//! Guarantee: every event a batch writes carries the batch's time, and each
//! fresh event id (version 7) is made from that time through one counter
//! shared by the process, so the ids the runtime and `EventMetadata::new`
//! make are unique and strictly increasing in the order they are made.
//! That counter is not [`Uuid::now_v7`]'s (uuid keeps its own private): ids
//! a caller makes with `Uuid::now_v7` in the same millisecond are not
//! ordered against these.
//!
//! Why once per batch: each event used to read the clock twice (its
//! timestamp, and again for its id), and with the ask's own readings that
//! was a tenth of the hot-entity workload's profile. A batch's events are
//! decided together, within microseconds, so one reading names them all.

use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::{ClockSequence, ContextV7, Timestamp, Uuid};

/// The counter behind every fresh event id of the process: within one
/// millisecond it counts up, so the ids of one batch, and of batches made
/// in the same millisecond, keep the order they were made in.
static FRESH_IDS: FreshIds = FreshIds(Mutex::new(ContextV7::new()));

/// [`ContextV7`] shared behind a lock, taken once per id (uuid's own
/// `Mutex` context takes it a second time, to read the counter's width).
struct FreshIds(Mutex<ContextV7>);

impl ClockSequence for FreshIds {
    type Output = u64;

    fn generate_sequence(&self, seconds: u64, subsec_nanos: u32) -> u64 {
        self.generate_timestamp_sequence(seconds, subsec_nanos).0
    }

    fn generate_timestamp_sequence(&self, seconds: u64, subsec_nanos: u32) -> (u64, u64, u32) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generate_timestamp_sequence(seconds, subsec_nanos)
    }

    fn usable_bits(&self) -> usize {
        // The width is the same for every context: a fresh one tells it.
        ContextV7::new().usable_bits()
    }
}

/// One reading of the wall clock, for the events of one batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp {
    at: SystemTime,
    seconds: u64,
    subsec_nanos: u32,
}

impl Stamp {
    /// Reads the clock.
    pub(crate) fn now() -> Self {
        let at = SystemTime::now();
        // A clock set before 1970 gives ids of 1970; the timestamp itself
        // is kept as read.
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            at,
            seconds: since.as_secs(),
            subsec_nanos: since.subsec_nanos(),
        }
    }

    /// The time read.
    pub(crate) fn at(&self) -> SystemTime {
        self.at
    }

    /// A fresh time-ordered event id of this time, greater than every id
    /// a stamp made before it in this process.
    pub(crate) fn fresh_id(&self) -> Uuid {
        Uuid::new_v7(Timestamp::from_unix(
            &FRESH_IDS,
            self.seconds,
            self.subsec_nanos,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::Stamp;

    #[test]
    fn ids_of_one_stamp_and_of_stamps_read_out_of_order_keep_increasing() {
        let earlier = Stamp::now();
        let later = Stamp::now();
        let mut ids = Vec::new();
        for _ in 0..1_000 {
            ids.push(later.fresh_id());
        }
        // A stamp read earlier but used later still gives a greater id.
        ids.push(earlier.fresh_id());
        ids.push(crate::EventMetadata::new().event_id);
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(
            ids.iter()
                .all(|id| id.get_version() == Some(uuid::Version::SortRand))
        );
        // Other tests share the counter and may have moved its time on a
        // little; never back.
        let time_of = |id: &uuid::Uuid| {
            let (seconds, nanos) = id.get_timestamp().unwrap().to_unix();
            std::time::Duration::new(seconds, nanos)
        };
        let read = later.at().duration_since(std::time::UNIX_EPOCH).unwrap();
        let carried = time_of(&ids[0]);
        assert!(
            carried + std::time::Duration::from_millis(1) > read
                && carried < read + std::time::Duration::from_secs(5),
            "the id carries the stamp's time: {carried:?} against {read:?}"
        );
    }
}
