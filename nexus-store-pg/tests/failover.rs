//! A failover and a restore on a throwaway cluster (never the shared
//! server): the new history hands out transaction ids below a reader's
//! checkpoint, and the reader, continuing from that checkpoint, still sees
//! every new event, because `migrate()` opened a new log epoch.

mod common;

use std::time::Duration;

use common::throwaway::ThrowawayPostgres;
use nexus_core::{EventStore, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, StreamId};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use sqlx::postgres::PgPoolOptions;

const SCHEMA: &str = "failover";

async fn config_on(url: &str) -> PgStoreConfig {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(20))
        .connect(url)
        .await
        .expect("connect to the throwaway cluster");
    PgStoreConfig::new(pool)
        .schema(SCHEMA)
        .expect("valid schema")
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|_| NewEvent::new("test.happened", 1, b"x".to_vec()))
        .collect()
}

/// Appends `count` single-event batches to `stream`, each its own
/// transaction, from version `from`.
async fn append_each(store: &PgEventStore, stream: &str, from: u64, count: u64) {
    let stream = StreamId::new(stream);
    for version in from..from + count {
        store
            .append(&stream, ExpectedVersion::Exact(version), &events(1))
            .await
            .expect("append");
    }
}

/// Uses up `n` transaction ids, as a busy primary does.
async fn burn_xids(config: &PgStoreConfig, n: usize) {
    for _ in 0..n {
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(config.pool())
            .await
            .expect("burn a transaction id");
    }
}

/// Reads the log after `from` until a page comes back empty.
async fn read_to_end(store: &PgEventStore, from: LogPosition) -> Vec<RecordedEvent> {
    let mut after = from;
    let mut seen = Vec::new();
    loop {
        let page = store.read_all(after, 100).await.expect("read the log");
        let Some(last) = page.last() else {
            return seen;
        };
        after = last.position;
        seen.extend(page);
    }
}

fn streams_of(events: &[RecordedEvent]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| (e.stream_id.as_str().to_owned(), e.version))
        .collect()
}

async fn epochs(config: &PgStoreConfig) -> Vec<(i32, String)> {
    sqlx::query_as(&format!(
        "SELECT epoch, reason FROM {SCHEMA}.log_epochs ORDER BY epoch"
    ))
    .fetch_all(config.pool())
    .await
    .expect("read the log's epochs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_reuses_transaction_ids_and_no_reader_skips() {
    let mut primary = ThrowawayPostgres::start_new();
    let old = config_on(&primary.url()).await;
    old.migrate().await.expect("migrate the primary");
    let old_store = PgEventStore::new(&old);
    append_each(&old_store, "wallet-kept", 0, 3).await;

    // The standby's copy ends here: what follows is the tail an
    // asynchronous standby had not received when the primary died.
    let mut standby = primary.base_backup();
    burn_xids(&old, 300).await;
    append_each(&old_store, "wallet-lost", 0, 3).await;

    let read = read_to_end(&old_store, LogPosition::START).await;
    assert_eq!(
        streams_of(&read),
        [
            ("wallet-kept".into(), 1),
            ("wallet-kept".into(), 2),
            ("wallet-kept".into(), 3),
            ("wallet-lost".into(), 1),
            ("wallet-lost".into(), 2),
            ("wallet-lost".into(), 3),
        ]
    );
    let checkpoint = read.last().expect("events").position;
    assert_eq!(checkpoint.epoch, 0);
    old.pool().close().await;

    // The failover: the primary is gone, the standby is promoted onto a
    // new timeline, and the application starts against it.
    primary.stop();
    standby.start_standby();
    standby.promote();
    let new = config_on(&standby.url()).await;
    new.migrate().await.expect("migrate the promoted standby");
    let reasons = epochs(&new).await;
    assert_eq!(reasons.len(), 2, "a new epoch began: {reasons:?}");
    assert!(
        reasons[1].1.starts_with("timeline 2 after 1"),
        "{reasons:?}"
    );

    let new_store = PgEventStore::new(&new);
    // The lost tail is gone: the stream starts over at version 1.
    append_each(&new_store, "wallet-lost", 0, 2).await;
    append_each(&new_store, "wallet-kept", 3, 2).await;

    let after = read_to_end(&new_store, checkpoint).await;
    assert_eq!(
        streams_of(&after),
        [
            ("wallet-lost".into(), 1),
            ("wallet-lost".into(), 2),
            ("wallet-kept".into(), 4),
            ("wallet-kept".into(), 5),
        ],
        "the reader continuing from its checkpoint sees every new event"
    );
    for event in &after {
        // The reuse is real: by transaction id alone these would sort
        // before the checkpoint, and a reader would skip them.
        assert!(
            event.position.commit < checkpoint.commit,
            "{:?} reuses a transaction id below {checkpoint:?}",
            event.position
        );
        assert_eq!(event.position.epoch, 1);
        assert!(event.position > checkpoint);
    }
    // A reader from the start sees the surviving history, then the new one.
    let all = read_to_end(&new_store, LogPosition::START).await;
    assert_eq!(all.len(), 3 + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_restored_into_another_cluster_starts_an_epoch_and_no_reader_skips() {
    let source = ThrowawayPostgres::start_new();
    let old = config_on(&source.url()).await;
    old.migrate().await.expect("migrate the source");
    let old_store = PgEventStore::new(&old);
    // A busier cluster: its transaction ids are far ahead of a fresh one's.
    burn_xids(&old, 1_500).await;
    append_each(&old_store, "order-1", 0, 3).await;
    let read = read_to_end(&old_store, LogPosition::START).await;
    assert_eq!(read.len(), 3);
    let checkpoint = read.last().expect("events").position;

    // A logical copy (pg_dump | psql) into a fresh cluster.
    let target = ThrowawayPostgres::start_new();
    target.psql(&source.pg_dump(SCHEMA));
    let new = config_on(&target.url()).await;
    new.migrate()
        .await
        .expect("the restored log is in an older epoch, so it is not ahead");
    let reasons = epochs(&new).await;
    assert_eq!(reasons.len(), 2, "a new epoch began: {reasons:?}");
    assert!(reasons[1].1.starts_with("system "), "{reasons:?}");

    let new_store = PgEventStore::new(&new);
    append_each(&new_store, "order-1", 3, 2).await;
    append_each(&new_store, "order-2", 0, 1).await;
    let after = read_to_end(&new_store, checkpoint).await;
    assert_eq!(
        streams_of(&after),
        [
            ("order-1".into(), 4),
            ("order-1".into(), 5),
            ("order-2".into(), 1)
        ]
    );
    for event in &after {
        assert!(
            event.position.commit < checkpoint.commit,
            "{:?} has a transaction id below the restored {checkpoint:?}",
            event.position
        );
        assert!(event.position > checkpoint);
    }
    assert_eq!(read_to_end(&new_store, LogPosition::START).await.len(), 6);
}
