//! The stream head an append moves is a HOT update: the new row version
//! stays on its page (`streams` leaves room, and no index covers a column
//! an append changes), so appends write no new `streams_pkey` entries.

mod common;

use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use nexus_store_pg::PgEventStore;

const STREAMS: usize = 300;

fn event() -> NewEvent {
    NewEvent::new("test.happened", 1, b"x".to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_updates_stay_on_their_page() {
    let config = common::fresh_config().await;
    let schema = config.schema_name().to_string();
    let store = PgEventStore::new(&config);
    let streams: Vec<StreamId> = (0..STREAMS)
        .map(|i| StreamId::new(format!("hot-{i}")))
        .collect();
    // Enough heads to fill several pages up to the fill factor.
    for stream in &streams {
        store
            .append(stream, ExpectedVersion::NoStream, &[event()])
            .await
            .unwrap();
    }
    let blocks = format!(
        "SELECT stream_id, (ctid::text::point)[0]::int8 FROM \"{schema}\".streams ORDER BY stream_id"
    );
    let before: Vec<(String, i64)> = sqlx::query_as(&blocks)
        .fetch_all(config.pool())
        .await
        .unwrap();
    let pages = before.iter().map(|(_, b)| *b).max().unwrap() + 1;
    assert!(pages >= 3, "the heads fill {pages} pages");

    for stream in &streams {
        store
            .append(stream, ExpectedVersion::Exact(1), &[event()])
            .await
            .unwrap();
    }
    let after: Vec<(String, i64)> = sqlx::query_as(&blocks)
        .fetch_all(config.pool())
        .await
        .unwrap();
    // A row version on the same page with no indexed column changed is a
    // HOT update. On full pages (fill factor 100) nearly every head would
    // move to another page and add an index entry.
    let stayed = before
        .iter()
        .zip(&after)
        .filter(|((s1, b1), (s2, b2))| s1 == s2 && b1 == b2)
        .count();
    assert!(
        stayed * 10 >= STREAMS * 9,
        "{stayed} of {STREAMS} heads stayed on their page"
    );
    let fillfactor: Option<Vec<String>> = sqlx::query_scalar(&format!(
        "SELECT reloptions FROM pg_class WHERE oid = '\"{schema}\".streams'::regclass"
    ))
    .fetch_one(config.pool())
    .await
    .unwrap();
    assert_eq!(fillfactor, Some(vec!["fillfactor=50".to_owned()]));
}
