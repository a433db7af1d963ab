//! Passivation, stop, ask timeouts and shutdown, on tokio's paused clock
//! where time matters.

mod runtime_support;

use std::sync::Arc;
use std::time::Duration;

use nexus_core::{ActorSystem, EntityError, SendError, WhenFull};
use runtime_support::*;

/// An idle entity passivates after the receive timeout and frees its
/// state; the next `of(id)` spawns a fresh one that recovers from the store.
#[tokio::test(start_paused = true)]
async fn an_idle_entity_passivates_and_recovers_on_next_use() {
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let lease = WatchLease::new();
    let accounts = accounts(&system, store.clone())
        .receive_timeout(Duration::from_secs(60))
        .lease(Arc::new(lease.clone()))
        .build()
        .unwrap();
    accounts.of("a").ask(Deposit(3)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(accounts.is_live("a"), "not idle long enough yet");
    accounts.of("a").ask(Deposit(4)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(
        accounts.is_live("a"),
        "the second command reset the idle time"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!accounts.is_live("a"));
    assert_eq!(accounts.live(), 0);
    assert_eq!(
        lease.held(),
        0,
        "passivation released the state and the lease"
    );
    assert_eq!(system.live_actors(), 0);

    assert_eq!(accounts.of("a").ask(Balance).await.unwrap(), 7);
    assert_eq!(accounts.started(), 2);
}

/// `stop` (the poison pill) is processed after what was queued before it;
/// what is sent after it goes to the next incarnation, not lost.
#[tokio::test(start_paused = true)]
async fn stop_runs_after_the_queued_messages_and_later_ones_reach_the_next_incarnation() {
    let store = Arc::new(FaultyStore::new());
    store.on_append(1, Fault::Delay(Duration::from_millis(30)));
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone()).build().unwrap();
    let account = accounts.of("a");
    let first = tokio::spawn({
        let account = account.clone();
        async move { account.ask(Deposit(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let queued: Vec<_> = (0..3)
        .map(|_| {
            let account = account.clone();
            tokio::spawn(async move { account.ask(Deposit(1)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    account.stop().await.unwrap();
    let after = account.ask(Deposit(10)).await.unwrap();
    assert_eq!(first.await.unwrap().unwrap(), 1);
    for ask in queued {
        assert!(ask.await.unwrap().unwrap() <= 4);
    }
    assert_eq!(after, 14);
    assert_eq!(
        accounts.started(),
        1,
        "the next incarnation reused the live cell"
    );
}

/// An ask that gets no reply within the timeout returns `Timeout`; the
/// command may still be carried out, and is.
#[tokio::test(start_paused = true)]
async fn an_ask_times_out_but_the_command_may_still_be_carried_out() {
    let store = Arc::new(FaultyStore::new());
    store.on_append(1, Fault::Delay(Duration::from_secs(10)));
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .ask_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let error = accounts.of("a").ask(Deposit(5)).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert!(
        matches!(&error, EntityError::Timeout { after, .. } if *after == Duration::from_secs(1)),
        "{error:?}"
    );
    assert!(error.to_string().contains("may still be carried out"));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(accounts.of("a").ask(Balance).await.unwrap(), 5);
}

/// A full mailbox with the fail-fast policy refuses at once and gives the
/// told command back; with the wait policy the sender waits for room.
#[tokio::test(start_paused = true)]
async fn a_full_mailbox_fails_fast_or_waits_per_policy() {
    let store = Arc::new(FaultyStore::new());
    store.on_append(1, Fault::Delay(Duration::from_millis(50)));
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .mailbox_capacity(2)
        .when_full(WhenFull::Fail)
        .build()
        .unwrap();
    let account = accounts.of("a");
    let busy = tokio::spawn({
        let account = account.clone();
        async move { account.ask(Deposit(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    account.tell(Deposit(1)).await.unwrap();
    account.tell(Deposit(1)).await.unwrap();
    let refused = account.tell(Deposit(7)).await.unwrap_err();
    assert!(matches!(refused, SendError::MailboxFull(Deposit(7))));
    let error = account.ask(Deposit(7)).await.unwrap_err();
    assert!(
        matches!(error, EntityError::MailboxFull { capacity: 2, .. }),
        "{error:?}"
    );
    busy.await.unwrap().unwrap();
    assert_eq!(account.ask(Balance).await.unwrap(), 3);

    // One registry per aggregate in a system: the waiting policy gets its own.
    let waiting = accounts_wait(&ActorSystem::new(), store.clone());
    store.on_append(store.appends() + 1, Fault::Delay(Duration::from_millis(50)));
    let account = waiting.of("b");
    let asks: Vec<_> = (0..6)
        .map(|_| {
            let account = account.clone();
            tokio::spawn(async move { account.ask(Deposit(1)).await })
        })
        .collect();
    for ask in asks {
        ask.await.unwrap().unwrap();
    }
    assert_eq!(account.ask(Balance).await.unwrap(), 6);
}

fn accounts_wait(system: &ActorSystem, store: Arc<FaultyStore>) -> nexus_core::Entities<Account> {
    accounts(system, store)
        .mailbox_capacity(1)
        .when_full(WhenFull::Wait)
        .build()
        .unwrap()
}

mod shutdown {
    use super::*;

    /// Shutdown stops accepting, lets entities drain what is queued and
    /// returns; sends afterwards are refused with the message given back.
    #[tokio::test]
    async fn drains_queued_commands_then_refuses_new_ones() {
        let store = Arc::new(FaultyStore::new());
        store.always(Some(Fault::Delay(Duration::from_millis(2))));
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone()).build().unwrap();
        let asks: Vec<_> = (0..50)
            .map(|i| {
                let account = accounts.of(format!("e{}", i % 5));
                tokio::spawn(async move { account.ask(Deposit(1)).await })
            })
            .collect();
        tokio::task::yield_now().await;
        let report = system.shutdown(Duration::from_secs(10)).await;
        assert!(report.drained);
        assert_eq!(system.live_actors(), 0);
        let mut ok = 0;
        for ask in asks {
            match ask.await.unwrap() {
                Ok(_) => ok += 1,
                Err(EntityError::ShuttingDown { .. }) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        // Every accepted command was processed and is in the store.
        assert_eq!(store.inner.len(), ok);
        let refused = accounts.of("e1").tell(Deposit(9)).await.unwrap_err();
        assert!(matches!(refused, SendError::ShuttingDown(Deposit(9))));
        let error = accounts.of("new").ask(Balance).await.unwrap_err();
        assert!(
            matches!(error, EntityError::ShuttingDown { .. }),
            "{error:?}"
        );
    }

    /// At the deadline, what is left is answered `ShuttingDown`, and
    /// shutdown returns: no hang, no lost caller.
    #[tokio::test(start_paused = true)]
    async fn answers_what_is_left_at_the_deadline() {
        let store = Arc::new(FaultyStore::new());
        store.always(Some(Fault::Delay(Duration::from_secs(1))));
        let system = ActorSystem::new();
        let accounts = accounts(&system, store.clone())
            .ask_timeout(Duration::from_secs(3_600))
            .build()
            .unwrap();
        let account = accounts.of("a");
        let asks: Vec<_> = (0..20)
            .map(|_| {
                let account = account.clone();
                tokio::spawn(async move { account.ask(Deposit(1)).await })
            })
            .collect();
        tokio::task::yield_now().await;
        let start = tokio::time::Instant::now();
        let report = system.shutdown(Duration::from_millis(3_500)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(3_500));
        assert!(!report.drained);
        assert_eq!(report.aborted, 1);
        assert_eq!(system.live_actors(), 0);
        let (mut ok, mut shutting_down) = (0, 0);
        for ask in asks {
            match ask.await.unwrap() {
                Ok(_) => ok += 1,
                Err(EntityError::ShuttingDown { .. }) => shutting_down += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((ok, shutting_down), (3, 17));
    }

    /// A system with nothing running shuts down at once, twice.
    #[tokio::test(start_paused = true)]
    async fn an_idle_system_shuts_down_at_once() {
        let system = ActorSystem::new();
        let start = tokio::time::Instant::now();
        assert!(system.shutdown(Duration::from_secs(30)).await.drained);
        assert!(system.shutdown(Duration::from_secs(30)).await.drained);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(!system.is_running());
    }
}
