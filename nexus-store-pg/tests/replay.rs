//! The streaming replay of the Postgres store: what the replay read
//! returns, from any version and for any stream id, and a gap in the
//! stored versions (a row lost outside the store) refused by recovery.

mod common;

use std::ops::ControlFlow;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::testkit::doc::{Counter, CounterEvent};
use nexus_core::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, RecoveryError, ReplayEvent, StreamId,
    recover,
};
use nexus_store_pg::PgEventStore;

fn added(codec: &EventCodec<CounterEvent>, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|_| {
            codec
                .encode(&CounterEvent::Added(1), EventMetadata::new())
                .unwrap()
        })
        .collect()
}

async fn replay_whole(store: &PgEventStore, stream: &StreamId, from: u64) -> Vec<ReplayEvent> {
    let mut seen = Vec::new();
    store
        .replay(stream, from, &mut |e| {
            seen.push(ReplayEvent::from(e));
            ControlFlow::Continue(())
        })
        .await
        .expect("replay");
    seen
}

#[tokio::test]
async fn replay_matches_the_replay_read_from_any_version_and_for_awkward_ids() {
    let store = PgEventStore::new(&common::fresh_config().await);
    let codec = EventCodec::<CounterEvent>::new(Json);
    let long = StreamId::new("counter-long");
    // More rows than one read of the socket holds.
    store
        .append(&long, ExpectedVersion::NoStream, &added(&codec, 2_500))
        .await
        .unwrap();
    for from in [1, 1_024, 1_025, 2_048, 2_049, 2_500] {
        assert_eq!(
            replay_whole(&store, &long, from).await,
            store.read_stream_for_replay(&long, from).await.unwrap(),
            "from version {from}"
        );
    }
    for name in [
        "o'neil",
        "quote\"d'' ); DROP TABLE events; --",
        "üñí 🚀",
        "",
    ] {
        let stream = StreamId::new(name);
        store
            .append(&stream, ExpectedVersion::NoStream, &added(&codec, 3))
            .await
            .unwrap();
        let versions: Vec<u64> = replay_whole(&store, &stream, 1)
            .await
            .iter()
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, [1, 2, 3], "stream {name:?}");
    }
}

#[tokio::test]
async fn a_row_lost_from_the_stream_fails_recovery_with_the_gap() {
    let config = common::fresh_config().await;
    let store = PgEventStore::new(&config);
    let codec = EventCodec::<CounterEvent>::new(Json);
    let stream = StreamId::for_entity("counter", "gappy");
    store
        .append(&stream, ExpectedVersion::NoStream, &added(&codec, 2_000))
        .await
        .unwrap();
    // A hundred rows lost: the replay hands over what is stored, and
    // recovery names the first missing version.
    sqlx::query(&format!(
        "DELETE FROM \"{}\".events WHERE stream_id = $1 AND version BETWEEN 1000 AND 1100",
        config.schema_name().as_str()
    ))
    .bind(stream.as_str())
    .execute(config.pool())
    .await
    .unwrap();
    let error = recover::<Counter>(&stream, &store, &codec, None)
        .await
        .expect_err("a gap is refused");
    assert!(
        matches!(
            error,
            RecoveryError::Gap {
                expected: 1000,
                found: 1101,
                ..
            }
        ),
        "got {error:?}"
    );
}
