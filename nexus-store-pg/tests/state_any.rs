//! The durable-state store beyond the conformance suite: writes and
//! deletes with `ExpectedVersion::Any`, and deletes of missing and deleted
//! rows (a delete leaves a tombstone one version up).

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
    assert_eq!(store.version(&id).await.unwrap(), 3, "the tombstone");

    match store.delete(&id, ExpectedVersion::NoStream).await {
        Err(StoreError::Conflict { actual: 3, .. }) => {}
        other => panic!("a deleted row is not a missing one, got {other:?}"),
    }
    store
        .delete(&id, ExpectedVersion::Exact(3))
        .await
        .expect("deleting a deleted row changes nothing");
    match store.delete(&id, ExpectedVersion::Exact(2)).await {
        Err(StoreError::Conflict { actual: 3, .. }) => {}
        other => panic!("deleting at a stale version must conflict, got {other:?}"),
    }
    assert_eq!(
        store
            .save(&id, ExpectedVersion::Exact(3), b"c".to_vec())
            .await
            .unwrap(),
        4,
        "a deleted row is created again from its tombstone's version"
    );

    let missing = StreamId::new("ledger-never");
    store
        .delete(&missing, ExpectedVersion::NoStream)
        .await
        .expect("a missing row is at version 0");
    store
        .delete(&missing, ExpectedVersion::Any)
        .await
        .expect("deleting a missing row changes nothing");
    match store.delete(&missing, ExpectedVersion::Exact(2)).await {
        Err(StoreError::Conflict { actual: 0, .. }) => {}
        other => panic!("deleting a missing row at 2 must conflict, got {other:?}"),
    }
    assert_eq!(store.version(&missing).await.unwrap(), 0);
}
