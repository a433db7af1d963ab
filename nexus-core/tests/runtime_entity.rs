//! The event-sourced and durable-state behaviors: recovery before the first
//! command, typed replies, rejections, order, effects, snapshots.

mod runtime_support;

use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::store::memory::{InMemoryEventStore, InMemorySnapshotStore, InMemoryStateStore};
use nexus_core::store::{SnapshotStore, StateStore};
use nexus_core::{
    ActorSystem, ConfigError, Entities, EntityError, EventMetadata, EventStore, ExpectedVersion,
    ReplayPolicy, SnapshotStrategy, Snapshots, StreamId,
};
use runtime_support::*;

fn stream(id: &str) -> StreamId {
    StreamId::for_entity("account", id)
}

async fn seed(store: &dyn EventStore, id: &str, amounts: &[u64]) {
    let codec = EventCodec::<AccountEvent>::new(Json);
    let events: Vec<_> = amounts
        .iter()
        .map(|a| {
            codec
                .encode(&AccountEvent::Deposited(*a), EventMetadata::new())
                .unwrap()
        })
        .collect();
    store
        .append(&stream(id), ExpectedVersion::Any, &events)
        .await
        .unwrap();
}

async fn balance_in_store(store: &dyn EventStore, id: &str) -> u64 {
    let codec = EventCodec::<AccountEvent>::new(Json);
    nexus_core::recover::<Account>(&stream(id), store, &codec, None)
        .await
        .unwrap()
        .state
        .balance
}

#[tokio::test]
async fn recovers_before_the_first_command_and_replies_after_the_append() {
    let store = Arc::new(InMemoryEventStore::new());
    seed(store.as_ref(), "a", &[10, 20]).await;
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone()).build().unwrap();

    // The first command sees the recovered state.
    assert_eq!(accounts.of("a").ask(Deposit(5)).await.unwrap(), 35);
    // The reply came after the append: the store already holds the event.
    assert_eq!(store.len(), 3);
    assert_eq!(balance_in_store(store.as_ref(), "a").await, 35);
    assert_eq!(accounts.of("a").ask(Balance).await.unwrap(), 35);
    assert!(system.shutdown(Duration::from_secs(1)).await.drained);
}

#[tokio::test]
async fn a_rejection_replies_without_writing() {
    let store = Arc::new(InMemoryEventStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone()).build().unwrap();
    let error = accounts.of("a").ask(Deposit(0)).await.unwrap_err();
    assert!(
        matches!(error, EntityError::Rejected(AccountError::Zero)),
        "{error:?}"
    );
    assert!(!error.is_unavailable());
    assert_eq!(store.len(), 0);
    assert_eq!(accounts.of("a").ask(Deposit(1)).await.unwrap(), 1);
}

/// Invariant 6: commands from one sender are handled in send order, told
/// or asked, across many entities at once, also across restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_of_one_sender_are_handled_in_send_order() {
    let store = Arc::new(InMemoryEventStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .group_commit(8)
        .mailbox_capacity(4)
        .build()
        .unwrap();
    let mut senders = Vec::new();
    for sender in 0..8u64 {
        let accounts = accounts.clone();
        senders.push(tokio::spawn(async move {
            let entity = accounts.of(format!("order-{}", sender % 2));
            for i in 1..=200u64 {
                // Amounts encode (sender, sequence) so the log shows order.
                let amount = sender * 1_000 + i;
                if fastrand::u8(0..10) == 0 {
                    // A panic restarts the entity mid-batch; the commands
                    // batched with it are decided again, still in order.
                    entity.tell(Boom).await.unwrap();
                }
                if fastrand::bool() {
                    entity.tell(Deposit(amount)).await.unwrap();
                } else {
                    entity.ask(Deposit(amount)).await.unwrap();
                }
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    assert!(system.shutdown(Duration::from_secs(5)).await.drained);
    let codec = EventCodec::<AccountEvent>::new(Json);
    for id in ["order-0", "order-1"] {
        let mut last = std::collections::HashMap::new();
        for recorded in store.read_stream(&stream(id), 1).await.unwrap() {
            let AccountEvent::Deposited(amount) = codec.decode(&recorded).unwrap() else {
                panic!("unexpected event");
            };
            let (sender, sequence) = (amount / 1_000, amount % 1_000);
            let previous = last.insert(sender, sequence).unwrap_or(0);
            assert_eq!(
                sequence,
                previous + 1,
                "sender {sender} out of order in {id}"
            );
        }
        assert_eq!(last.values().sum::<u64>(), 4 * 200);
    }
}

/// Invariant 3 (side effects): they run after the commit with the new
/// state, once per transition, and not again on recovery.
#[tokio::test]
async fn side_effects_run_after_the_commit_once_and_never_on_recovery() {
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone()).build().unwrap();
    let sink = Arc::new(Mutex::new(Vec::new()));
    let account = accounts.of("a");

    // A failed append runs no side effect.
    store.on_append(1, Fault::Unavailable);
    let error = account
        .ask(DepositAndNotify(5, sink.clone()))
        .await
        .unwrap_err();
    assert!(matches!(error, EntityError::Store(_)), "{error:?}");
    assert!(error.is_unavailable());
    assert!(sink.lock().unwrap().is_empty());

    assert_eq!(
        account
            .ask(DepositAndNotify(5, sink.clone()))
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        account
            .ask(DepositAndNotify(7, sink.clone()))
            .await
            .unwrap(),
        12
    );
    assert_eq!(*sink.lock().unwrap(), vec![5, 12]);

    // Recovery replays the events, not the side effects.
    account.stop().await.unwrap();
    assert_eq!(account.ask(Balance).await.unwrap(), 12);
    assert_eq!(*sink.lock().unwrap(), vec![5, 12]);
}

/// Invariant 5 through the runtime: with snapshots every 3 events, a fresh
/// incarnation recovers from the newest snapshot plus the tail, to the same
/// state a full replay gives.
#[tokio::test]
async fn recovery_from_snapshot_and_tail_equals_full_replay() {
    let store = Arc::new(InMemoryEventStore::new());
    let snapshot_store = Arc::new(InMemorySnapshotStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .snapshots(Snapshots::new(
            SnapshotStrategy::every_n(NonZeroU64::new(3).unwrap()),
            snapshot_store.clone(),
            Json,
        ))
        .build()
        .unwrap();
    let account = accounts.of("a");
    for amount in 1..=8 {
        account.ask(Deposit(amount)).await.unwrap();
    }
    assert_eq!(
        snapshot_store.versions(&stream("a")).await.unwrap(),
        vec![3, 6]
    );
    account.stop().await.unwrap();
    assert_eq!(account.ask(Balance).await.unwrap(), 36);
    assert_eq!(balance_in_store(store.as_ref(), "a").await, 36);
}

#[tokio::test]
async fn the_builder_refuses_bad_options_with_typed_errors() {
    let system = ActorSystem::new();
    let none = Entities::<Account>::builder(&system).build().unwrap_err();
    assert_eq!(
        none,
        ConfigError::NoPersistence {
            aggregate: "account"
        }
    );
    let zero = accounts(&system, Arc::new(InMemoryEventStore::new()))
        .mailbox_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(
        zero.to_string(),
        "account: `mailbox_capacity` must be at least 1, got 0"
    );
    let both = accounts(&system, Arc::new(InMemoryEventStore::new()))
        .durable_state(Arc::new(InMemoryStateStore::new()), Json)
        .build()
        .unwrap_err();
    assert_eq!(
        both,
        ConfigError::TwoPersistences {
            aggregate: "account"
        }
    );
}

mod durable_state {
    use super::*;

    fn ledgers(
        system: &ActorSystem,
        store: Arc<InMemoryStateStore>,
        policy: ReplayPolicy,
    ) -> Entities<Account> {
        Entities::<Account>::builder(system)
            .durable_state(store, Json)
            .replay_policy(policy)
            .retry(nexus_core::RetryPolicy::none())
            .build()
            .unwrap()
    }

    fn row(store: &InMemoryStateStore, id: &str) -> Option<(u64, Account)> {
        let rt = tokio::runtime::Handle::current();
        let loaded = tokio::task::block_in_place(|| rt.block_on(store.load(&stream(id))));
        loaded
            .unwrap()
            .map(|row| (row.version, serde_json::from_slice(&row.payload).unwrap()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_if_missing_saves_the_whole_state_row_per_command() {
        let store = Arc::new(InMemoryStateStore::new());
        let system = ActorSystem::new();
        let ledgers = ledgers(&system, store.clone(), ReplayPolicy::CreateIfMissing);
        assert_eq!(ledgers.of("l").ask(Deposit(4)).await.unwrap(), 4);
        assert_eq!(ledgers.of("l").ask(Deposit(6)).await.unwrap(), 10);
        // Queries and rejections do not write.
        ledgers.of("l").ask(Balance).await.unwrap();
        ledgers.of("l").ask(Deposit(0)).await.unwrap_err();
        let (version, state) = row(&store, "l").unwrap();
        assert_eq!(version, 2);
        assert_eq!(
            state,
            Account {
                balance: 10,
                deposits: 2
            }
        );
    }

    /// Group commit on durable state: commands queued together are decided
    /// in order and saved as one row write. (On the current-thread runtime
    /// every caller enqueues before the entity runs again.)
    #[tokio::test]
    async fn group_commit_saves_a_batch_as_one_row_write() {
        let store = Arc::new(InMemoryStateStore::new());
        let system = ActorSystem::new();
        let ledgers = Entities::<Account>::builder(&system)
            .durable_state(store.clone(), Json)
            .group_commit(64)
            .build()
            .unwrap();
        let ledger = ledgers.of("l");
        let asks: Vec<_> = (0..200)
            .map(|_| {
                let ledger = ledger.clone();
                tokio::spawn(async move { ledger.ask(Deposit(1)).await.unwrap() })
            })
            .collect();
        let mut replies = Vec::new();
        for ask in asks {
            replies.push(ask.await.unwrap());
        }
        replies.sort_unstable();
        assert!(replies.iter().copied().eq(1..=200));
        let row = store.load(&stream("l")).await.unwrap().unwrap();
        let state: Account = serde_json::from_slice(&row.payload).unwrap();
        assert_eq!(state.balance, 200);
        // At least ceil(200 / 64) = 4 writes; far fewer than one per command.
        assert!((4..=8).contains(&row.version), "{} writes", row.version);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn require_existing_answers_not_found_until_the_row_exists() {
        let store = Arc::new(InMemoryStateStore::new());
        let system = ActorSystem::new();
        let ledgers = ledgers(&system, store.clone(), ReplayPolicy::RequireExisting);
        let error = ledgers.of("l").ask(Deposit(1)).await.unwrap_err();
        assert!(matches!(error, EntityError::NotFound { .. }), "{error:?}");
        assert_eq!(row(&store, "l"), None);

        let created = serde_json::to_vec(&Account {
            balance: 100,
            deposits: 1,
        })
        .unwrap();
        store
            .save(&stream("l"), ExpectedVersion::NoStream, created)
            .await
            .unwrap();
        assert_eq!(ledgers.of("l").ask(Deposit(1)).await.unwrap(), 101);
        assert_eq!(row(&store, "l").unwrap().0, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_version_is_a_conflict_and_nothing_is_lost() {
        let store = Arc::new(InMemoryStateStore::new());
        let system = ActorSystem::new();
        let ledgers = ledgers(&system, store.clone(), ReplayPolicy::CreateIfMissing);
        ledgers.of("l").ask(Deposit(1)).await.unwrap();
        // Another process writes the row behind the entity's back.
        let theirs = serde_json::to_vec(&Account {
            balance: 50,
            deposits: 9,
        })
        .unwrap();
        store
            .save(&stream("l"), ExpectedVersion::Exact(1), theirs)
            .await
            .unwrap();

        let error = ledgers.of("l").ask(Deposit(2)).await.unwrap_err();
        let EntityError::Conflict {
            stream: s,
            expected,
            actual,
            attempts,
        } = &error
        else {
            panic!("expected a conflict, got {error:?}");
        };
        assert_eq!(
            (s, *expected, *actual, *attempts),
            (&stream("l"), ExpectedVersion::Exact(1), 2, 1)
        );
        assert_eq!(row(&store, "l").unwrap().1.balance, 50);
        // The entity reloaded: the next command builds on the other write.
        assert_eq!(ledgers.of("l").ask(Deposit(2)).await.unwrap(), 52);
    }
}
