//! Recovery equivalence (DESIGN invariant 5): the state recovered from the
//! newest snapshot plus the tail equals the state of a full replay, for
//! random histories, random append batch sizes and every snapshot strategy.

use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::store::SnapshotStore;
use nexus_core::store::memory::{InMemoryEventStore, InMemorySnapshotStore};
use nexus_core::{
    Aggregate, DomainEvent, Effect, EventMetadata, EventStore, ExpectedVersion, SnapshotStrategy,
    Snapshots, StreamId, fold, recover,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// A state where the order of events matters, so a replay that skipped,
/// doubled or reordered an event would end elsewhere.
#[derive(Default, Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ledger {
    hash: u64,
    balance: i64,
    entries: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum LedgerEvent {
    Credited(i64),
    Debited(i64),
    Reset,
}

impl DomainEvent for LedgerEvent {
    const EVENT_TYPES: &'static [&'static str] =
        &["ledger.credited", "ledger.debited", "ledger.reset"];
    fn event_type(&self) -> &'static str {
        match self {
            Self::Credited(_) => "ledger.credited",
            Self::Debited(_) => "ledger.debited",
            Self::Reset => "ledger.reset",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for Ledger {
    const NAME: &'static str = "ledger";
    type Command = ();
    type Event = LedgerEvent;
    type Error = Never;

    fn handle(&self, (): &()) -> Result<Effect<Self>, Never> {
        Ok(Effect::none())
    }

    fn apply(&mut self, event: &LedgerEvent) {
        let code = match event {
            Self::Event::Credited(n) => {
                self.balance += n;
                n.unsigned_abs()
            }
            Self::Event::Debited(n) => {
                self.balance -= n;
                n.unsigned_abs() << 1
            }
            Self::Event::Reset => {
                self.balance = 0;
                7
            }
        };
        self.entries += 1;
        self.hash = self.hash.wrapping_mul(1_000_003).wrapping_add(code);
    }
}

fn event_strategy() -> impl Strategy<Value = LedgerEvent> {
    prop_oneof![
        5 => (1_i64..1_000).prop_map(LedgerEvent::Credited),
        3 => (1_i64..1_000).prop_map(LedgerEvent::Debited),
        1 => Just(LedgerEvent::Reset),
    ]
}

/// A history cut into the batches it was appended in.
fn batches() -> impl Strategy<Value = Vec<Vec<LedgerEvent>>> {
    prop::collection::vec(prop::collection::vec(event_strategy(), 1..6), 0..40)
}

/// Persists `batches` as the runtime does (append, apply, ask the strategy
/// after each event, snapshot at the end of a batch when it said yes), then
/// checks that recovery equals the full fold, also once the newest snapshot
/// is corrupted.
fn check(
    batches: &[Vec<LedgerEvent>],
    strategy: SnapshotStrategy<Ledger>,
    keep: Option<NonZeroUsize>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let events = InMemoryEventStore::new();
        let snapshot_store = Arc::new(InMemorySnapshotStore::new());
        let mut snapshots = Snapshots::new(strategy, snapshot_store.clone(), Json);
        if let Some(k) = keep {
            snapshots = snapshots.keep_last(k);
        }
        let codec = EventCodec::<LedgerEvent>::new(Json);
        let stream = StreamId::for_entity(Ledger::NAME, "p");
        let mut state = Ledger::default();
        let mut version = 0;
        for batch in batches {
            let encoded: Vec<_> = batch
                .iter()
                .map(|e| codec.encode(e, EventMetadata::new()).unwrap())
                .collect();
            version = events
                .append(&stream, ExpectedVersion::Exact(version), &encoded)
                .await
                .unwrap()
                .version;
            let mut take = false;
            let first = version - batch.len() as u64;
            for (i, event) in batch.iter().enumerate() {
                state.apply(event);
                take |= snapshots
                    .strategy()
                    .should_snapshot(&state, event, first + 1 + i as u64);
            }
            if take {
                snapshots.save(&stream, &state, version).await.unwrap();
            }
        }
        let all: Vec<LedgerEvent> = batches.iter().flatten().cloned().collect();
        let replayed = fold(Ledger::default(), &all);
        assert_eq!(state, replayed, "the live state is the fold of its events");

        let recovered = recover(&stream, &events, &codec, Some(&snapshots))
            .await
            .unwrap();
        assert_eq!(
            recovered.state, replayed,
            "snapshot + tail equals full replay"
        );
        assert_eq!(recovered.version, all.len() as u64);
        let stored = snapshot_store.versions(&stream).await.unwrap();
        assert_eq!(recovered.snapshot_version, stored.last().copied());
        if let Some(k) = keep {
            assert!(stored.len() <= k.get(), "retention keeps at most {k}");
        }

        if let Some(mut newest) = snapshot_store.load_latest(&stream).await.unwrap() {
            newest.payload = b"\x00not json".to_vec();
            snapshot_store.save(newest, None).await.unwrap();
            let fallback = recover(&stream, &events, &codec, Some(&snapshots))
                .await
                .unwrap();
            assert_eq!(
                fallback.state, replayed,
                "a broken snapshot falls back to full replay"
            );
            assert_eq!(fallback.snapshot_version, None);
            assert_eq!(fallback.replayed, all.len() as u64);
        }
    });
}

fn keep_strategy() -> impl Strategy<Value = Option<NonZeroUsize>> {
    prop::option::of((1_usize..4).prop_map(|k| NonZeroUsize::new(k).unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_snapshotting_recovers_by_full_replay(batches in batches()) {
        check(&batches, SnapshotStrategy::never(), None);
    }

    #[test]
    fn every_n_recovers_equal_to_full_replay(
        batches in batches(),
        n in 1_u64..12,
        keep in keep_strategy(),
    ) {
        check(&batches, SnapshotStrategy::every_n(NonZeroU64::new(n).unwrap()), keep);
    }

    #[test]
    fn predicate_recovers_equal_to_full_replay(
        batches in batches(),
        modulus in 2_i64..9,
        keep in keep_strategy(),
    ) {
        let strategy = SnapshotStrategy::when(move |state: &Ledger, event, _| {
            matches!(event, LedgerEvent::Reset) || state.balance.rem_euclid(modulus) == 0
        });
        check(&batches, strategy, keep);
    }
}
