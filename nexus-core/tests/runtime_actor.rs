//! Plain actors: one message at a time in order, bounded mailbox with a
//! policy when full, ask with a timeout, stop after the queued messages,
//! and shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nexus_core::{Actor, ActorOptions, ActorSystem, AskError, ReplyTo, SendError, WhenFull};

enum Msg {
    Push(u64),
    Slow(Duration, ReplyTo<()>),
    Log(ReplyTo<Vec<u64>>),
    Panic,
}

#[derive(Default)]
struct Recorder {
    log: Vec<u64>,
    in_handle: Arc<AtomicUsize>,
    stopped: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Actor for Recorder {
    type Message = Msg;
    async fn handle(&mut self, message: Msg) {
        // One at a time: a second concurrent `handle` would see 1 here.
        assert_eq!(self.in_handle.fetch_add(1, Ordering::SeqCst), 0);
        match message {
            Msg::Push(n) => {
                if n % 3 == 0 {
                    tokio::task::yield_now().await;
                }
                self.log.push(n);
            }
            Msg::Slow(pause, reply) => {
                tokio::time::sleep(pause).await;
                reply.send(());
            }
            Msg::Log(reply) => reply.send(self.log.clone()),
            Msg::Panic => panic!("the actor panics"),
        }
        self.in_handle.fetch_sub(1, Ordering::SeqCst);
    }

    async fn stopped(&mut self) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Several senders: each one's messages arrive in its send order, and the
/// actor handles one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_are_handled_one_at_a_time_in_send_order() {
    let system = ActorSystem::new();
    let actor = system.spawn_with(
        Recorder::default(),
        ActorOptions::default().mailbox_capacity(8),
    );
    let senders: Vec<_> = (0..8u64)
        .map(|sender| {
            let actor = actor.clone();
            tokio::spawn(async move {
                for i in 1..=300u64 {
                    assert!(actor.tell(Msg::Push(sender * 1_000 + i)).await.is_ok());
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let log = actor.ask(Msg::Log).await.unwrap();
    assert_eq!(log.len(), 2_400);
    for sender in 0..8u64 {
        let mine: Vec<u64> = log
            .iter()
            .filter(|n| *n / 1_000 == sender)
            .map(|n| n % 1_000)
            .collect();
        assert!(
            mine.iter().copied().eq(1..=300),
            "sender {sender} out of order"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_ask_times_out_and_a_full_mailbox_fails_fast() {
    let system = ActorSystem::new();
    let options = ActorOptions::default()
        .mailbox_capacity(1)
        .when_full(WhenFull::Fail)
        .ask_timeout(Duration::from_secs(1));
    let actor = system.spawn_with(Recorder::default(), options);
    let start = tokio::time::Instant::now();
    let error = actor
        .ask(|reply| Msg::Slow(Duration::from_secs(5), reply))
        .await
        .unwrap_err();
    assert_eq!(error, AskError::Timeout(Duration::from_secs(1)));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    // The slow message is still being handled: one more fills the mailbox.
    assert!(actor.tell(Msg::Push(1)).await.is_ok());
    let refused = actor.tell(Msg::Push(2)).await.unwrap_err();
    assert!(matches!(refused, SendError::MailboxFull(Msg::Push(2))));
    assert_eq!(
        actor.ask(Msg::Log).await.unwrap_err(),
        AskError::MailboxFull
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(actor.ask(Msg::Log).await.unwrap(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn stop_comes_after_the_queued_messages() {
    let system = ActorSystem::new();
    let stopped = Arc::new(AtomicUsize::new(0));
    let actor = system.spawn(Recorder {
        stopped: Arc::clone(&stopped),
        ..Recorder::default()
    });
    let slow = tokio::spawn({
        let actor = actor.clone();
        async move {
            actor
                .ask(|reply| Msg::Slow(Duration::from_millis(20), reply))
                .await
        }
    });
    tokio::task::yield_now().await;
    for n in 1..=3 {
        assert!(actor.tell(Msg::Push(n)).await.is_ok());
    }
    // `join!` polls the ask first, so it is queued before the stop.
    let (log, stop) = tokio::join!(actor.ask(Msg::Log), actor.stop());
    stop.unwrap();
    assert_eq!(log.unwrap(), vec![1, 2, 3]);
    slow.await.unwrap().unwrap();
    let refused = actor.tell(Msg::Push(4)).await.unwrap_err();
    assert!(matches!(refused, SendError::Stopped(Msg::Push(4))));
    assert!(actor.is_stopped());
    assert_eq!(stopped.load(Ordering::SeqCst), 1);
}

/// A tell sent after `stop()` while the actor is still busy with earlier
/// messages is refused with the message given back, never accepted and
/// dropped; what was queued before the stop is still handled.
#[tokio::test(start_paused = true)]
async fn a_send_after_stop_is_refused_not_dropped() {
    let system = ActorSystem::new();
    let actor = system.spawn(Recorder::default());
    let slow = tokio::spawn({
        let actor = actor.clone();
        async move {
            actor
                .ask(|reply| Msg::Slow(Duration::from_millis(50), reply))
                .await
        }
    });
    tokio::task::yield_now().await;
    assert!(actor.tell(Msg::Push(1)).await.is_ok());
    let log = tokio::spawn({
        let actor = actor.clone();
        async move { actor.ask(Msg::Log).await }
    });
    tokio::task::yield_now().await;
    actor.stop().await.unwrap();
    // The actor is still handling the slow message: the mailbox is not
    // drained yet, and this send is refused rather than queued behind a
    // stop that would drop it.
    let refused = actor.tell(Msg::Push(2)).await.unwrap_err();
    assert!(matches!(refused, SendError::Stopped(Msg::Push(2))));
    assert!(matches!(
        actor.ask(Msg::Log).await.unwrap_err(),
        nexus_core::AskError::Stopped
    ));
    slow.await.unwrap().unwrap();
    assert_eq!(log.await.unwrap().unwrap(), vec![1]);
    actor.stop().await.unwrap();
}

/// A panic ends the actor; asks queued behind it are answered with an
/// error at once instead of waiting for their timeout.
#[tokio::test(start_paused = true)]
async fn a_panic_answers_the_queued_asks_with_an_error() {
    let system = ActorSystem::new();
    let actor = system.spawn_with(
        Recorder::default(),
        ActorOptions::default().ask_timeout(Duration::from_secs(3_600)),
    );
    let slow = tokio::spawn({
        let actor = actor.clone();
        async move {
            actor
                .ask(|reply| Msg::Slow(Duration::from_secs(1), reply))
                .await
        }
    });
    tokio::task::yield_now().await;
    assert!(actor.tell(Msg::Panic).await.is_ok());
    let start = tokio::time::Instant::now();
    let queued = actor.ask(Msg::Log).await.unwrap_err();
    assert_eq!(queued, AskError::Stopped);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    slow.await.unwrap().unwrap();
    assert!(actor.is_stopped());
    assert_eq!(system.live_actors(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_then_answers_the_rest_shutting_down() {
    let system = ActorSystem::new();
    let actor = system.spawn_with(
        Recorder::default(),
        ActorOptions::default().ask_timeout(Duration::from_secs(3_600)),
    );
    let asks: Vec<_> = (0..5)
        .map(|_| {
            let actor = actor.clone();
            tokio::spawn(async move { actor.ask(|r| Msg::Slow(Duration::from_secs(1), r)).await })
        })
        .collect();
    tokio::task::yield_now().await;
    let report = system.shutdown(Duration::from_millis(2_500)).await;
    assert!(!report.drained);
    let results: Vec<_> = futures_results(asks).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| *r == Err(AskError::ShuttingDown))
    );
    assert!(matches!(
        actor.tell(Msg::Push(1)).await,
        Err(SendError::ShuttingDown(_))
    ));
    let late = system.spawn(Recorder::default());
    assert_eq!(
        late.ask(Msg::Log).await.unwrap_err(),
        AskError::ShuttingDown
    );
}

async fn futures_results(
    asks: Vec<tokio::task::JoinHandle<Result<(), AskError>>>,
) -> Vec<Result<(), AskError>> {
    let mut results = Vec::new();
    for ask in asks {
        results.push(ask.await.unwrap());
    }
    results
}
