//! Design B: one entity per seat. The seat's mailbox orders the buyers, so
//! the second buyer reads "already reserved" from memory; nothing retries
//! unless another process wrote the same stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_core::codec::{EventCodec, Json};
use nexus_core::{ActorSystem, Entities, EntityError, EventStore, StoreError, StreamId};

use super::run::BakeoffError;
use crate::conflict_counter::ConflictCounter;
use crate::domain::seat::{Reserve, Seat, SeatError, SeatEvent};

/// The entity id of `seat` in run `run`: runs never share a stream.
pub fn seat_id(run: &str, seat: usize) -> String {
    format!("{run}-{seat}")
}

/// What the buyers of the actor design saw.
pub struct ActorOutcome {
    /// Each buyer's reservation latency.
    pub latencies: Vec<Duration>,
    /// Appends the store refused with a conflict.
    pub retries: u64,
    /// From the first request to the last answer.
    pub wall: Duration,
}

/// Fires one reservation per buyer at its seat's entity, all at once.
pub async fn run_buyers(
    store: Arc<dyn EventStore>,
    run: &str,
    choices: &[usize],
) -> Result<ActorOutcome, BakeoffError> {
    let counter = Arc::new(ConflictCounter::new(store));
    let system = ActorSystem::new();
    let seats = Entities::<Seat>::builder(&system)
        .event_sourced(counter.clone(), EventCodec::new(Json))
        .mailbox_capacity(choices.len().max(1))
        .group_commit(64)
        .build()
        .map_err(|e| BakeoffError::Setup(e.to_string()))?;
    let started = Instant::now();
    let mut buyers = Vec::with_capacity(choices.len());
    for (buyer, &seat) in choices.iter().enumerate() {
        let entity = seats.of(seat_id(run, seat));
        buyers.push(tokio::spawn(async move {
            let asked = Instant::now();
            let outcome = entity
                .ask(Reserve {
                    buyer: format!("buyer-{buyer}"),
                })
                .await;
            (outcome, asked.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(choices.len());
    for buyer in buyers {
        let (outcome, latency) = buyer
            .await
            .map_err(|e| BakeoffError::Buyer(e.to_string()))?;
        match outcome {
            Ok(()) | Err(EntityError::Rejected(SeatError::AlreadyReserved { .. })) => {}
            Err(other) => return Err(BakeoffError::Buyer(other.to_string())),
        }
        latencies.push(latency);
    }
    let wall = started.elapsed();
    system.shutdown(Duration::from_secs(5)).await;
    Ok(ActorOutcome {
        latencies,
        retries: counter.conflicts(),
        wall,
    })
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
        let stream = StreamId::for_entity("seat", &seat_id(run, seat));
        let mut held = false;
        let mut double = false;
        for recorded in store
            .read_stream(&stream, 1)
            .await
            .map_err(BakeoffError::Store)?
        {
            match codec.decode(&recorded).map_err(|e| {
                BakeoffError::Store(StoreError::Backend {
                    source: Box::new(e),
                })
            })? {
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
