//! Design B: one entity per seat. The seat's mailbox orders the buyers, so
//! the second buyer reads "already reserved" from memory; nothing retries
//! unless another process wrote the same stream.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::telemetry::{InMemoryRecorder, names};
use nexus_core::{ActorSystem, Aggregate, Entities, EntityError, EventStore, StreamId};

use super::buyers::{Fired, buyer_name, fire};
use super::error::BakeoffError;
use crate::domain::seat::{Reserve, Seat, SeatError, SeatEvent};

/// The entity id of `seat` in run `run`: runs never share a stream.
///
/// ```
/// use nexus_examples::bakeoff::seat_id;
/// assert_eq!(seat_id("r1", 7), "r1-7");
/// ```
pub fn seat_id(run: &str, seat: usize) -> String {
    format!("{run}-{seat}")
}

/// A buyer's answer from its seat.
type Answer = Result<(), EntityError<SeatError>>;

/// Fires one reservation per buyer at its seat's entity, all at once, and
/// returns the buyers' latencies with the conflicts the runtime retried.
pub async fn run_buyers(
    store: Arc<dyn EventStore>,
    run: &str,
    choices: &[usize],
) -> Result<(Fired<Answer>, u64), BakeoffError> {
    // Every conflict the store refuses is one retry of the runtime, which
    // counts it in `nexus_conflicts_total`, read from a local recorder.
    let recorder = InMemoryRecorder::new();
    let system = ActorSystem::new();
    let builder = Entities::<Seat>::builder(&system)
        .event_sourced(store, EventCodec::new(Json))
        .group_commit(64);
    let seats = metrics::with_local_recorder(&recorder, || builder.build())?;
    let fired = fire(choices, |buyer, seat| {
        let entity = seats.of(seat_id(run, seat));
        async move {
            entity
                .ask(Reserve {
                    buyer: buyer_name(buyer),
                })
                .await
        }
    })
    .await;
    system.shutdown(Duration::from_secs(5)).await;
    let fired = fired?;
    // Losing the seat is an answer; anything else means the run is void.
    for answer in &fired.answers {
        match answer {
            Ok(()) | Err(EntityError::Rejected(SeatError::AlreadyReserved { .. })) => {}
            Err(other) => return Err(BakeoffError::Reservation(other.to_string())),
        }
    }
    let seat = [("aggregate", Seat::NAME)];
    let conflicts = recorder.counter(names::CONFLICTS, &seat);
    // Where a buyer's wait goes: its seat's recovery (pool wait included),
    // then the batch's append; both are means over the seats.
    let (recoveries, recovering) = recorder.histogram(names::RECOVERY_DURATION, &seat);
    let (appends, appending) = recorder.histogram(names::APPEND_DURATION, &seat);
    let (batches, batch_commands) = recorder.histogram(names::BATCH_SIZE, &seat);
    #[allow(clippy::cast_precision_loss)]
    let mean = |sum: f64, n: u64| sum / n.max(1) as f64;
    tracing::info!(
        recoveries,
        recovery_ms = mean(recovering, recoveries) * 1e3,
        appends,
        append_ms = mean(appending, appends) * 1e3,
        batch = mean(batch_commands, batches),
        "actor design: where the time went"
    );
    Ok((fired, conflicts))
}

/// Reads every seat's stream back from the store: how many seats ended with
/// a holder, and how many were reserved twice without a release between.
pub async fn count_from_store(
    store: &dyn EventStore,
    run: &str,
    seats: usize,
) -> Result<(u64, u64), BakeoffError> {
    let codec = EventCodec::<SeatEvent>::new(Json);
    let (mut winners, mut doubled) = (0, 0);
    for seat in 0..seats {
        // The stream the runtime gave the entity (`Entities::of` documents it).
        let stream = StreamId::for_entity(Seat::NAME, &seat_id(run, seat));
        let mut held = false;
        let mut double = false;
        for recorded in store.read_stream(&stream, 1).await? {
            match codec.decode(&recorded)? {
                SeatEvent::Reserved { .. } => {
                    double |= held;
                    held = true;
                }
                SeatEvent::Released { .. } => held = false,
            }
        }
        winners += u64::from(held);
        doubled += u64::from(double);
    }
    Ok((winners, doubled))
}

#[cfg(test)]
mod tests {
    use nexus_core::store::memory::InMemoryEventStore;
    use nexus_core::{EventMetadata, ExpectedVersion};

    use super::*;

    fn reserved(buyer: &str) -> SeatEvent {
        SeatEvent::Reserved {
            buyer: buyer.into(),
        }
    }

    fn released(buyer: &str) -> SeatEvent {
        SeatEvent::Released {
            buyer: buyer.into(),
        }
    }

    /// Writes `events` straight into seat `seat`'s stream, past the entity,
    /// as a second writer would.
    async fn write(store: &InMemoryEventStore, seat: usize, events: &[SeatEvent]) {
        let codec = EventCodec::<SeatEvent>::new(Json);
        let events: Vec<_> = events
            .iter()
            .map(|e| codec.encode(e, EventMetadata::new()).unwrap())
            .collect();
        let stream = StreamId::for_entity(Seat::NAME, &seat_id("r", seat));
        store
            .append(&stream, ExpectedVersion::Any, &events)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_store_count_sees_a_double_booking_and_a_resale() {
        let store = InMemoryEventStore::new();
        // Seat 0: booked twice; seat 1: sold, released, sold again; seat 2:
        // released and empty; seat 3: never touched.
        write(&store, 0, &[reserved("ada"), reserved("bob")]).await;
        write(
            &store,
            1,
            &[reserved("ada"), released("ada"), reserved("bob")],
        )
        .await;
        write(&store, 2, &[reserved("ada"), released("ada")]).await;
        assert_eq!(count_from_store(&store, "r", 4).await.unwrap(), (2, 1));
        // Another run's streams are not counted.
        assert_eq!(count_from_store(&store, "other", 4).await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn entities_write_the_streams_the_count_reads() {
        let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
        let choices = [0, 0, 2, 0, 2, 3];
        let (fired, retries) = run_buyers(Arc::clone(&store), "r", &choices).await.unwrap();
        assert_eq!(fired.latencies.len(), choices.len());
        assert_eq!(fired.answers.iter().filter(|a| a.is_ok()).count(), 3);
        assert_eq!(retries, 0);
        assert_eq!(count_from_store(&*store, "r", 4).await.unwrap(), (3, 0));
    }
}
