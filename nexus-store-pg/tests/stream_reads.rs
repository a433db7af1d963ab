//! Whole-stream reads (binary COPY) and tail reads (prepared statement)
//! return the same records as the global log, for any stream id.

mod common;

use nexus_core::{
    EventMetadata, EventStore, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, StreamId,
};
use nexus_store_pg::PgEventStore;

fn events() -> Vec<NewEvent> {
    (0..5_u8)
        .map(|i| NewEvent {
            event_type: format!("type-{i}"),
            schema_version: u32::from(i) * 1_000_000,
            payload: vec![i; usize::from(i) * 3],
            metadata: if i % 2 == 0 {
                EventMetadata::new()
            } else {
                EventMetadata::new().caused_by(uuid::Uuid::new_v4(), uuid::Uuid::new_v4())
            },
        })
        .collect()
}

#[tokio::test]
async fn whole_and_tail_reads_agree_with_the_log_for_awkward_stream_ids() {
    let store = PgEventStore::new(&common::fresh_config().await);
    let streams = [
        "o'neil",
        "back\\slash",
        "quote\"d'' ); DROP TABLE events; --",
        "üñí 🚀",
        "",
    ];
    for name in streams {
        let stream = StreamId::new(name);
        store
            .append(&stream, ExpectedVersion::NoStream, &events())
            .await
            .unwrap();
    }
    let log = store.read_all(LogPosition::START, 1_000).await.unwrap();
    for name in streams {
        let stream = StreamId::new(name);
        let whole = store.read_stream(&stream, 1).await.unwrap();
        let from_log: Vec<RecordedEvent> = log
            .iter()
            .filter(|e| e.stream_id == stream)
            .cloned()
            .collect();
        assert_eq!(whole.len(), 5, "{name:?}");
        assert_eq!(whole, from_log, "{name:?}: whole read equals the log");
        let tail = store.read_stream(&stream, 3).await.unwrap();
        assert_eq!(tail, whole[2..], "{name:?}: tail read equals the suffix");
        assert!(store.read_stream(&stream, 6).await.unwrap().is_empty());
    }
    assert!(
        store
            .read_stream(&StreamId::new("missing"), 1)
            .await
            .unwrap()
            .is_empty()
    );
}
