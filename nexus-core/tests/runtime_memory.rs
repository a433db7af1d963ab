//! Bounded memory: a ref costs no actor, idle entities passivate by
//! default, and at most `max_active_entities` are live, without losing any
//! accepted command.

mod runtime_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::{ActorSystem, EntityError, WhenFull};
use runtime_support::*;

#[tokio::test]
async fn a_ref_alone_spawns_nothing() {
    let system = ActorSystem::new();
    let accounts = accounts(&system, Arc::new(InMemoryEventStore::new()))
        .build()
        .unwrap();
    let refs: Vec<_> = (0..10_000).map(|i| accounts.of(format!("a{i}"))).collect();
    assert_eq!((accounts.live(), accounts.started()), (0, 0));
    assert_eq!(refs[7].ask(Deposit(1)).await.unwrap(), 1);
    assert_eq!((accounts.live(), accounts.started()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn idle_entities_passivate_after_two_minutes_by_default() {
    let system = ActorSystem::new();
    let accounts = accounts(&system, Arc::new(InMemoryEventStore::new()))
        .build()
        .unwrap();
    accounts.of("a").ask(Deposit(1)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert!(accounts.is_live("a"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::yield_now().await;
    assert!(!accounts.is_live("a"));
    assert_eq!(accounts.of("a").ask(Balance).await.unwrap(), 1);
}

/// 64 callers, 1,000 ids, a limit of 10: the live count never passes the
/// limit (sampled all along), every command is answered, and the totals are
/// the sums of what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_of_active_entities_holds_and_nothing_is_lost() {
    const LIMIT: usize = 10;
    let store = Arc::new(InMemoryEventStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .max_active_entities(LIMIT)
        .build()
        .unwrap();
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (accounts, most, done) = (accounts.clone(), Arc::clone(&most), Arc::clone(&done));
        async move {
            while !done.load(Ordering::SeqCst) {
                most.fetch_max(accounts.live(), Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        }
    });
    let callers: Vec<_> = (0..64)
        .map(|_| {
            let accounts = accounts.clone();
            tokio::spawn(async move {
                let mut sent = std::collections::HashMap::<String, u64>::new();
                for _ in 0..50 {
                    let id = format!("a{}", fastrand::usize(0..1_000));
                    if fastrand::bool() {
                        accounts.of(&id).tell(Deposit(1)).await.unwrap();
                    } else {
                        accounts.of(&id).ask(Deposit(1)).await.unwrap();
                    }
                    *sent.entry(id).or_default() += 1;
                }
                sent
            })
        })
        .collect();
    let mut sent = std::collections::HashMap::<String, u64>::new();
    for caller in callers {
        for (id, n) in caller.await.unwrap() {
            *sent.entry(id).or_default() += n;
        }
    }
    for (id, n) in &sent {
        assert_eq!(accounts.of(id).ask(Balance).await.unwrap(), *n, "{id}");
    }
    done.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    assert!(most.load(Ordering::SeqCst) <= LIMIT, "{most:?}");
    assert!(
        accounts.started() > 100,
        "entities churned through the limit"
    );
    assert_eq!(store.len() as u64, sent.values().sum::<u64>());
}

/// With every live entity busy and a fail-fast policy, a new id is refused
/// at once, with its command back, rather than waiting.
#[tokio::test]
async fn at_the_limit_with_no_idle_entity_fail_fast_refuses() {
    let store = Arc::new(FaultyStore::new());
    store.always(Some(Fault::Delay(Duration::from_millis(200))));
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .max_active_entities(1)
        .when_full(WhenFull::Fail)
        .build()
        .unwrap();
    let busy = tokio::spawn({
        let account = accounts.of("a");
        async move { account.ask(Deposit(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let error = accounts.of("b").ask(Deposit(1)).await.unwrap_err();
    assert!(
        matches!(error, EntityError::MailboxFull { .. }),
        "{error:?}"
    );
    assert!(error.is_unavailable() && !error.outcome_unknown());
    busy.await.unwrap().unwrap();
    // Once "a" is idle it makes room.
    store.always(None);
    assert_eq!(accounts.of("b").ask(Deposit(1)).await.unwrap(), 1);
    assert!(accounts.live() <= 1);
}

/// An asked command is dropped by its caller, with its answer, whether it
/// was applied or rejected: its memory is freed on the thread that
/// allocated it, not by the entity's worker (the entity runs on the
/// runtime's workers, this test on the thread that blocks on it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asked_command_is_dropped_by_its_caller() {
    let system = ActorSystem::new();
    let accounts = accounts(&system, Arc::new(InMemoryEventStore::new()))
        .build()
        .unwrap();
    let caller = std::thread::current().id();
    for amount in [5, 0] {
        let probe = DropProbe::default();
        let dropped_on = Arc::clone(&probe.0);
        let answer = accounts.of("a").ask(DepositProbed(amount, probe)).await;
        assert_eq!(answer.is_ok(), amount > 0, "{answer:?}");
        let dropped_on = *dropped_on.lock().unwrap();
        assert_eq!(dropped_on, Some(caller), "deposit of {amount}");
    }
}
