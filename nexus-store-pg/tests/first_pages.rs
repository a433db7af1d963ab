//! Replays that start together read their first events in one statement:
//! each still gets exactly its own stream from its own version, a long
//! stream's rest follows the page, and a statement lost with its backend
//! fails every replay it served with a retryable error, none left waiting.

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::{EventStore, ExpectedVersion, NewEvent, ReplayEvent, StoreError, StreamId};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use sqlx::Connection;

fn events(stream: &str, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::new("counter.added", 1, format!("{stream}:{i}").into_bytes()))
        .collect()
}

/// What a replay of `stream` from `from` hands over, stopping after `stop`
/// events when given.
async fn replay(
    store: &PgEventStore,
    stream: &StreamId,
    from: u64,
    stop: Option<usize>,
) -> Result<Vec<ReplayEvent>, StoreError> {
    let mut seen = Vec::new();
    store
        .replay(stream, from, &mut |event| {
            seen.push(ReplayEvent::from(event));
            if stop.is_some_and(|stop| seen.len() >= stop) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await?;
    Ok(seen)
}

/// Streams of every length around the page (64 events), one archived, and
/// one that does not exist.
async fn streams(store: &PgEventStore) -> Vec<(StreamId, usize)> {
    let mut streams = Vec::new();
    for length in [0, 1, 2, 63, 64, 65, 130, 200] {
        let stream = StreamId::new(format!("counter-{length}"));
        if length > 0 {
            store
                .append(
                    &stream,
                    ExpectedVersion::NoStream,
                    &events(stream.as_str(), length),
                )
                .await
                .unwrap();
        }
        streams.push((stream, length));
    }
    let archived = StreamId::new("counter-archived");
    store
        .append(&archived, ExpectedVersion::NoStream, &events("archived", 5))
        .await
        .unwrap();
    store.archive_stream(&archived).await.unwrap();
    streams.push((archived, 0));
    streams
}

/// What one replay of a random stream, from a random version, perhaps
/// stopping early, handed over, with what it asked for.
type Replayed = (StreamId, u64, Option<usize>, Vec<ReplayEvent>);

/// `count` replays of random streams of `streams`, each from a random
/// version and some stopping early, started up to 2 ms apart.
fn random_replays(
    store: &Arc<PgEventStore>,
    streams: &[(StreamId, usize)],
    count: usize,
) -> Vec<tokio::task::JoinHandle<Replayed>> {
    (0..count)
        .map(|_| {
            let (stream, length) = streams[fastrand::usize(..streams.len())].clone();
            let from = fastrand::u64(1..=length as u64 + 1);
            let stop = fastrand::bool().then(|| fastrand::usize(1..80));
            let delay = Duration::from_micros(fastrand::u64(0..2_000));
            let store = Arc::clone(store);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let seen = replay(&store, &stream, from, stop).await.unwrap();
                (stream, from, stop, seen)
            })
        })
        .collect()
}

/// Checks each replay against the replay read of the same stream from the
/// same version.
async fn check(store: &PgEventStore, replays: Vec<tokio::task::JoinHandle<Replayed>>) {
    for replay in replays {
        let (stream, from, stop, seen) = replay.await.unwrap();
        let mut whole = store.read_stream_for_replay(&stream, from).await.unwrap();
        if stream.as_str() == "counter-archived" {
            assert!(whole.is_empty(), "an archived stream replays as empty");
        }
        whole.truncate(stop.unwrap_or(usize::MAX));
        assert_eq!(seen, whole, "{stream} from {from}, stop {stop:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_that_start_together_each_get_their_own_stream_from_their_own_version() {
    let store = Arc::new(PgEventStore::new(&common::fresh_config().await));
    let streams = streams(&store).await;
    for _ in 0..3 {
        check(&store, random_replays(&store, &streams, 48)).await;
    }
}

/// Every replay but the first is queued while a lock holds the statements
/// back, so all of them go through the shared first pages: full pages then
/// stream their rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_queued_together_each_get_their_own_stream_page_and_rest() {
    let config = common::fresh_config().await;
    let store = Arc::new(PgEventStore::new(&config));
    let streams = streams(&store).await;
    let mut holder = hold_the_streams_table(&config).await;
    let alone = {
        let (store, stream) = (Arc::clone(&store), streams[1].0.clone());
        tokio::spawn(async move { replay(&store, &stream, 1, None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued = random_replays(&store, &streams, 48);
    for _ in 0..100 {
        if !shared_statements_waiting(&config).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !shared_statements_waiting(&config).await.is_empty(),
        "the queued replays' statement waits on the lock"
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    check(&store, queued).await;
    assert_eq!(alone.await.unwrap().unwrap().len(), 1);
}

/// A connection holding the streams table, which every replay reads, in
/// an open transaction (end it with `ROLLBACK`).
async fn hold_the_streams_table(config: &PgStoreConfig) -> sqlx::PgConnection {
    let mut holder = sqlx::PgConnection::connect_with(&common::connect_options("holder"))
        .await
        .unwrap();
    let schema = config.schema_name().as_str().to_owned();
    sqlx::raw_sql(&format!(
        "BEGIN; LOCK TABLE \"{schema}\".streams IN ACCESS EXCLUSIVE MODE"
    ))
    .execute(&mut holder)
    .await
    .unwrap();
    holder
}

/// The backends of the replays' shared statements waiting on a lock.
async fn shared_statements_waiting(config: &PgStoreConfig) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE application_name = $1 AND wait_event_type = 'Lock'
           AND query LIKE '%WITH ORDINALITY%'",
    )
    .bind(config.schema_name().as_str())
    .fetch_all(config.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_statement_lost_with_its_backend_fails_every_replay_it_served() {
    let config = common::fresh_config().await;
    let store = Arc::new(PgEventStore::new(&config));
    let ids: Vec<StreamId> = (0..10)
        .map(|i| StreamId::new(format!("counter-{i}")))
        .collect();
    for stream in &ids {
        store
            .append(
                stream,
                ExpectedVersion::NoStream,
                &events(stream.as_str(), 3),
            )
            .await
            .unwrap();
    }
    let mut holder = hold_the_streams_table(&config).await;
    let alone = {
        let (store, stream) = (Arc::clone(&store), ids[0].clone());
        tokio::spawn(async move { replay(&store, &stream, 1, None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued: Vec<_> = ids[1..]
        .iter()
        .map(|stream| {
            let (store, stream) = (Arc::clone(&store), stream.clone());
            tokio::spawn(async move { replay(&store, &stream, 1, None).await })
        })
        .collect();
    // The first statement serves the replays queued when it was sent; the
    // rest wait for it to return, all of them, so they share the second.
    // Each is lost with its backend as it waits on the lock.
    let mut terminated = 0;
    for _ in 0..100 {
        if queued.iter().all(tokio::task::JoinHandle::is_finished) {
            break;
        }
        for pid in shared_statements_waiting(&config).await {
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(config.pool())
                .await
                .unwrap();
            terminated += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        (1..=2).contains(&terminated),
        "9 replays shared at most 2 statements, {terminated} were lost"
    );
    for replay in queued {
        let answer = tokio::time::timeout(Duration::from_secs(5), replay)
            .await
            .expect("a replay of a lost statement is answered, not left waiting")
            .unwrap();
        match answer {
            Err(error) => assert!(error.is_retryable(), "retryable, got {error:?}"),
            Ok(seen) => panic!("the lost statement's replay read {} events", seen.len()),
        }
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    let alone = alone.await.unwrap().unwrap();
    assert_eq!(
        alone.len(),
        3,
        "the replay reading alone was not part of it"
    );
    for stream in &ids {
        let seen = replay(&store, stream, 1, None).await.unwrap();
        assert_eq!(seen.len(), 3, "{stream} replays again");
    }
}
