//! The runtime's metrics and spans: a local recorder and a local subscriber
//! watch commands, a conflict, a restart, a passivation and recoveries.

// Gauges hold small whole numbers, exactly.
#![allow(clippy::float_cmp)]

mod runtime_support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::lease::InMemoryLease;
use nexus_core::telemetry::{InMemoryRecorder, names};
use nexus_core::{ActorSystem, EntityError, RetryPolicy, SendError, WhenFull};
use runtime_support::*;
use tracing::Instrument;

const ACCOUNT: [(&str, &str); 1] = [("aggregate", "account")];

fn outcome(outcome: &'static str) -> [(&'static str, &'static str); 2] {
    [("aggregate", "account"), ("outcome", outcome)]
}

/// Every metric moves by exactly what happened: two recoveries from the
/// origin plus one after the conflict, one after the restart and one after
/// the passivation.
#[tokio::test(start_paused = true)]
async fn each_metric_moves_by_what_the_runtime_did() {
    let recorder = InMemoryRecorder::new();
    let store = Arc::new(FaultyStore::new());
    let system = ActorSystem::new();
    let accounts = metrics::with_local_recorder(&recorder, || {
        accounts(&system, store.clone())
            .receive_timeout(Duration::from_secs(60))
            .retry(RetryPolicy::none().immediate(3))
            .lease(Arc::new(InMemoryLease::new()))
            .build()
            .unwrap()
    });
    let counter = |name| recorder.counter(name, &ACCOUNT);
    let account = accounts.of("a");

    // A command on a new entity: it starts, takes its lease, recovers
    // (nothing to replay), appends.
    assert_eq!(account.ask(Deposit(5)).await.unwrap(), 5);
    assert_eq!(recorder.counter(names::COMMANDS, &outcome("ok")), 1);
    assert_eq!(recorder.gauge(names::ENTITIES_ACTIVE, &ACCOUNT), 1.0);
    assert_eq!(recorder.gauge(names::LEASES_HELD, &ACCOUNT), 1.0);
    assert_eq!(counter(names::ENTITY_STARTS), 1);
    assert_eq!(counter(names::APPENDS), 1);
    assert_eq!(counter(names::EVENTS_APPENDED), 1);
    assert_eq!(recorder.histogram(names::APPEND_DURATION, &ACCOUNT).0, 1);
    assert_eq!(
        recorder.counter(
            names::RECOVERIES,
            &[("aggregate", "account"), ("from", "origin")]
        ),
        1
    );
    assert_eq!(counter(names::RECOVERY_EVENTS), 0);

    // A rejection writes nothing.
    let rejected = account.ask(Deposit(0)).await.unwrap_err();
    assert!(matches!(rejected, EntityError::Rejected(_)), "{rejected:?}");
    assert_eq!(recorder.counter(names::COMMANDS, &outcome("rejected")), 1);

    // A conflict: another writer appends first (a deposit of 1000); the
    // batch is decided again on reloaded state (a second recovery, of 2
    // events) and commits.
    store.on_append(2, Fault::ForeignWrite);
    assert_eq!(account.ask(Deposit(3)).await.unwrap(), 1008);
    assert_eq!(counter(names::CONFLICTS), 1);
    assert_eq!(counter(names::RETRIES), 1);
    assert_eq!(recorder.counter(names::COMMANDS, &outcome("ok")), 2);
    assert_eq!(counter(names::APPENDS), 2);
    assert_eq!(counter(names::RECOVERY_EVENTS), 2);

    // A panic restarts the entity; the next command recovers 3 events.
    let panicked = account.ask(Boom).await.unwrap_err();
    assert!(
        matches!(panicked, EntityError::Panicked { .. }),
        "{panicked:?}"
    );
    assert_eq!(recorder.counter(names::COMMANDS, &outcome("error")), 1);
    assert_eq!(counter(names::RESTARTS), 1);
    assert_eq!(account.ask(Balance).await.unwrap(), 1008);
    assert_eq!(counter(names::RECOVERY_EVENTS), 5);

    // Idle past the receive timeout: it passivates and frees its lease.
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(counter(names::PASSIVATIONS), 1);
    assert_eq!(recorder.gauge(names::ENTITIES_ACTIVE, &ACCOUNT), 0.0);
    assert_eq!(recorder.gauge(names::LEASES_HELD, &ACCOUNT), 0.0);

    // The next command starts it again and recovers all 3 events.
    assert_eq!(account.ask(Balance).await.unwrap(), 1008);
    assert_eq!(counter(names::ENTITY_STARTS), 2);
    assert_eq!(counter(names::RECOVERY_EVENTS), 8);
    assert_eq!(
        recorder.counter(
            names::RECOVERIES,
            &[("aggregate", "account"), ("from", "origin")]
        ),
        4
    );
    assert_eq!(recorder.histogram(names::RECOVERY_DURATION, &ACCOUNT).0, 4);
    assert_eq!(recorder.gauge(names::ENTITIES_ACTIVE, &ACCOUNT), 1.0);

    // Every command answered, once: 4 ok, 1 rejected, 1 error.
    assert_eq!(recorder.counter_sum(names::COMMANDS), 6);
    assert_eq!(recorder.histogram(names::COMMAND_DURATION, &ACCOUNT).0, 6);
    assert_eq!(recorder.histogram(names::BATCH_SIZE, &ACCOUNT).0, 6);
    assert_eq!(recorder.histogram(names::MAILBOX_DEPTH, &ACCOUNT).0, 6);
    system.shutdown(Duration::from_secs(1)).await;
}

/// A send the runtime refuses reaches no entity, so the send counts it: a
/// full mailbox (asked and told), the limit of active entities with none
/// idle, and a shut-down system, each once, beside the commands answered.
#[tokio::test(start_paused = true)]
async fn refused_sends_are_counted_by_why() {
    let recorder = InMemoryRecorder::new();
    let store = Arc::new(FaultyStore::new());
    // Every append takes 50 ms, so queued commands stay queued.
    store.always(Some(Fault::Delay(Duration::from_millis(50))));
    let system = ActorSystem::new();
    let accounts = metrics::with_local_recorder(&recorder, || {
        accounts(&system, store.clone())
            .mailbox_capacity(1)
            .max_active_entities(1)
            .when_full(WhenFull::Fail)
            .build()
            .unwrap()
    });
    let account = accounts.of("a");
    let busy = tokio::spawn({
        let account = account.clone();
        async move { account.ask(Deposit(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    // "a" appends its first deposit; one more fills its mailbox.
    account.tell(Deposit(1)).await.unwrap();
    let told = account.tell(Deposit(7)).await.unwrap_err();
    assert!(
        matches!(told, SendError::MailboxFull(Deposit(7))),
        "{told:?}"
    );
    let asked = account.ask(Deposit(7)).await.unwrap_err();
    assert!(
        matches!(asked, EntityError::MailboxFull { .. }),
        "{asked:?}"
    );
    // "a" is the one live entity and it is busy: no room for "b".
    let limited = accounts.of("b").ask(Deposit(1)).await.unwrap_err();
    assert!(
        matches!(limited, EntityError::MailboxFull { .. }),
        "{limited:?}"
    );
    assert_eq!(recorder.counter(names::COMMANDS, &outcome("full")), 3);
    busy.await.unwrap().unwrap();
    store.always(None);
    assert_eq!(account.ask(Balance).await.unwrap(), 2);

    system.shutdown(Duration::from_secs(1)).await;
    let closed = account.ask(Deposit(1)).await.unwrap_err();
    assert!(
        matches!(closed, EntityError::ShuttingDown { .. }),
        "{closed:?}"
    );
    let closed = account.tell(Deposit(1)).await.unwrap_err();
    assert!(
        matches!(closed, SendError::ShuttingDown(Deposit(1))),
        "{closed:?}"
    );
    assert_eq!(
        recorder.counter(names::COMMANDS, &outcome("shutting_down")),
        2
    );
    // The deposit asked, the one told and the balance: answered and
    // counted by the entity, once each.
    assert_eq!(recorder.counter(names::COMMANDS, &outcome("ok")), 3);
    assert_eq!(recorder.counter_sum(names::COMMANDS), 8);
    // A refused command's time is recorded too: send to refusal.
    assert_eq!(recorder.histogram(names::COMMAND_DURATION, &ACCOUNT).0, 8);
}

/// Entities built outside the scope of a recorder record nothing into it:
/// tests running in parallel do not see each other's counts.
#[tokio::test]
async fn a_local_recorder_sees_only_the_entities_built_in_its_scope() {
    let recorder = InMemoryRecorder::new();
    let system = ActorSystem::new();
    let outside = accounts(&system, Arc::new(FaultyStore::new()))
        .build()
        .unwrap();
    outside.of("x").ask(Deposit(1)).await.unwrap();
    assert_eq!(recorder.counter_sum(names::COMMANDS), 0);
    system.shutdown(Duration::from_secs(1)).await;
}

/// Captures what a fmt subscriber writes.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

/// The command span is a child of the caller's span although the entity
/// runs in its own task; recovery and append spans are children of it.
#[tokio::test]
async fn the_command_span_is_a_child_of_the_callers_span() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let system = ActorSystem::new();
    let accounts = accounts(&system, Arc::new(FaultyStore::new()))
        .build()
        .unwrap();
    let id = uuid::Uuid::now_v7();
    let options = nexus_core::CommandOptions::new().correlation_id(id);
    accounts
        .of("a")
        .ask_with(Deposit(2), options)
        .instrument(tracing::info_span!("caller", request = 7))
        .await
        .unwrap();
    system.shutdown(Duration::from_secs(1)).await;
    let written = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let line = |prefix: &str| {
        written
            .lines()
            .find(|line| line.contains(prefix) && line.contains("close"))
            .unwrap_or_else(|| panic!("no closed `{prefix}` span in:\n{written}"))
            .to_owned()
    };
    let command = line("nexus_core::entity::message: close");
    assert!(
        command.contains("caller{request=7}:nexus.command{"),
        "{command}"
    );
    for field in [
        "aggregate=\"account\"",
        "stream=account-a",
        &format!("correlation_id={id}"),
        "batch=1",
        "version=1",
        "outcome=\"ok\"",
    ] {
        assert!(command.contains(field), "{field} missing in {command}");
    }
    let recovery = line("}:nexus.recovery{");
    assert!(
        recovery.contains("caller{request=7}:nexus.command{"),
        "{recovery}"
    );
    assert!(
        recovery.contains("events=0 from_snapshot=false"),
        "{recovery}"
    );
    let append = line("}:nexus.append{");
    assert!(
        append.contains("caller{request=7}:nexus.command{"),
        "{append}"
    );
    assert!(append.contains("rows=1"), "{append}");
}
