//! Criterion benchmarks of recovery's hot path on 10,000 small events:
//! decoding and applying events already read (the codec and the fold, no
//! store), and a whole `recover` through the in-memory store's streaming
//! replay. `nexus-bench`'s `pg_rehydrate_10k` reports the same recovery
//! against Postgres.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::testkit::doc::{Counter, CounterEvent};
use nexus_core::{
    Aggregate, EventMetadata, EventStore, ExpectedVersion, ReplayEvent, StreamId, recover,
};

const EVENTS: u64 = 10_000;

fn decode_and_apply(c: &mut Criterion) {
    let codec = EventCodec::<CounterEvent>::new(Bincode);
    let tail: Vec<ReplayEvent> = (1..=EVENTS)
        .map(|version| {
            let new = codec
                .encode(&CounterEvent::Added(1), EventMetadata::new())
                .unwrap();
            ReplayEvent {
                version,
                event_type: new.event_type,
                schema_version: new.schema_version,
                payload: new.payload,
            }
        })
        .collect();
    c.bench_function("decode_and_apply_10k", |b| {
        b.iter(|| {
            let mut state = Counter::default();
            for event in &tail {
                let event = event.borrowed();
                let decoded = codec
                    .decode_parts(event.event_type, event.schema_version, event.payload)
                    .unwrap();
                state.apply(&decoded);
            }
            assert_eq!(state.value, EVENTS);
        });
    });
}

fn recover_in_memory(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let codec = EventCodec::<CounterEvent>::new(Bincode);
    let store = InMemoryEventStore::new();
    let stream = StreamId::for_entity("counter", "bench");
    let events: Vec<_> = (0..EVENTS)
        .map(|_| {
            codec
                .encode(&CounterEvent::Added(1), EventMetadata::new())
                .unwrap()
        })
        .collect();
    rt.block_on(store.append(&stream, ExpectedVersion::NoStream, &events))
        .unwrap();
    c.bench_function("recover_10k_in_memory", |b| {
        b.to_async(&rt).iter(|| async {
            let recovered = recover::<Counter>(&stream, &store, &codec, None)
                .await
                .unwrap();
            assert_eq!(recovered.version, EVENTS);
        });
    });
}

criterion_group!(benches, decode_and_apply, recover_in_memory);
criterion_main!(benches);
