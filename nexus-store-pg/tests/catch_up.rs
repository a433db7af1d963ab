//! The global log under out-of-order commits: positions from a sequence
//! are taken at insert time but become visible at commit time, so a reader
//! that trusted them would step past an event that commits late and never
//! see it. These tests hold transactions open on purpose.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nexus_core::{EventStore, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, StreamId};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// Inserts one event in an open transaction on `conn` and returns its id;
/// the caller decides when the transaction commits.
async fn insert_uncommitted(
    conn: &mut PgConnection,
    config: &PgStoreConfig,
    stream: &str,
    version: i64,
) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(&format!(
        "INSERT INTO \"{}\".events
             (stream_id, version, event_id, event_type, schema_version, payload_bytes, occurred_at)
         VALUES ($1, $2, $3, 'test.late', 1, '\\x00', now())",
        config.schema_name()
    ))
    .bind(stream)
    .bind(version)
    .bind(id)
    .execute(&mut *conn)
    .await
    .expect("insert in an open transaction");
    id
}

fn event(label: &str) -> NewEvent {
    NewEvent::new("test.happened", 1, label.as_bytes().to_vec())
}

#[tokio::test]
async fn a_late_commit_is_waited_for_never_skipped() {
    let config = common::fresh_config()
        .await
        .catch_up_wait(Duration::from_millis(50));
    let store = PgEventStore::new(&config);
    let mut slow = PgConnection::connect_with(&common::connect_options("late-commit"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut slow).await.unwrap();
    // The slow transaction takes the smaller sequence value and the smaller
    // transaction id, then commits after a faster one.
    let late = insert_uncommitted(&mut slow, &config, "late-a", 1).await;
    let fast = store
        .append(
            &StreamId::new("late-b"),
            ExpectedVersion::NoStream,
            &[event("fast")],
        )
        .await
        .unwrap();

    let page = store.read_all(LogPosition::START, 10).await.unwrap();
    assert!(
        page.is_empty(),
        "the committed event is held back while an older transaction runs: {page:?}"
    );

    sqlx::query("COMMIT").execute(&mut slow).await.unwrap();
    let page = store.read_all(LogPosition::START, 10).await.unwrap();
    let ids: Vec<Uuid> = page.iter().map(|e| e.metadata.event_id).collect();
    assert_eq!(
        ids,
        vec![late, page[1].metadata.event_id],
        "the late commit comes first, then the fast one"
    );
    assert_eq!(page[1].position, fast.positions[0]);
    assert!(page[0].position < page[1].position);
}

#[tokio::test]
async fn an_aborted_transaction_does_not_stall_the_reader() {
    let config = common::fresh_config()
        .await
        .catch_up_wait(Duration::from_millis(50));
    let store = PgEventStore::new(&config);
    let mut slow = PgConnection::connect_with(&common::connect_options("aborted"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut slow).await.unwrap();
    insert_uncommitted(&mut slow, &config, "aborted-a", 1).await;
    store
        .append(
            &StreamId::new("aborted-b"),
            ExpectedVersion::NoStream,
            &[event("kept")],
        )
        .await
        .unwrap();
    sqlx::query("ROLLBACK").execute(&mut slow).await.unwrap();
    let page = store.read_all(LogPosition::START, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].payload, b"kept");
}

/// Concurrent appenders, some of which hold their transaction open for a
/// random while after inserting, against a reader tailing the log with
/// random page sizes: every committed event is seen exactly once, in
/// strictly increasing position order, and each stream's events in version
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_reader_sees_every_event_once_in_order() {
    const FAST_WRITERS: usize = 12;
    const SLOW_WRITERS: usize = 4;
    const APPENDS: usize = 30;
    let config = common::fresh_config().await;
    let store = Arc::new(PgEventStore::new(&config));
    let writing = Arc::new(AtomicBool::new(true));

    let reader = {
        let store = Arc::clone(&store);
        let writing = Arc::clone(&writing);
        tokio::spawn(async move {
            let mut seen: Vec<RecordedEvent> = Vec::new();
            let mut after = LogPosition::START;
            loop {
                let still_writing = writing.load(Ordering::SeqCst);
                let page = store
                    .read_all(after, 1 + fastrand::usize(0..20))
                    .await
                    .expect("read_all");
                if let Some(last) = page.last() {
                    after = last.position;
                }
                if page.is_empty() && !still_writing {
                    break seen;
                }
                seen.extend(page);
                if fastrand::bool() {
                    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..500))).await;
                }
            }
        })
    };

    let mut writers = Vec::new();
    for w in 0..FAST_WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..APPENDS {
                let stream = StreamId::new(format!("tail-{}", fastrand::usize(0..6)));
                let batch: Vec<NewEvent> = (0..=fastrand::usize(0..3))
                    .map(|n| event(&format!("w{w}-{i}-{n}")))
                    .collect();
                ids.extend(batch.iter().map(|e| e.metadata.event_id));
                store
                    .append(&stream, ExpectedVersion::Any, &batch)
                    .await
                    .expect("append");
            }
            ids
        }));
    }
    for w in 0..SLOW_WRITERS {
        let config = config.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = PgConnection::connect_with(&common::connect_options("slow-writer"))
                .await
                .unwrap();
            let mut ids = Vec::new();
            for i in 0..APPENDS / 3 {
                sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
                let stream = format!("slow-{w}");
                let version = i64::try_from(i).unwrap() + 1;
                ids.push(insert_uncommitted(&mut conn, &config, &stream, version).await);
                tokio::time::sleep(Duration::from_millis(fastrand::u64(1..15))).await;
                sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
            }
            ids
        }));
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.expect("writer"));
    }
    writing.store(false, Ordering::SeqCst);
    let seen = reader.await.expect("reader");

    assert!(
        seen.windows(2).all(|w| w[0].position < w[1].position),
        "positions strictly increase"
    );
    let ids: Vec<Uuid> = seen.iter().map(|e| e.metadata.event_id).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event was seen twice");
    assert_eq!(unique, written, "every committed event was seen");
    let mut last_version = std::collections::HashMap::new();
    for e in &seen {
        let previous = last_version
            .insert(e.stream_id.clone(), e.version)
            .unwrap_or(0);
        assert_eq!(
            e.version,
            previous + 1,
            "{} read in version order",
            e.stream_id
        );
    }
}
