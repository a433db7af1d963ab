//! Supervision, conflict retries, group commit and the ownership lease:
//! what the runtime does when handlers panic and stores fail.

mod runtime_support;

use std::sync::Arc;
use std::time::Duration;

use nexus_core::lease::{InMemoryLease, OwnershipLease};
use nexus_core::{
    ActorSystem, EntityError, EventStore, ExpectedVersion, RetryPolicy, StreamId, Supervision,
};
use runtime_support::*;

fn stream(id: &str) -> StreamId {
    StreamId::for_entity("account", id)
}

mod supervision {
    use super::*;

    /// A panicking handler restarts the entity: its caller gets `Panicked`,
    /// the queued commands survive, and the state is recovered from the
    /// store into a fresh default (not replayed onto the old state, which
    /// would double the balance).
    #[tokio::test]
    async fn a_panic_restarts_from_the_store_and_the_mailbox_survives() {
        let store = Arc::new(FaultyStore::new());
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone()).build().unwrap();
        let account = accounts.of("a");
        account.ask(Deposit(10)).await.unwrap();

        // Queue a panic between two deposits, all before the actor runs.
        let (before, boom, after) = tokio::join!(
            account.ask(Deposit(1)),
            account.ask(Boom),
            account.ask(Deposit(2)),
        );
        assert_eq!(before.unwrap(), 11);
        let error = boom.unwrap_err();
        assert!(
            matches!(&error, EntityError::Panicked { message, .. } if message == "boom at balance 11"),
            "{error:?}"
        );
        assert_eq!(after.unwrap(), 13);
        assert_eq!(account.ask(Balance).await.unwrap(), 13);
        assert_eq!(store.inner.len(), 3);
        assert_eq!(accounts.started(), 1, "a restart is not a new entity");
    }

    /// A panicking `apply` happens before the append, so the cursed event
    /// is never written, and the commands batched with it are decided again.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_apply_writes_nothing_of_its_batch() {
        let store = Arc::new(FaultyStore::new());
        store.always(Some(Fault::Delay(Duration::from_millis(5))));
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone())
            .group_commit(16)
            .build()
            .unwrap();
        let account = accounts.of("a");
        let blocker = tokio::spawn({
            let account = account.clone();
            async move { account.ask(Deposit(100)).await }
        });
        tokio::task::yield_now().await;
        let (first, curse, last) = tokio::join!(
            account.ask(Deposit(1)),
            account.ask(Curse),
            account.ask(Deposit(2))
        );
        assert_eq!(blocker.await.unwrap().unwrap(), 100);
        assert_eq!(first.unwrap(), 101);
        assert!(matches!(curse.unwrap_err(), EntityError::Panicked { .. }));
        assert_eq!(last.unwrap(), 103);
        let codec = nexus_core::codec::EventCodec::<AccountEvent>::new(nexus_core::codec::Json);
        for recorded in store.read_stream(&stream("a"), 1).await.unwrap() {
            assert_ne!(codec.decode(&recorded).unwrap(), AccountEvent::Cursed);
        }
    }

    /// A failed append restarts the entity: the caller gets the store error
    /// (retryable), later commands succeed on recovered state.
    #[tokio::test]
    async fn a_failed_append_answers_a_store_error_and_later_commands_succeed() {
        let store = Arc::new(FaultyStore::new());
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone()).build().unwrap();
        let account = accounts.of("a");
        account.ask(Deposit(1)).await.unwrap();
        store.on_append(2, Fault::Unavailable);
        let error = account.ask(Deposit(2)).await.unwrap_err();
        assert!(
            matches!(&error, EntityError::Store(e) if e.is_retryable()),
            "{error:?}"
        );
        assert!(error.is_unavailable());
        assert_eq!(account.ask(Deposit(3)).await.unwrap(), 4);
    }

    /// A stream that does not decode fails recovery: the caller gets the
    /// recovery error naming the stream and version, nothing is written,
    /// and the entity keeps trying (with backoff) on the next command.
    #[tokio::test]
    async fn a_failed_recovery_answers_a_recovery_error() {
        let store = Arc::new(FaultyStore::new());
        let unknown = nexus_core::NewEvent::new("account.renamed", 1, b"{}".to_vec());
        store
            .inner
            .append(&stream("a"), ExpectedVersion::NoStream, &[unknown])
            .await
            .unwrap();
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone()).build().unwrap();
        for _ in 0..2 {
            let error = accounts.of("a").ask(Deposit(1)).await.unwrap_err();
            let EntityError::Recovery(recovery) = &error else {
                panic!("expected a recovery error, got {error:?}");
            };
            assert!(
                recovery
                    .to_string()
                    .starts_with("recovering account-a: event at version 1")
            );
            assert!(!error.is_unavailable());
        }
        assert_eq!(store.appends(), 0);
    }

    /// An `apply` that panics on a stored event during recovery restarts
    /// the entity (with backoff) and answers `Panicked`; it does not take
    /// the entity's task down.
    #[tokio::test(start_paused = true)]
    async fn a_panic_during_recovery_is_a_restart() {
        let store = Arc::new(FaultyStore::new());
        let codec = nexus_core::codec::EventCodec::<AccountEvent>::new(nexus_core::codec::Json);
        let cursed = codec
            .encode(&AccountEvent::Cursed, nexus_core::EventMetadata::new())
            .unwrap();
        store
            .inner
            .append(&stream("a"), ExpectedVersion::NoStream, &[cursed])
            .await
            .unwrap();
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone()).build().unwrap();
        for _ in 0..3 {
            let error = accounts.of("a").ask(Deposit(1)).await.unwrap_err();
            assert!(
                matches!(&error, EntityError::Panicked { message, .. } if message == "cursed event applied"),
                "{error:?}"
            );
        }
        assert!(accounts.is_live("a"));
        assert_eq!(accounts.started(), 1, "restarted in place, not respawned");
        assert_eq!(store.appends(), 0);
    }

    /// An event that does not encode fails its command (and its batch)
    /// without writing; the applied-but-unwritten state is dropped, so the
    /// next command sees only what was committed.
    #[tokio::test]
    async fn an_unencodable_event_writes_nothing_and_the_state_is_reloaded() {
        let store = Arc::new(FaultyStore::new());
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone()).build().unwrap();
        let account = accounts.of("a");
        account.ask(Deposit(1)).await.unwrap();
        let error = account.ask(DepositUnencodable(50)).await.unwrap_err();
        assert!(matches!(error, EntityError::Encode { .. }), "{error:?}");
        assert_eq!(store.appends(), 1);
        assert_eq!(account.ask(Deposit(2)).await.unwrap(), 3);
    }

    /// Backoff doubles between restarts (paused clock), and past the limit
    /// the entity stops with a clear error; the next command starts afresh.
    #[tokio::test(start_paused = true)]
    async fn restarts_back_off_and_stop_at_the_limit() {
        let store = Arc::new(FaultyStore::new());
        store.always(Some(Fault::Unavailable));
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone())
            .supervision(
                Supervision::default()
                    .backoff(Duration::from_secs(1), Duration::from_secs(60))
                    .max_restarts(3, Duration::from_secs(600)),
            )
            .ask_timeout(Duration::from_secs(3_600))
            .build()
            .unwrap();
        let account = accounts.of("a");
        let start = tokio::time::Instant::now();
        for expected_wait in [0, 1, 2, 4] {
            let sent = tokio::time::Instant::now();
            let error = account.ask(Deposit(1)).await.unwrap_err();
            assert!(matches!(error, EntityError::Store(_)), "{error:?}");
            // Each failure is answered at once; the backoff delays the next
            // command: 1, 2, 4 s before restarts 1, 2, 3.
            assert_eq!(sent.elapsed(), Duration::from_secs(expected_wait));
        }
        assert_eq!(start.elapsed(), Duration::from_secs(7));
        // The 4th failure exceeded 3 restarts: for the cooldown (the longest
        // backoff) every command is refused at once, nothing is recovered.
        store.always(None);
        for _ in 0..20 {
            let error = account.ask(Deposit(5)).await.unwrap_err();
            assert!(
                matches!(error, EntityError::RestartLimit { restarts: 4, .. }),
                "{error:?}"
            );
        }
        assert_eq!(start.elapsed(), Duration::from_secs(7));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(account.ask(Deposit(5)).await.unwrap(), 5);
        assert_eq!(accounts.started(), 1, "one task all along");
    }

    /// Commands queued when the limit is reached are answered with the
    /// restart-limit error, none is left waiting.
    #[tokio::test(start_paused = true)]
    async fn queued_commands_get_the_restart_limit_error() {
        let store = Arc::new(FaultyStore::new());
        store.always(Some(Fault::Unavailable));
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone())
            .supervision(
                Supervision::default()
                    .backoff(Duration::from_secs(1), Duration::from_secs(1))
                    .max_restarts(1, Duration::from_secs(600)),
            )
            .ask_timeout(Duration::from_secs(3_600))
            .build()
            .unwrap();
        let account = accounts.of("a");
        let asks: Vec<_> = (0..10)
            .map(|_| {
                let account = account.clone();
                tokio::spawn(async move { account.ask(Deposit(1)).await })
            })
            .collect();
        let mut store_errors = 0;
        let mut limit_errors = 0;
        for ask in asks {
            match ask.await.unwrap().unwrap_err() {
                EntityError::Store(_) => store_errors += 1,
                EntityError::RestartLimit {
                    restarts, window, ..
                } => {
                    assert_eq!((restarts, window), (2, Duration::from_secs(600)));
                    limit_errors += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((store_errors, limit_errors), (2, 8));
    }
}

mod conflicts {
    use super::*;

    /// Another process wrote the stream: the entity reloads and decides the
    /// command again; the caller sees only the success.
    #[tokio::test]
    async fn a_conflict_is_retried_on_reloaded_state() {
        let store = Arc::new(FaultyStore::new());
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone()).build().unwrap();
        let account = accounts.of("a");
        account.ask(Deposit(1)).await.unwrap();
        store.on_append(2, Fault::ForeignWrite);
        // Decided on 1 + 1000 (foreign) after the reload.
        assert_eq!(account.ask(Deposit(2)).await.unwrap(), 1_003);
        assert_eq!(store.appends(), 3);
    }

    /// Immediate retries, then exponential backoff with jitter (paused
    /// clock); exhausted retries surface a conflict naming the versions.
    #[tokio::test(start_paused = true)]
    async fn exhausted_retries_surface_a_conflict_after_backing_off() {
        let store = Arc::new(FaultyStore::new());
        let system = ActorSystem::new();
        let policy = RetryPolicy::default().immediate(2).delayed(
            3,
            Duration::from_secs(10),
            Duration::from_secs(25),
        );
        let accounts = accounts(&system, store.clone())
            .retry(policy)
            .ask_timeout(Duration::from_secs(3_600))
            .build()
            .unwrap();
        let account = accounts.of("a");
        account.ask(Deposit(1)).await.unwrap();
        store.always(Some(Fault::ForeignWrite));
        let start = tokio::time::Instant::now();
        let error = account.ask(Deposit(2)).await.unwrap_err();
        let waited = start.elapsed();
        // Delayed retries wait within [base/2, base] for bases 10, 20, 25.
        assert!(waited >= Duration::from_millis(27_500), "{waited:?}");
        assert!(waited <= Duration::from_secs(55), "{waited:?}");
        let EntityError::Conflict {
            stream: s,
            expected,
            actual,
            attempts,
        } = &error
        else {
            panic!("expected a conflict, got {error:?}");
        };
        // 1 + 5 retries; each attempt found one more foreign event.
        assert_eq!(*attempts, 6);
        assert_eq!(s, &stream("a"));
        assert_eq!(*expected, ExpectedVersion::Exact(6));
        assert_eq!(*actual, 7);
        assert!(error.is_unavailable());
        // Nothing of the command was written: only the foreign events.
        assert_eq!(store.committed(), vec![1]);
        store.always(None);
        assert_eq!(account.ask(Balance).await.unwrap(), 6_001);
    }
}

mod group_commit {
    use super::*;

    async fn queue_behind_a_slow_append(
        accounts: &nexus_core::Entities<Account>,
        store: &FaultyStore,
    ) -> tokio::task::JoinHandle<Result<u64, EntityError<AccountError>>> {
        store.on_append(1, Fault::Delay(Duration::from_millis(50)));
        let account = accounts.of("a");
        let first = tokio::spawn(async move { account.ask(Deposit(1)).await });
        // Let the first append start, so that the next commands queue up.
        tokio::time::sleep(Duration::from_millis(10)).await;
        first
    }

    /// Queued commands are decided in order and written in one append; each
    /// caller gets the state after its own command, rejections included,
    /// and only after the commit.
    #[tokio::test(start_paused = true)]
    async fn queued_commands_commit_in_one_append() {
        let store = Arc::new(FaultyStore::new());
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone())
            .group_commit(64)
            .build()
            .unwrap();
        let first = queue_behind_a_slow_append(&accounts, &store).await;
        store.on_append(2, Fault::Delay(Duration::from_millis(50)));
        let account = accounts.of("a");
        let (a, rejected, b, c) = tokio::join!(
            account.ask(Deposit(10)),
            account.ask(Deposit(0)),
            account.ask(Deposit(100)),
            account.ask(Balance)
        );
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (11, 111, 111));
        assert!(matches!(
            rejected.unwrap_err(),
            EntityError::Rejected(AccountError::Zero)
        ));
        assert_eq!(store.committed(), vec![1, 2]);
    }

    /// A rejection decided in a batch is answered only once the batch's
    /// append committed: it was decided against the batch's earlier,
    /// uncommitted events (paused clock; each append takes 10 s).
    #[tokio::test(start_paused = true)]
    async fn rejections_in_a_batch_are_answered_after_the_commit() {
        let store = Arc::new(FaultyStore::new());
        store.always(Some(Fault::Delay(Duration::from_secs(10))));
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone())
            .group_commit(64)
            .ask_timeout(Duration::from_secs(3_600))
            .build()
            .unwrap();
        let account = accounts.of("a");
        let start = tokio::time::Instant::now();
        let first = tokio::spawn({
            let account = account.clone();
            async move { account.ask(Deposit(1)).await }
        });
        tokio::task::yield_now().await;
        let rejected = tokio::spawn({
            let account = account.clone();
            async move {
                let result = account.ask(Deposit(0)).await;
                (result, tokio::time::Instant::now())
            }
        });
        let accepted = account.ask(Deposit(5)).await.unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        let (result, answered_at) = rejected.await.unwrap();
        assert!(matches!(
            result,
            Err(EntityError::Rejected(AccountError::Zero))
        ));
        assert_eq!(answered_at - start, Duration::from_secs(20));
        assert_eq!(accepted, 6);
        assert_eq!(store.committed(), vec![1, 1]);
    }

    /// A failed group append answers every command of the batch with the
    /// error; none is acknowledged, none is written.
    #[tokio::test(start_paused = true)]
    async fn a_failed_group_append_answers_every_command() {
        let store = Arc::new(FaultyStore::new());
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone())
            .group_commit(64)
            .build()
            .unwrap();
        let first = queue_behind_a_slow_append(&accounts, &store).await;
        store.on_append(2, Fault::Unavailable);
        let account = accounts.of("a");
        let results = futures_join(&account, 5).await;
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(results.len(), 5);
        for result in results {
            assert!(matches!(result, Err(EntityError::Store(_))), "{result:?}");
        }
        assert_eq!(store.committed(), vec![1]);
        assert_eq!(account.ask(Balance).await.unwrap(), 1);
    }

    /// A conflicting group append re-decides the whole batch on reloaded
    /// state; each caller's reply reflects the foreign write.
    #[tokio::test(start_paused = true)]
    async fn a_conflicting_group_append_redecides_the_batch() {
        let store = Arc::new(FaultyStore::new());
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone())
            .group_commit(64)
            .build()
            .unwrap();
        let first = queue_behind_a_slow_append(&accounts, &store).await;
        store.on_append(2, Fault::ForeignWrite);
        let account = accounts.of("a");
        let results = futures_join(&account, 5).await;
        assert_eq!(first.await.unwrap().unwrap(), 1);
        let mut replies: Vec<u64> = results.into_iter().map(Result::unwrap).collect();
        replies.sort_unstable();
        assert_eq!(replies, vec![1_002, 1_003, 1_004, 1_005, 1_006]);
        assert_eq!(store.committed(), vec![1, 5]);
    }

    async fn futures_join(
        account: &nexus_core::EntityRef<Account>,
        n: usize,
    ) -> Vec<Result<u64, EntityError<AccountError>>> {
        let asks: Vec<_> = (0..n)
            .map(|_| {
                let account = account.clone();
                tokio::spawn(async move { account.ask(Deposit(1)).await })
            })
            .collect();
        let mut results = Vec::new();
        for ask in asks {
            results.push(ask.await.unwrap());
        }
        results
    }
}

mod lease {
    use super::*;

    /// While another holder has the lease, commands are answered `NotOwner`
    /// and nothing is written; once it is free, the entity takes it.
    #[tokio::test]
    async fn commands_are_not_owner_while_the_lease_is_held_elsewhere() {
        let store = Arc::new(FaultyStore::new());
        let lease = InMemoryLease::new();
        let elsewhere = lease.acquire(&stream("a")).await.unwrap();
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone())
            .lease(Arc::new(lease.clone()))
            .build()
            .unwrap();
        let error = accounts.of("a").ask(Deposit(1)).await.unwrap_err();
        assert!(matches!(error, EntityError::NotOwner { .. }), "{error:?}");
        assert!(error.is_unavailable());
        assert_eq!(store.appends(), 0);
        drop(elsewhere);
        assert_eq!(accounts.of("a").ask(Deposit(1)).await.unwrap(), 1);
        assert!(lease.is_held(&stream("a")));
    }

    /// The lease is released when the entity stops, and taken again by the
    /// next incarnation.
    #[tokio::test(start_paused = true)]
    async fn the_lease_is_released_on_stop() {
        let lease = InMemoryLease::new();
        let system = ActorSystem::new();
        let accounts = accounts(&system, Arc::new(FaultyStore::new()))
            .lease(Arc::new(lease.clone()))
            .build()
            .unwrap();
        let account = accounts.of("a");
        account.ask(Deposit(1)).await.unwrap();
        assert_eq!(account.ask(Retire).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!lease.is_held(&stream("a")));
        assert!(!accounts.is_live("a"));
        assert_eq!(account.ask(Deposit(1)).await.unwrap(), 2);
        assert!(lease.is_held(&stream("a")));
    }
}
