//! Snapshot retention under concurrent saves of one stream: saves are
//! serialised per stream, so no committed state ever holds more than
//! `keep_last` snapshots, and what remains is the newest ones saved.

mod common;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use nexus_core::StreamId;
use nexus_core::store::{Snapshot, SnapshotStore};
use nexus_store_pg::PgSnapshotStore;

const TASKS: u64 = 16;
const SAVES_PER_TASK: u64 = 25;
const KEEP: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_saves_of_one_stream_never_keep_more_than_keep_last() {
    let config = common::fresh_config().await;
    let store = PgSnapshotStore::new(&config);
    let stream = StreamId::new("retained");
    let keep = NonZeroUsize::new(KEEP);

    // A watcher reads the stored versions while the saves run: every
    // committed state it sees keeps at most KEEP.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn({
        let (store, stream, done) = (store.clone(), stream.clone(), Arc::clone(&done));
        async move {
            let (mut looks, mut most) = (0_u32, 0);
            while !done.load(Ordering::Relaxed) {
                let versions = store.versions(&stream).await.expect("read the versions");
                most = most.max(versions.len());
                looks += 1;
            }
            (looks, most)
        }
    });

    let mut saves = Vec::new();
    for task in 0..TASKS {
        let (store, stream) = (store.clone(), stream.clone());
        saves.push(tokio::spawn(async move {
            for round in 0..SAVES_PER_TASK {
                // Interleaved versions: the tasks race for the newest.
                let version = round * TASKS + task + 1;
                store
                    .save(
                        Snapshot {
                            stream_id: stream.clone(),
                            version,
                            payload: version.to_be_bytes().to_vec(),
                            taken_at: SystemTime::now(),
                        },
                        keep,
                    )
                    .await
                    .expect("save a snapshot");
                let after = store.versions(&stream).await.expect("read the versions");
                assert!(
                    after.len() <= KEEP,
                    "{} snapshots after a save with keep_last {KEEP}: {after:?}",
                    after.len()
                );
            }
        }));
    }
    for save in saves {
        save.await.expect("a saving task");
    }
    done.store(true, Ordering::Relaxed);
    let (looks, most) = watcher.await.expect("the watcher");
    assert!(looks > 0);
    assert!(most <= KEEP, "the watcher saw {most} snapshots");

    let newest = TASKS * SAVES_PER_TASK;
    let expected: Vec<u64> = (newest - KEEP as u64 + 1..=newest).collect();
    assert_eq!(store.versions(&stream).await.unwrap(), expected);
    let latest = store
        .load_latest(&stream)
        .await
        .unwrap()
        .expect("a snapshot");
    assert_eq!(latest.version, newest);
    assert_eq!(latest.payload, newest.to_be_bytes());
}
