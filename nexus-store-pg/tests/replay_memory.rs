//! Recovery memory is bounded by the driver's row buffer, not by the stream: a
//! stream of a million events recovers with a peak resident set a small
//! fraction of what the whole-tail read (`read_stream_for_replay`) takes.
//!
//! A test binary of its own with one test, so the process's peak resident
//! set (`VmHWM`, reset through `/proc/self/clear_refs`) is this test's
//! alone: the workspace forbids `unsafe`, so a counting allocator is not an
//! option.

mod common;

use std::time::{Duration, Instant};

use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::testkit::doc::{Counter, CounterEvent};
use nexus_core::{EventMetadata, EventStore, StreamId, recover};
use nexus_store_pg::PgEventStore;

const EVENTS: i64 = 1_000_000;

/// A field of `/proc/self/status`, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Resets the peak resident set to the current one and returns it, in kB.
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM through clear_refs");
    status_kb("VmRSS")
}

/// How far the peak resident set rose above `base` while `work` ran, in kB.
async fn peak_growth<T>(work: impl Future<Output = T>) -> (T, u64) {
    let base = reset_peak();
    let out = work.await;
    (out, status_kb("VmHWM").saturating_sub(base))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_event_stream_recovers_in_bounded_memory() {
    let config = common::fresh_config().await;
    let schema = config.schema_name().as_str().to_owned();
    let codec = EventCodec::<CounterEvent>::new(Bincode);
    let event = codec
        .encode(&CounterEvent::Added(1), EventMetadata::new())
        .unwrap();
    let stream = StreamId::for_entity("counter", "million");
    let seeded = Instant::now();
    // One statement, server-side: the client never holds the events.
    let mut tx = config.pool().begin().await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".events
             (stream_id, version, event_id, event_type, schema_version, payload_bytes, occurred_at)
         SELECT $1, g, gen_random_uuid(), $3, $4, $5, now()
         FROM generate_series(1, $2::int8) AS g"
    ))
    .bind(stream.as_str())
    .bind(EVENTS)
    .bind(&event.event_type)
    .bind(i64::from(event.schema_version))
    .bind(&event.payload)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".streams (stream_id, aggregate_type, version) VALUES ($1, 'counter', $2)"
    ))
    .bind(stream.as_str())
    .bind(EVENTS)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    eprintln!("seeded {EVENTS} events in {:?}", seeded.elapsed());
    let store = PgEventStore::new(&config);

    let started = Instant::now();
    let (recovered, streamed_kb) =
        peak_growth(recover::<Counter>(&stream, &store, &codec, None)).await;
    let recovery_time = started.elapsed();
    let recovered = recovered.expect("recover a million events");
    assert_eq!(
        (recovered.state.value, recovered.version, recovered.replayed),
        (1_000_000, 1_000_000, 1_000_000)
    );

    // What recovery took before it streamed: the whole tail as one Vec.
    let (tail, whole_kb) = peak_growth(store.read_stream_for_replay(&stream, 1)).await;
    assert_eq!(tail.expect("the whole-tail read").len(), 1_000_000);

    eprintln!(
        "streamed recovery: {recovery_time:?}, peak +{streamed_kb} kB; \
         whole-tail read: peak +{whole_kb} kB"
    );
    assert!(
        streamed_kb < 32 * 1024,
        "recovering a million events raised the peak resident set by {streamed_kb} kB"
    );
    assert!(
        streamed_kb * 8 < whole_kb,
        "streamed recovery peaked at +{streamed_kb} kB, not well below the whole-tail read's +{whole_kb} kB"
    );
    assert!(
        recovery_time < Duration::from_secs(20),
        "recovering a million events took {recovery_time:?}"
    );
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(config.pool())
        .await
        .unwrap();
}
