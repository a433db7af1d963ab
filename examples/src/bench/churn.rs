//! `mem_entity_churn`: 100,000 distinct ids touched once each through an
//! entity type limited to 10,000 live entities, on a store that keeps
//! nothing, so that what memory the process holds is the runtime's.
//!
//! Reports `live_entities_max` (sampled all along), `rss_mb_before` (after
//! the first 10,000 entities are live) and `rss_mb_after`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::{
    ActorSystem, AppendOutcome, Entities, EventStore, ExpectedVersion, LogPosition, NewEvent,
    RecordedEvent, StoreError, StreamId,
};
use serde_json::json;

use super::{Add, Tally, emit};

/// Distinct ids touched.
const IDS: usize = 100_000;
/// The limit of live entities.
const LIMIT: usize = 10_000;
/// Concurrent callers.
const CALLERS: usize = 32;

/// Accepts every append and stores nothing: every stream reads as empty.
struct NullStore;

#[async_trait]
impl EventStore for NullStore {
    async fn append(
        &self,
        _: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        Ok(AppendOutcome {
            version: expected.pinned().unwrap_or(0) + events.len() as u64,
            positions: Vec::new(),
        })
    }

    async fn read_stream(&self, _: &StreamId, _: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(Vec::new())
    }

    async fn read_all(&self, _: LogPosition, _: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(Vec::new())
    }

    async fn stream_version(&self, _: &StreamId) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// The resident set size of this process in MiB, from `/proc/self/statm`
/// (0 where there is none).
fn rss_mb() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let mb = (pages * 4096) as f64 / (1024.0 * 1024.0);
    mb
}

/// Touches `ids` once each from `CALLERS` tasks.
async fn touch(tallies: &Entities<Tally>, ids: std::ops::Range<usize>) {
    let ids = Arc::new(ids.collect::<Vec<_>>());
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let (tallies, ids) = (tallies.clone(), Arc::clone(&ids));
            tokio::spawn(async move {
                for id in ids.iter().skip(caller).step_by(CALLERS) {
                    tallies
                        .of(format!("t{id}"))
                        .ask(Add(1))
                        .await
                        .expect("an ask on a store that keeps nothing succeeds");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller finishes");
    }
}

/// Runs `mem_entity_churn`, printing one line.
pub async fn run() {
    let system = ActorSystem::new();
    let tallies = Entities::<Tally>::builder(&system)
        .event_sourced(Arc::new(NullStore), EventCodec::new(Bincode))
        .sole_writer()
        .max_active_entities(LIMIT)
        .ask_timeout(Duration::from_secs(60))
        .build()
        .expect("the benchmark's options are valid");
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (tallies, most, done) = (tallies.clone(), Arc::clone(&most), Arc::clone(&done));
        async move {
            while !done.load(Ordering::Relaxed) {
                most.fetch_max(tallies.live(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    touch(&tallies, 0..LIMIT).await;
    let before = rss_mb();
    let started = std::time::Instant::now();
    touch(&tallies, LIMIT..IDS).await;
    let elapsed = started.elapsed();
    let after = rss_mb();
    done.store(true, Ordering::Relaxed);
    sampler.await.expect("the sampler finishes");
    let live_max = most.load(Ordering::Relaxed).max(tallies.live());
    assert!(live_max <= LIMIT, "{live_max} live entities, limit {LIMIT}");
    #[allow(clippy::cast_precision_loss)]
    let per_second = (IDS - LIMIT) as f64 / elapsed.as_secs_f64();
    emit(
        "mem_entity_churn",
        json!({
            "ids": IDS,
            "limit": LIMIT,
            "live_entities_max": live_max,
            "entities_started": tallies.started(),
            "rss_mb_before": before,
            "rss_mb_after": after,
            "new_ids_per_s": per_second,
        }),
    );
    system.shutdown(Duration::from_secs(10)).await;
}
