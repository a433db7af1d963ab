//! Migrations: idempotent, safe when many processes start together, one
//! schema per application.

mod common;

use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use nexus_store_pg::{PgEventStore, PgSetupError, PgStoreConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_migrations_all_succeed_and_reruns_are_no_ops() {
    let schema = common::schema_name();
    let mut starters = Vec::new();
    for i in 0..8 {
        let schema = schema.clone();
        starters.push(tokio::spawn(async move {
            // Each starter has its own pool, as separate processes would.
            let pool = common::pool(&format!("migrate-{i}"), 2).await;
            let config = PgStoreConfig::new(pool).schema(&schema).unwrap();
            config.migrate().await.map(|()| config)
        }));
    }
    let mut configs = Vec::new();
    for starter in starters {
        configs.push(
            starter
                .await
                .unwrap()
                .expect("every concurrent migrate succeeds"),
        );
    }
    configs[0].migrate().await.expect("a rerun is a no-op");
    let applied: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{schema}\"._sqlx_migrations WHERE success"
    ))
    .fetch_one(configs[0].pool())
    .await
    .unwrap();
    let embedded = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!(
        applied,
        i64::try_from(embedded).unwrap(),
        "each migration applied once"
    );
    let store = PgEventStore::new(&configs[3]);
    let out = store
        .append(
            &StreamId::new("after-migrate"),
            ExpectedVersion::NoStream,
            &[NewEvent::new("t", 1, vec![])],
        )
        .await
        .unwrap();
    assert_eq!(out.version, 1);
}

#[tokio::test]
async fn applications_in_different_schemas_do_not_see_each_other() {
    let a = common::fresh_config().await;
    let b = common::fresh_config().await;
    let stream = StreamId::new("shared-name");
    let (store_a, store_b) = (PgEventStore::new(&a), PgEventStore::new(&b));
    store_a
        .append(
            &stream,
            ExpectedVersion::NoStream,
            &[NewEvent::new("t", 1, b"a".to_vec())],
        )
        .await
        .unwrap();
    assert_eq!(store_b.stream_version(&stream).await.unwrap(), 0);
    store_b
        .append(
            &stream,
            ExpectedVersion::NoStream,
            &[NewEvent::new("t", 1, b"b".to_vec())],
        )
        .await
        .expect("the same stream name is new in the other schema");
    assert_eq!(
        store_a.read_stream(&stream, 1).await.unwrap()[0].payload,
        b"a"
    );
}

#[tokio::test]
async fn a_bad_schema_name_is_refused_before_touching_the_database() {
    let pool = common::pool("bad-schema", 1).await;
    for bad in [
        "",
        "Upper",
        "1abc",
        "a-b",
        "a\"; DROP SCHEMA public; --",
        "pg_x",
        &"a".repeat(64),
    ] {
        match PgStoreConfig::new(pool.clone()).schema(bad) {
            Err(PgSetupError::InvalidSchema { name, .. }) => assert_eq!(name, bad),
            other => panic!("{bad:?} was accepted: {other:?}"),
        }
    }
}
