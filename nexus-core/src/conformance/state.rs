//! Checks of the [`StateStore`] contract.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{StateStore, StoredState};
use crate::{ExpectedVersion, StoreError, StreamId};

fn id(name: &str) -> StreamId {
    StreamId::new(format!("conformance-{name}"))
}

fn assert_conflict(result: Result<u64, StoreError>, expected: ExpectedVersion, actual: u64) {
    match result {
        Err(StoreError::Conflict {
            expected: e,
            actual: a,
            ..
        }) => assert_eq!((e, a), (expected, actual)),
        other => panic!("expected a conflict at {actual}, got {other:?}"),
    }
}

/// Insert with `NoStream`, update with `Exact`, and a stale write is a
/// conflict that changes nothing.
pub async fn insert_update_and_conflict<S: StateStore>(store: Arc<S>) {
    let row = id("row");
    assert_eq!(store.load(&row).await.unwrap(), None);
    assert_eq!(
        store
            .save(&row, ExpectedVersion::NoStream, b"one".to_vec())
            .await
            .unwrap(),
        1
    );
    assert_conflict(
        store
            .save(&row, ExpectedVersion::NoStream, b"x".to_vec())
            .await,
        ExpectedVersion::NoStream,
        1,
    );
    assert_eq!(
        store
            .save(&row, ExpectedVersion::Exact(1), b"two".to_vec())
            .await
            .unwrap(),
        2
    );
    assert_conflict(
        store
            .save(&row, ExpectedVersion::Exact(1), b"stale".to_vec())
            .await,
        ExpectedVersion::Exact(1),
        2,
    );
    assert_conflict(
        store
            .save(&id("missing"), ExpectedVersion::Exact(3), b"x".to_vec())
            .await,
        ExpectedVersion::Exact(3),
        0,
    );
    assert_eq!(
        store.load(&row).await.unwrap(),
        Some(StoredState {
            version: 2,
            payload: b"two".to_vec()
        })
    );
    assert_eq!(store.load(&id("missing")).await.unwrap(), None);
}

/// Delete checks the version too.
pub async fn delete_checks_version<S: StateStore>(store: Arc<S>) {
    let row = id("delete");
    store
        .save(&row, ExpectedVersion::NoStream, b"x".to_vec())
        .await
        .unwrap();
    let err = store
        .delete(&row, ExpectedVersion::Exact(7))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "got {err:?}");
    assert!(store.load(&row).await.unwrap().is_some());
    store.delete(&row, ExpectedVersion::Exact(1)).await.unwrap();
    assert_eq!(store.load(&row).await.unwrap(), None);
}

/// A delete leaves a tombstone one version up: a writer that read the row
/// before it was deleted cannot overwrite the row re-created after, and
/// re-creating expects the tombstone's version (no ABA).
pub async fn deletes_keep_versions_increasing<S: StateStore>(store: Arc<S>) {
    let row = id("tombstone");
    assert_eq!(
        store
            .save(&row, ExpectedVersion::NoStream, b"one".to_vec())
            .await
            .unwrap(),
        1
    );
    store.delete(&row, ExpectedVersion::Exact(1)).await.unwrap();
    assert_eq!(store.load(&row).await.unwrap(), None);
    assert_eq!(store.version(&row).await.unwrap(), 2);
    let deleted = store.load_versioned(&row).await.unwrap();
    assert_eq!((deleted.version, deleted.payload), (2, None));
    // Deleting again changes nothing.
    store.delete(&row, ExpectedVersion::Exact(2)).await.unwrap();
    assert_eq!(store.version(&row).await.unwrap(), 2);
    // Neither "never written" nor the stale writer's version is accepted.
    assert_conflict(
        store
            .save(&row, ExpectedVersion::NoStream, b"x".to_vec())
            .await,
        ExpectedVersion::NoStream,
        2,
    );
    assert_eq!(
        store
            .save(&row, ExpectedVersion::Exact(2), b"again".to_vec())
            .await
            .unwrap(),
        3
    );
    assert_conflict(
        store
            .save(&row, ExpectedVersion::Exact(1), b"stale".to_vec())
            .await,
        ExpectedVersion::Exact(1),
        3,
    );
    assert_eq!(
        store.load(&row).await.unwrap(),
        Some(StoredState {
            version: 3,
            payload: b"again".to_vec()
        })
    );
    // `Any` writes over a tombstone one version up too.
    store.delete(&row, ExpectedVersion::Any).await.unwrap();
    assert_eq!(
        store
            .save(&row, ExpectedVersion::Any, b"any".to_vec())
            .await
            .unwrap(),
        5
    );
}

/// Writers race on one row with randomised timing: each version is won
/// exactly once and the row ends with the last winner's payload.
pub async fn concurrent_writers_one_winner_per_version<S: StateStore>(store: Arc<S>) {
    let row = id("race");
    let mut tasks = Vec::new();
    for writer in 0..12 {
        let store = Arc::clone(&store);
        let row = row.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            for attempt in 0..20 {
                let current = store.load(&row).await.unwrap().map_or(0, |s| s.version);
                let expected = if current == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(current)
                };
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..300))).await;
                let payload = format!("w{writer}-{attempt}").into_bytes();
                match store.save(&row, expected, payload.clone()).await {
                    Ok(version) => wins.push((version, payload)),
                    Err(e) if e.is_conflict() => {}
                    Err(e) => panic!("unexpected error: {e:?}"),
                }
            }
            wins
        }));
    }
    let mut wins = Vec::new();
    for task in tasks {
        wins.extend(task.await.unwrap());
    }
    wins.sort();
    let versions: Vec<u64> = wins.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, (1..=wins.len() as u64).collect::<Vec<_>>());
    let last = store.load(&row).await.unwrap().unwrap();
    assert_eq!(
        (last.version, &last.payload),
        (wins.len() as u64, &wins.last().unwrap().1)
    );
}
