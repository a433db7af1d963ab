//! Criterion benchmarks of the in-memory event store's append: a new store
//! taking 262,144 events in batches of 64, so that its log and indexes grow
//! across many chunks, as they do under a long run of commands.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::testkit::doc::CounterEvent;
use nexus_core::{EventMetadata, EventStore, ExpectedVersion, NewEvent, StreamId};

const BATCHES: u64 = 4_096;
const BATCH: u64 = 64;

fn append_to_a_new_store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let codec = EventCodec::<CounterEvent>::new(Bincode);
    let batches: Vec<Vec<NewEvent>> = (0..BATCHES)
        .map(|_| {
            (0..BATCH)
                .map(|_| {
                    codec
                        .encode(&CounterEvent::Added(1), EventMetadata::new())
                        .unwrap()
                })
                .collect()
        })
        .collect();
    let stream = StreamId::for_entity("counter", "bench");
    c.bench_function("append_262144_in_batches_of_64_to_a_new_store", |b| {
        // The filled store is dropped outside the timing: this measures the
        // appends, not freeing a quarter of a million events.
        b.to_async(&rt).iter_with_large_drop(|| async {
            let store = InMemoryEventStore::new();
            for (n, batch) in (0..).zip(&batches) {
                store
                    .append(&stream, ExpectedVersion::Exact(n * BATCH), batch)
                    .await
                    .unwrap();
            }
            store
        });
    });
}

criterion_group!(benches, append_to_a_new_store);
criterion_main!(benches);
