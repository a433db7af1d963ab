//! Criterion benchmarks of the entity runtime on the in-memory store:
//! one ask round trip, a burst of tells (and one into a mailbox too small
//! for it, where the sender waits for room), and a hot entity with and
//! without group commit. Every command is persisted to the in-memory store,
//! which grows across iterations: the tell benches measure its growth too. `nexus-bench` (in `examples/`) reports the same
//! shapes as JSON for tracking over time.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::testkit::doc::{Add, Counter, Get};
use nexus_core::{ActorSystem, Entities};
use tokio::runtime::Runtime;

fn counters(system: &ActorSystem, group_commit: usize) -> Entities<Counter> {
    counters_with_mailbox(system, group_commit, 1_024)
}

fn counters_with_mailbox(
    system: &ActorSystem,
    group_commit: usize,
    capacity: usize,
) -> Entities<Counter> {
    Entities::<Counter>::builder(system)
        .event_sourced(
            Arc::new(InMemoryEventStore::new()),
            EventCodec::new(Bincode),
        )
        .group_commit(group_commit)
        .mailbox_capacity(capacity)
        .ask_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ask_round_trip(c: &mut Criterion) {
    let rt = runtime();
    let system = rt.block_on(async { ActorSystem::new() });
    let counter = rt.block_on(async { counters(&system, 1).of("c") });
    c.bench_function("ask_persisting_command", |b| {
        b.to_async(&rt)
            .iter(|| async { counter.ask(Add(1)).await.unwrap() });
    });
    c.bench_function("ask_query", |b| {
        b.to_async(&rt)
            .iter(|| async { counter.ask(Get).await.unwrap() });
    });
}

fn tell_burst(c: &mut Criterion) {
    let rt = runtime();
    let system = rt.block_on(async { ActorSystem::new() });
    let counter = rt.block_on(async { counters(&system, 64).of("c") });
    c.bench_function("tell_256_then_ask", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..256 {
                assert!(counter.tell(Add(1)).await.is_ok());
            }
            counter.ask(Get).await.unwrap()
        });
    });
}

fn tell_into_a_full_mailbox(c: &mut Criterion) {
    let rt = runtime();
    let system = rt.block_on(async { ActorSystem::new() });
    let counter = rt.block_on(async { counters_with_mailbox(&system, 64, 128).of("c") });
    c.bench_function("tell_2048_into_a_mailbox_of_128_then_ask", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..2_048 {
                assert!(counter.tell(Add(1)).await.is_ok());
            }
            counter.ask(Get).await.unwrap()
        });
    });
}

fn hot_entity(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("hot_entity_32_concurrent_asks");
    for group_commit in [1, 64] {
        // One system each: a system serves one registry per aggregate.
        let system = rt.block_on(async { ActorSystem::new() });
        let counter = rt.block_on(async { counters(&system, group_commit).of("hot") });
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("group_commit_{group_commit}")),
            &counter,
            |b, counter| {
                b.to_async(&rt).iter(|| async {
                    let asks: Vec<_> = (0..32)
                        .map(|_| {
                            let counter = counter.clone();
                            tokio::spawn(async move { counter.ask(Add(1)).await.unwrap() })
                        })
                        .collect();
                    for ask in asks {
                        ask.await.unwrap();
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    ask_round_trip,
    tell_burst,
    tell_into_a_full_mailbox,
    hot_entity
);
criterion_main!(benches);
