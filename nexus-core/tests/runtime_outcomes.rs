//! Outcomes a caller can trust: a write whose answer was lost is re-sent
//! until its outcome is known, command ids make retries idempotent, one bad
//! command fails alone, metadata reaches the events, and every step of an
//! attempt is supervised.

mod runtime_support;

use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::codec::{Codec, EventCodec, Json};
use nexus_core::store::memory::{InMemorySnapshotStore, InMemoryStateStore};
use nexus_core::{
    ActorSystem, CodecError, CommandOptions, Entities, EntityError, EventStore, SnapshotStrategy,
    Snapshots, StreamId, Supervision,
};
use runtime_support::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn stream(id: &str) -> StreamId {
    StreamId::for_entity("account", id)
}

/// The append commits and its answer is lost: the entity sends the very
/// same batch again, learns that it committed, answers the reply and runs
/// the side effect once. Fresh event ids on the re-send would have stored a
/// second deposit (or conflicted and decided it again).
#[tokio::test]
async fn a_commit_whose_answer_was_lost_is_learned_by_sending_it_again() {
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone()).build().unwrap();
    let sink = Arc::new(Mutex::new(Vec::new()));
    store.on_append(1, Fault::CommitThenLost);
    let balance = accounts
        .of("a")
        .ask(DepositAndNotify(5, sink.clone()))
        .await
        .unwrap();
    assert_eq!(balance, 5);
    assert_eq!(*sink.lock().unwrap(), vec![5], "the side effect ran once");
    assert_eq!(store.inner.len(), 1, "one deposit stored");
    let sent = store.sent_ids();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1], "the re-send carried the same event ids");
    assert_eq!(accounts.of("a").ask(Balance).await.unwrap(), 5);
}

/// Every answer is lost until the deadline: the caller learns that the
/// outcome is unknown (not "unavailable, retry"), no side effect runs, and a
/// retry under the same command id applies the command at most once.
#[tokio::test]
async fn an_outcome_that_stays_unknown_says_so_and_a_retry_with_its_id_applies_once() {
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .outcome_deadline(Duration::from_millis(100))
        .build()
        .unwrap();
    let sink = Arc::new(Mutex::new(Vec::new()));
    store.always(Some(Fault::CommitThenLost));
    let id = uuid::Uuid::now_v7();
    let options = CommandOptions::new().command_id(id);
    let error = accounts
        .of("a")
        .ask_with(DepositAndNotify(5, sink.clone()), options.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(error, EntityError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert!(error.outcome_unknown() && error.is_retryable());
    assert!(sink.lock().unwrap().is_empty());
    assert_eq!(store.inner.len(), 1, "committed once despite the re-sends");

    store.always(None);
    let again = accounts
        .of("a")
        .ask_with(DepositAndNotify(5, sink.clone()), options.clone())
        .await
        .unwrap();
    assert_eq!((again.reply, again.version), (5, 1));
    assert_eq!(store.inner.len(), 1, "the retry wrote nothing");
    // Side effects run at most once per transition: the retry could not
    // know whether the first attempt's had run, so it does not run them.
    assert!(sink.lock().unwrap().is_empty());
    // Without the id, a retry is a new command.
    accounts.of("a").ask(Deposit(5)).await.unwrap();
    assert_eq!(accounts.of("a").ask(Balance).await.unwrap(), 10);
}

/// A command id makes a retry idempotent after other commands, across a
/// restart of the entity, and inside a group-committed batch.
#[tokio::test]
async fn a_retried_command_id_returns_the_original_reply_and_writes_nothing() {
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .group_commit(16)
        .build()
        .unwrap();
    let account = accounts.of("a");
    let id = uuid::Uuid::now_v7();
    let with_id = || CommandOptions::new().command_id(id);
    let first = account.ask_with(Deposit(5), with_id()).await.unwrap();
    assert_eq!((first.reply, first.version), (5, 1));
    account.ask(Deposit(7)).await.unwrap();
    let retried = account.ask_with(Deposit(5), with_id()).await.unwrap();
    assert_eq!(retried, first, "same reply, version and position");
    account.stop().await.unwrap();
    let after_restart = account.ask_with(Deposit(5), with_id()).await.unwrap();
    assert_eq!(after_restart, first);
    // 16 concurrent copies of one command: it is applied once.
    let copies: Vec<_> = (0..16)
        .map(|_| {
            let account = account.clone();
            let options = CommandOptions::new().command_id(uuid::Uuid::from_u128(42));
            tokio::spawn(async move { account.ask_with(Deposit(100), options).await })
        })
        .collect();
    let mut versions = Vec::new();
    for copy in copies {
        let outcome = copy.await.unwrap().unwrap();
        assert_eq!(outcome.reply, 112);
        versions.push(outcome.version);
    }
    assert!(versions.iter().all(|v| *v == versions[0]));
    assert_eq!(account.ask(Balance).await.unwrap(), 112);
    assert_eq!(store.inner.len(), 3);
}

/// The same command id sent to another entity is a reused id, refused.
#[tokio::test]
async fn a_command_id_reused_for_another_entity_is_refused() {
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone()).build().unwrap();
    let options = CommandOptions::new().command_id(uuid::Uuid::now_v7());
    accounts
        .of("a")
        .ask_with(Deposit(1), options.clone())
        .await
        .unwrap();
    let error = accounts
        .of("b")
        .ask_with(Deposit(1), options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EntityError::Store(nexus_core::StoreError::DuplicateEventId { .. })
        ),
        "{error:?}"
    );
    assert!(!error.outcome_unknown());
    assert_eq!(store.inner.len(), 1);
}

/// Durable state writes no events to derive ids from: a command id is
/// refused, never silently ignored.
#[tokio::test]
async fn a_durable_state_entity_refuses_command_ids() {
    let system = ActorSystem::new();
    let accounts = Entities::<Account>::builder(&system)
        .durable_state(Arc::new(InMemoryStateStore::new()), Json)
        .build()
        .unwrap();
    let error = accounts
        .of("a")
        .ask_with(
            Deposit(1),
            CommandOptions::new().command_id(uuid::Uuid::now_v7()),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("cannot deduplicate"), "{error}");
    assert_eq!(accounts.of("a").ask(Balance).await.unwrap(), 0);
}

/// Correlation and causation ids and headers go from the caller onto every
/// event of the command; the outcome says where it left the stream.
#[tokio::test]
async fn metadata_reaches_the_events_and_the_outcome_carries_version_and_position() {
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone()).build().unwrap();
    let (command, correlation) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let options = CommandOptions::new()
        .command_id(command)
        .correlation_id(correlation)
        .header("tenant", "acme");
    let outcome = accounts
        .of("a")
        .ask_with(DepositUnencodable(0), CommandOptions::new())
        .await;
    assert!(outcome.is_err());
    let outcome = accounts
        .of("a")
        .ask_with(Deposit(3), options)
        .await
        .unwrap();
    let events = store.inner.read_stream(&stream("a"), 1).await.unwrap();
    assert_eq!(events.len(), 1);
    let metadata = &events[0].metadata;
    assert_eq!(metadata.correlation_id, Some(correlation));
    assert_eq!(metadata.causation_id, Some(command));
    assert_eq!(metadata.headers["tenant"], "acme");
    assert_eq!(outcome.version, 1);
    assert_eq!(outcome.position, Some(events[0].position));
    let read = accounts
        .of("a")
        .ask_with(Balance, CommandOptions::new())
        .await
        .unwrap();
    assert_eq!((read.reply, read.version, read.position), (3, 1, None));
}

/// With group commit, a command whose events do not encode fails alone:
/// the others in its batch commit.
#[tokio::test]
async fn a_bad_command_in_a_group_commit_fails_alone() {
    let store = Arc::new(FaultyStore::new());
    store.always(Some(Fault::Delay(Duration::from_millis(20))));
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .group_commit(64)
        .build()
        .unwrap();
    let account = accounts.of("a");
    account.ask(Deposit(1)).await.unwrap();
    // The first append is slow, so the next ones queue into one batch.
    let slow = tokio::spawn({
        let account = account.clone();
        async move { account.ask(Deposit(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut asks = Vec::new();
    for i in 0..10u64 {
        let account = account.clone();
        asks.push(tokio::spawn(async move {
            if i == 4 {
                account.ask(DepositUnencodable(1_000)).await
            } else {
                account.ask(Deposit(10)).await
            }
        }));
    }
    slow.await.unwrap().unwrap();
    let mut failed = 0;
    for (i, ask) in asks.into_iter().enumerate() {
        match ask.await.unwrap() {
            Ok(_) => assert_ne!(i, 4),
            Err(EntityError::Encode { .. }) => {
                assert_eq!(i, 4);
                failed += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(failed, 1);
    assert_eq!(account.ask(Balance).await.unwrap(), 2 + 90);
    assert!(
        store.committed().contains(&9),
        "the nine good commands committed in one batch: {:?}",
        store.committed()
    );
}

/// A codec that panics while encoding one kind of value.
struct PanicsOn(&'static str);

impl Codec for PanicsOn {
    fn name(&self) -> &'static str {
        "panics-on"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T, what: &str) -> Result<Vec<u8>, CodecError> {
        assert!(what != self.0, "injected panic while encoding {what}");
        Json.encode(value, what)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Result<T, CodecError> {
        Json.decode(bytes, what)
    }
}

/// A panic while encoding events, inside the store's append, or while
/// encoding a snapshot restarts the entity like any panic: the caller gets
/// `Panicked`, commands queued behind it are carried over and served, and
/// the restart limit holds (the task never dies and starts afresh).
#[tokio::test]
async fn panics_in_every_step_are_supervised_with_the_restart_limit() {
    // Encoding events.
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let panicking = Entities::<Account>::builder(&system)
        .event_sourced(
            store.clone(),
            EventCodec::new(PanicsOn("account.unencodable")),
        )
        .supervision(
            Supervision::default()
                .backoff(Duration::from_millis(1), Duration::from_millis(2))
                .max_restarts(2, Duration::from_secs(600)),
        )
        .build()
        .unwrap();
    let account = panicking.of("a");
    let error = account.ask(DepositUnencodable(1)).await.unwrap_err();
    assert!(matches!(error, EntityError::Panicked { .. }), "{error:?}");
    assert_eq!(account.ask(Deposit(2)).await.unwrap(), 2);
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        outcomes.push(account.ask(DepositUnencodable(1)).await.unwrap_err());
    }
    let limited = outcomes
        .iter()
        .filter(|e| matches!(e, EntityError::RestartLimit { .. }))
        .count();
    assert!(
        matches!(outcomes[0], EntityError::Panicked { .. }),
        "{:?}",
        outcomes[0]
    );
    // Two restarts, then the limit: the rest are refused without running.
    assert_eq!(limited, 18, "{outcomes:?}");
    assert_eq!(
        panicking.started(),
        1,
        "one task, never a fresh one per panic"
    );

    // The store's append.
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let on_b = accounts_on(&system, store.clone());
    let account = on_b.of("b");
    account.ask(Deposit(1)).await.unwrap();
    store.on_append(2, Fault::Panic);
    let queued: Vec<_> = (0..3)
        .map(|_| {
            let account = account.clone();
            tokio::spawn(async move { account.ask(Deposit(1)).await })
        })
        .collect();
    let mut panicked = 0;
    for ask in queued {
        match ask.await.unwrap() {
            Ok(_) => {}
            Err(EntityError::Panicked { .. }) => panicked += 1,
            Err(other) => panic!("an innocent command failed: {other:?}"),
        }
    }
    assert_eq!(panicked, 1, "only the command whose append panicked");
    assert_eq!(on_b.started(), 1, "the same task restarted the entity");

    // Encoding a snapshot.
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let snapshots = Arc::new(InMemorySnapshotStore::new());
    let accounts = accounts(&system, store.clone())
        .snapshots(Snapshots::new(
            SnapshotStrategy::every_n(NonZeroU64::new(1).unwrap()),
            snapshots,
            PanicsOn("snapshot"),
        ))
        .build()
        .unwrap();
    assert_eq!(accounts.of("c").ask(Deposit(1)).await.unwrap(), 1);
    assert_eq!(accounts.of("c").ask(Deposit(1)).await.unwrap(), 2);
    assert_eq!(accounts.started(), 1);
}

fn accounts_on(system: &ActorSystem, store: Arc<FaultyStore>) -> Entities<Account> {
    accounts(system, store)
        .supervision(
            Supervision::default()
                .backoff(Duration::from_millis(1), Duration::from_millis(2))
                .max_restarts(5, Duration::from_secs(600)),
        )
        .build()
        .unwrap()
}
