//! The durable-state store beyond the conformance suite: writes and
//! deletes with `ExpectedVersion::Any`, and deletes of missing rows.

mod common;

use nexus_core::store::StateStore;
use nexus_core::{ExpectedVersion, StoreError, StreamId};
use nexus_store_pg::PgStateStore;

#[tokio::test]
async fn any_writes_whatever_the_version_and_deletes_check_existence() {
    let store = PgStateStore::new(&common::fresh_config().await);
    let id = StreamId::new("ledger-any");
    assert_eq!(
        store
            .save(&id, ExpectedVersion::Any, b"a".to_vec())
            .await
            .unwrap(),
        1,
        "Any inserts a missing row"
    );
    assert_eq!(
        store
            .save(&id, ExpectedVersion::Any, b"b".to_vec())
            .await
            .unwrap(),
        2,
        "Any updates an existing row"
    );
    assert_eq!(store.load(&id).await.unwrap().unwrap().payload, b"b");

    match store.delete(&id, ExpectedVersion::NoStream).await {
        Err(StoreError::Conflict { actual: 2, .. }) => {}
        other => panic!("deleting an existing row as missing must conflict, got {other:?}"),
    }
    store.delete(&id, ExpectedVersion::Any).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap(), None);

    store
        .delete(&id, ExpectedVersion::NoStream)
        .await
        .expect("a missing row is at version 0");
    match store.delete(&id, ExpectedVersion::Exact(2)).await {
        Err(StoreError::Conflict { actual: 0, .. }) => {}
        other => panic!("deleting a missing row at 2 must conflict, got {other:?}"),
    }
    assert_eq!(
        store
            .save(&id, ExpectedVersion::NoStream, b"c".to_vec())
            .await
            .unwrap(),
        1,
        "a deleted row can be created again"
    );
}
