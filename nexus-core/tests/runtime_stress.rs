//! Many tasks, randomised timing, bounded counts: the runtime's promises
//! under load. Every test checks outcomes, never durations.

mod runtime_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::{ActorSystem, EntityError, StreamId, WhenFull};
use runtime_support::*;

async fn stored_balance(store: &FaultyStore, id: &str) -> u64 {
    let codec = EventCodec::<AccountEvent>::new(Json);
    nexus_core::recover::<Account>(&StreamId::for_entity("account", id), store, &codec, None)
        .await
        .unwrap()
        .state
        .balance
}

/// Checks the replies of unit deposits to one entity: each acknowledged
/// command got a distinct balance, together exactly 1..=acked. A command
/// applied twice, or acknowledged without being committed, breaks this.
fn assert_exactly_once(mut replies: Vec<u64>, stored: u64) {
    replies.sort_unstable();
    let acked = replies.len() as u64;
    assert_eq!(
        stored, acked,
        "the stored state is the sum of the acknowledged commands"
    );
    assert!(
        replies.iter().copied().eq(1..=acked),
        "replies are not exactly 1..={acked}"
    );
}

/// 10,000 callers on one entity, with group commit and appends that fail
/// at random: every accepted command is answered exactly once, and the
/// final state equals the sum of the acknowledged commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_callers_on_one_entity() {
    let store = Arc::new(FaultyStore::new());
    store.fail_randomly(2);
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .group_commit(64)
        .mailbox_capacity(256)
        .when_full(WhenFull::Wait)
        .ask_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let callers: Vec<_> = (0..10_000)
        .map(|_| {
            let accounts = accounts.clone();
            tokio::spawn(async move {
                if fastrand::u8(0..4) == 0 {
                    tokio::task::yield_now().await;
                }
                accounts.of("hot").ask(Deposit(1)).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    let mut failed = 0;
    for caller in callers {
        match caller.await.unwrap() {
            Ok(balance) => replies.push(balance),
            Err(EntityError::Store(error)) => {
                assert!(error.is_retryable());
                failed += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(replies.len() + failed, 10_000);
    assert!(failed > 0, "the fault injection never fired");
    assert!(
        store.committed().iter().any(|&size| size > 1),
        "no group commit happened"
    );
    assert_exactly_once(replies, stored_balance(&store, "hot").await);
    assert!(system.shutdown(Duration::from_secs(10)).await.drained);
}

/// The same with a small fail-fast mailbox: some commands are refused at
/// once; the refused ones are not applied, the accepted ones exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_callers_on_a_fail_fast_mailbox() {
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .group_commit(16)
        .mailbox_capacity(32)
        .when_full(WhenFull::Fail)
        .build()
        .unwrap();
    let callers: Vec<_> = (0..10_000)
        .map(|_| {
            let account = accounts.of("hot");
            tokio::spawn(async move { account.ask(Deposit(1)).await })
        })
        .collect();
    let mut replies = Vec::new();
    let mut refused = 0;
    for caller in callers {
        match caller.await.unwrap() {
            Ok(balance) => replies.push(balance),
            Err(EntityError::MailboxFull { capacity: 32, .. }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(replies.len() + refused, 10_000);
    assert_exactly_once(replies, stored_balance(&store, "hot").await);
}

/// Invariants 1 and 2 under races: callers hammer a few ids while
/// entities passivate after 1 ms, stop themselves, get poison pills and
/// panic. At no time do two actors hold one id (the lease probe counts
/// holders), and every deposit is answered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_writer_and_no_loss_under_passivation_stop_and_restart_races() {
    const IDS: usize = 12;
    let store = Arc::new(FaultyStore::new());
    let lease = WatchLease::new();
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .receive_timeout(Duration::from_millis(1))
        .lease(Arc::new(lease.clone()))
        .group_commit(4)
        .mailbox_capacity(8)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let accounts = accounts.clone();
            tokio::spawn(async move {
                let mut replies = Vec::new();
                for _ in 0..150 {
                    let id = format!("e{}", fastrand::usize(0..IDS));
                    let account = accounts.of(&id);
                    match fastrand::u8(0..20) {
                        0 => account.stop().await.unwrap(),
                        1 => {
                            account.ask(Retire).await.unwrap();
                        }
                        2 => {
                            let error = account.ask(Boom).await.unwrap_err();
                            assert!(matches!(error, EntityError::Panicked { .. }), "{error:?}");
                        }
                        _ => replies.push((id, account.ask(Deposit(1)).await.unwrap())),
                    }
                    if fastrand::bool() {
                        let pause = fastrand::u64(0..1_500);
                        tokio::time::sleep(Duration::from_micros(pause)).await;
                    }
                }
                replies
            })
        })
        .collect();
    let mut by_id: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for task in tasks {
        for (id, reply) in task.await.unwrap() {
            by_id.entry(id).or_default().push(reply);
        }
    }
    assert_eq!(lease.most_holders(), 1, "two actors held one id at once");
    assert!(
        accounts.started() > IDS as u64,
        "passivation never raced (started {})",
        accounts.started()
    );
    for (id, replies) in by_id {
        assert_exactly_once(replies, stored_balance(&store, &id).await);
    }
    assert!(system.shutdown(Duration::from_secs(10)).await.drained);
}

/// Told commands racing passivation: every accepted tell is processed
/// (tells have no reply, so the store is the witness).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accepted_tells_are_processed_across_passivation() {
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .receive_timeout(Duration::from_micros(300))
        .mailbox_capacity(4)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let accounts = accounts.clone();
            tokio::spawn(async move {
                let mut told: HashMap<String, u64> = HashMap::new();
                for _ in 0..200 {
                    let id = format!("t{}", fastrand::usize(0..6));
                    accounts.of(&id).tell(Deposit(1)).await.unwrap();
                    *told.entry(id).or_default() += 1;
                    if fastrand::u8(0..4) == 0 {
                        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..800))).await;
                    }
                }
                told
            })
        })
        .collect();
    let mut told: HashMap<String, u64> = HashMap::new();
    for task in tasks {
        for (id, n) in task.await.unwrap() {
            *told.entry(id).or_default() += n;
        }
    }
    assert!(system.shutdown(Duration::from_secs(10)).await.drained);
    assert!(accounts.started() > 6, "passivation never raced");
    for (id, n) in told {
        assert_eq!(stored_balance(&store, &id).await, n, "{id}");
    }
}

/// Shutdown in the middle of traffic with a short deadline: every ask ends
/// in a reply or `ShuttingDown`, every reply is durable, shutdown returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_under_load_answers_everyone() {
    let store = Arc::new(FaultyStore::new());
    store.always(Some(Fault::Delay(Duration::from_micros(200))));
    let system = ActorSystem::new();
    let accounts = accounts(&system, store.clone())
        .group_commit(8)
        .build()
        .unwrap();
    let callers: Vec<_> = (0..2_000)
        .map(|i| {
            let accounts = accounts.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..20_000))).await;
                accounts.of(format!("s{}", i % 20)).ask(Deposit(1)).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let report = system.shutdown(Duration::from_millis(5)).await;
    assert_eq!(system.live_actors(), 0);
    let mut acked = 0;
    for caller in callers {
        match caller.await.unwrap() {
            Ok(_) => acked += 1,
            Err(EntityError::ShuttingDown { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    // An append in flight at the deadline may commit without its reply, so
    // the store holds at least what was acknowledged, and at most one
    // batch per entity more.
    let stored = store.inner.len();
    assert!(stored >= acked, "acknowledged {acked}, stored {stored}");
    assert!(
        stored <= acked + 20 * 8,
        "acknowledged {acked}, stored {stored}"
    );
    let _ = report;
}
