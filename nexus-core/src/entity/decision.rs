//! Deciding a batch: each command in order against the state the previous
//! one left, its events encoded before they are applied.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::builder::Settings;
use super::message::{Decided, Message, panic_message};
use super::persistence::Loaded;
use crate::stamp::Stamp;
use crate::{Aggregate, CodecError, NewEvent};

type Boxed<A> = Box<dyn Message<A>>;

/// The most spare events a decision keeps: a batch of more events than this
/// allocates for the rest, as a first batch does.
const SPARE_EVENTS: usize = 64;
/// The most payload bytes the spares of one entity hold, together: what a
/// live entity keeps for its next batch stays small beside its state, with
/// thousands of entities live.
const SPARE_BYTES: usize = 8 * 1024;

/// What a batch decided.
#[derive(Default)]
pub(crate) struct Decision {
    /// The batch's events, encoded, in order (event-sourced entities): the
    /// very batch every send of the write hands the store, a re-send after
    /// a lost answer included.
    pub(crate) encoded: Vec<NewEvent>,
    /// Encoded events of earlier batches, kept for their buffers: the next
    /// batch encodes into them instead of allocating.
    pub(crate) spare: Vec<NewEvent>,
    /// Per command of the batch, in order: how many events it wrote. Its
    /// events follow those of the commands before it.
    pub(crate) counts: Vec<usize>,
    /// Commands whose events did not encode: answered with the error, their
    /// events neither applied nor written.
    pub(crate) unencodable: Vec<(usize, CodecError)>,
    pub(crate) snapshot_due: bool,
    pub(crate) stop: bool,
}

impl Decision {
    /// The same decision emptied, its buffers kept: a batch decided with it
    /// allocates only what outgrows the batches before.
    fn cleared(mut self) -> Self {
        keep_spares(&mut self.spare, self.encoded.drain(..));
        self.counts.clear();
        self.unencodable.clear();
        self.snapshot_due = false;
        self.stop = false;
        self
    }

    /// How many events the batch writes.
    pub(crate) fn events(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// Keeps `events` as spares, for their buffers, up to [`SPARE_EVENTS`]
/// events and [`SPARE_BYTES`] of payload buffers in all; their headers are
/// let go now rather than with the next batch.
pub(crate) fn keep_spares(spare: &mut Vec<NewEvent>, events: impl Iterator<Item = NewEvent>) {
    let mut bytes: usize = spare.iter().map(|e| e.payload.capacity()).sum();
    for mut event in events {
        let room = bytes + event.payload.capacity() <= SPARE_BYTES;
        if spare.len() < SPARE_EVENTS && room {
            bytes += event.payload.capacity();
            event.metadata.headers.clear();
            spare.push(event);
        }
    }
}

/// A handler, `apply`, a codec or a reply panicked on the command at
/// `index`; the state may be half-applied.
pub(crate) struct Panicked {
    pub(crate) index: usize,
    pub(crate) message: String,
}

/// Decides every command of the batch in order against `live`. Each
/// accepted command's events are encoded first and, only if they all
/// encode, applied before the next command is decided; a command whose
/// events do not encode is set aside with its error and changes nothing.
/// Every event of the batch carries one reading of the clock ([`Stamp`]).
pub(crate) fn decide_batch<A: Aggregate>(
    batch: &mut [Boxed<A>],
    live: &mut Loaded<A>,
    settings: &Settings<A>,
    recycled: Decision,
) -> Result<Decision, Panicked> {
    let persistence = &settings.persistence;
    let mut decision = recycled.cleared();
    decision.counts.reserve(batch.len());
    let stamp = Stamp::now();
    let mut version = live.version;
    for (index, message) in batch.iter_mut().enumerate() {
        let decided = catch_unwind(AssertUnwindSafe(|| {
            let Decided::Accepted { events, stop } = message.decide(&live.state, version) else {
                return Ok(None);
            };
            persistence.encode_events(
                events.as_slice(),
                message.options(),
                &stamp,
                &mut decision.encoded,
                &mut decision.spare,
            )?;
            for event in events.as_slice() {
                live.state.apply(event);
                version += 1;
                decision.snapshot_due |= persistence.snapshot_due(&live.state, event, version);
            }
            message.prepare_reply(&live.state);
            Ok(Some((events.as_slice().len(), stop)))
        }));
        match decided {
            Ok(Ok(Some((count, stop)))) => {
                decision.counts.push(count);
                decision.stop |= stop;
            }
            Ok(Ok(None)) => decision.counts.push(0),
            Ok(Err(error)) => {
                decision.counts.push(0);
                decision.unencodable.push((index, error));
            }
            Err(panic) => {
                return Err(Panicked {
                    index,
                    message: panic_message(&*panic),
                });
            }
        }
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{SPARE_BYTES, SPARE_EVENTS, keep_spares};
    use crate::NewEvent;
    use crate::codec::{EventCodec, Json};
    use crate::entity::command_options::{CommandOptions, derived_event_id};
    use crate::entity::persistence::Persistence;
    use crate::stamp::Stamp;
    use crate::store::memory::InMemoryEventStore;
    use crate::testkit::doc::{Counter, CounterEvent};

    fn persistence() -> Persistence<Counter> {
        Persistence::EventSourced {
            store: Arc::new(InMemoryEventStore::new()),
            codec: EventCodec::new(Json),
            snapshots: None,
        }
    }

    #[test]
    fn a_batch_s_events_share_its_time_and_get_ascending_fresh_ids_or_their_command_s() {
        let stamp = Stamp::now();
        let events = [
            CounterEvent::Added(1),
            CounterEvent::Added(2),
            CounterEvent::Added(3),
        ];
        let mut fresh = Vec::new();
        persistence()
            .encode_events(
                &events,
                &CommandOptions::new(),
                &stamp,
                &mut fresh,
                &mut vec![],
            )
            .unwrap();
        let command = uuid::Uuid::now_v7();
        let mut derived = Vec::new();
        persistence()
            .encode_events(
                &events,
                &CommandOptions::new().command_id(command),
                &stamp,
                &mut derived,
                &mut vec![],
            )
            .unwrap();
        assert!(
            fresh
                .iter()
                .chain(&derived)
                .all(|e| e.metadata.timestamp == stamp.at())
        );
        assert!(
            fresh
                .windows(2)
                .all(|w| w[0].metadata.event_id < w[1].metadata.event_id)
        );
        for (index, event) in derived.iter().enumerate() {
            assert_eq!(event.metadata.event_id, derived_event_id(command, index));
        }
    }

    fn spare_with_room(bytes: usize) -> NewEvent {
        NewEvent::new(String::with_capacity(32), 1, Vec::with_capacity(bytes))
    }

    #[test]
    fn a_batch_encodes_into_the_buffers_of_the_batch_before() {
        let mut spare = vec![spare_with_room(64), spare_with_room(64)];
        let buffers: Vec<*const u8> = spare.iter().rev().map(|e| e.payload.as_ptr()).collect();
        let mut encoded = Vec::new();
        let events = [CounterEvent::Added(7), CounterEvent::Added(8)];
        persistence()
            .encode_events(
                &events,
                &CommandOptions::new(),
                &Stamp::now(),
                &mut encoded,
                &mut spare,
            )
            .unwrap();
        assert!(spare.is_empty(), "both spares were used");
        let reused: Vec<*const u8> = encoded.iter().map(|e| e.payload.as_ptr()).collect();
        assert_eq!(
            reused, buffers,
            "each event went into a spare's payload buffer"
        );
        assert_eq!(encoded[1].payload, br#"{"Added":8}"#);
        assert_eq!(
            (encoded[0].event_type.as_str(), encoded[0].schema_version),
            ("counter.added", 1)
        );
        let ids = (encoded[0].metadata.event_id, encoded[1].metadata.event_id);
        assert_ne!(ids.0, ids.1, "each reused event gets its own metadata");

        // More events than spares: the rest is allocated, as a first batch's.
        let mut more = Vec::new();
        persistence()
            .encode_events(
                &events,
                &CommandOptions::new(),
                &Stamp::now(),
                &mut more,
                &mut vec![],
            )
            .unwrap();
        assert_eq!(more.len(), 2);
    }

    #[test]
    fn spares_are_kept_up_to_a_count_and_a_byte_budget() {
        let mut spare = Vec::new();
        let outsized = spare_with_room(SPARE_BYTES + 1);
        keep_spares(&mut spare, std::iter::once(outsized));
        assert!(spare.is_empty(), "an outsized payload buffer is let go");
        keep_spares(
            &mut spare,
            (0..SPARE_EVENTS + 10).map(|_| spare_with_room(16)),
        );
        assert_eq!(spare.len(), SPARE_EVENTS, "small buffers up to the count");
        spare.clear();
        let half = SPARE_BYTES / 2;
        keep_spares(&mut spare, (0..3).map(|_| spare_with_room(half)));
        assert_eq!(spare.len(), 2, "large buffers up to the byte budget");
        assert!(spare.iter().map(|e| e.payload.capacity()).sum::<usize>() <= SPARE_BYTES);
    }
}
