//! Checks of the [`SnapshotStore`] contract.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::SystemTime;

use crate::StreamId;
use crate::store::{Snapshot, SnapshotStore};

fn snapshot(stream: &str, version: u64, payload: &[u8]) -> Snapshot {
    Snapshot {
        stream_id: StreamId::new(format!("conformance-{stream}")),
        version,
        payload: payload.to_vec(),
        taken_at: SystemTime::now(),
    }
}

/// The snapshot with the highest version is the one loaded, whatever the
/// order of saving.
pub async fn latest_wins<S: SnapshotStore>(store: Arc<S>) {
    let id = snapshot("latest", 0, b"").stream_id;
    assert_eq!(store.load_latest(&id).await.unwrap(), None);
    for version in [10, 30, 20] {
        store
            .save(
                snapshot("latest", version, format!("v{version}").as_bytes()),
                None,
            )
            .await
            .unwrap();
    }
    let latest = store.load_latest(&id).await.unwrap().expect("a snapshot");
    assert_eq!(
        (latest.version, latest.payload.as_slice()),
        (30, &b"v30"[..])
    );
    assert_eq!(store.versions(&id).await.unwrap(), vec![10, 20, 30]);
}

/// Saving at an existing version replaces that snapshot.
pub async fn same_version_replaces<S: SnapshotStore>(store: Arc<S>) {
    let id = snapshot("replace", 0, b"").stream_id;
    store
        .save(snapshot("replace", 5, b"old"), None)
        .await
        .unwrap();
    store
        .save(snapshot("replace", 5, b"new"), None)
        .await
        .unwrap();
    assert_eq!(store.versions(&id).await.unwrap(), vec![5]);
    assert_eq!(
        store.load_latest(&id).await.unwrap().unwrap().payload,
        b"new"
    );
}

/// `keep_last` keeps only the newest snapshots of the stream.
pub async fn keep_last_retention<S: SnapshotStore>(store: Arc<S>) {
    let id = snapshot("retention", 0, b"").stream_id;
    let two = NonZeroUsize::new(2);
    for version in 1..=5 {
        store
            .save(snapshot("retention", version * 10, b"s"), two)
            .await
            .unwrap();
    }
    assert_eq!(store.versions(&id).await.unwrap(), vec![40, 50]);
    store
        .save(snapshot("retention", 60, b"s"), NonZeroUsize::new(1))
        .await
        .unwrap();
    assert_eq!(store.versions(&id).await.unwrap(), vec![60]);
}

/// One stream's snapshots and retention never touch another's.
pub async fn streams_are_isolated<S: SnapshotStore>(store: Arc<S>) {
    store.save(snapshot("iso-a", 1, b"a"), None).await.unwrap();
    store
        .save(snapshot("iso-b", 2, b"b"), NonZeroUsize::new(1))
        .await
        .unwrap();
    store
        .save(snapshot("iso-b", 3, b"b"), NonZeroUsize::new(1))
        .await
        .unwrap();
    let a = snapshot("iso-a", 0, b"").stream_id;
    assert_eq!(store.versions(&a).await.unwrap(), vec![1]);
    assert_eq!(store.load_latest(&a).await.unwrap().unwrap().payload, b"a");
}
