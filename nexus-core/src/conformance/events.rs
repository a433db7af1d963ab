//! Checks of the [`EventStore`] contract.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::{event, events};
use crate::{
    EventStore, ExpectedVersion, LogPosition, RecordedEvent, ReplayEvent, StoreError, StreamId,
};

fn stream(name: &str) -> StreamId {
    StreamId::new(format!("conformance-{name}"))
}

/// Every event [`EventStore::replay`] hands over from `from_version`, owned.
async fn replay_whole(
    store: &dyn EventStore,
    stream: &StreamId,
    from_version: u64,
) -> Vec<ReplayEvent> {
    let mut seen = Vec::new();
    store
        .replay(stream, from_version, &mut |event| {
            seen.push(ReplayEvent::from(event));
            ControlFlow::Continue(())
        })
        .await
        .expect("replay");
    seen
}

async fn read_whole_log(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut after = LogPosition::START;
    loop {
        let page = store.read_all(after, 100).await.expect("read_all");
        let Some(last) = page.last() else { break };
        after = last.position;
        all.extend(page);
    }
    all
}

fn assert_conflict(error: &StoreError, on: &StreamId, expected: ExpectedVersion, actual: u64) {
    match error {
        StoreError::Conflict {
            stream,
            expected: e,
            actual: a,
        } => {
            assert_eq!((stream, *e, *a), (on, expected, actual), "conflict fields");
            assert_eq!(
                error.to_string(),
                format!("stream {on}: expected version {expected}, found {actual}")
            );
        }
        other => panic!("expected a conflict on {on}, got {other:?}"),
    }
}

/// `NoStream`, `Exact` and `Any` accept and refuse as documented, and a
/// refused append writes nothing.
pub async fn expected_version_semantics<S: EventStore>(store: Arc<S>) {
    let s = stream("expected");
    let out = store
        .append(&s, ExpectedVersion::NoStream, &[event("a")])
        .await
        .expect("first append to a new stream");
    assert_eq!(out.version, 1);

    let err = store
        .append(&s, ExpectedVersion::NoStream, &[event("b")])
        .await
        .expect_err("NoStream on an existing stream");
    assert_conflict(&err, &s, ExpectedVersion::NoStream, 1);

    let err = store
        .append(&s, ExpectedVersion::Exact(5), &[event("c")])
        .await
        .expect_err("a version ahead of the stream");
    assert_conflict(&err, &s, ExpectedVersion::Exact(5), 1);

    let err = store
        .append(&s, ExpectedVersion::Exact(0), &[event("d")])
        .await
        .expect_err("a stale version");
    assert_conflict(&err, &s, ExpectedVersion::Exact(0), 1);

    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        1,
        "refused appends wrote nothing"
    );
    assert_eq!(
        read_whole_log(&*store).await.len(),
        1,
        "refused appends wrote nothing"
    );

    let out = store
        .append(&s, ExpectedVersion::Exact(1), &[event("e")])
        .await
        .expect("exact current version");
    assert_eq!(out.version, 2);
    let out = store
        .append(&s, ExpectedVersion::Any, &[event("f")])
        .await
        .expect("any version");
    assert_eq!(out.version, 3);
    let out = store
        .append(
            &stream("expected-any-new"),
            ExpectedVersion::Any,
            &[event("g")],
        )
        .await
        .expect("any version on a new stream");
    assert_eq!(out.version, 1);

    let out = store
        .append(&s, ExpectedVersion::Exact(3), &[])
        .await
        .expect("an empty batch at the right version");
    assert_eq!((out.version, out.positions.len()), (3, 0));
    let err = store
        .append(&s, ExpectedVersion::Exact(2), &[])
        .await
        .expect_err("an empty batch still checks the version");
    assert_conflict(&err, &s, ExpectedVersion::Exact(2), 3);

    let payloads: Vec<Vec<u8>> = store
        .read_stream(&s, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(payloads, vec![b"a".to_vec(), b"e".to_vec(), b"f".to_vec()]);
}

/// A batch is stored whole or not at all.
pub async fn atomic_batches<S: EventStore>(store: Arc<S>) {
    let s = stream("atomic");
    let out = store
        .append(&s, ExpectedVersion::NoStream, &events("first", 3))
        .await
        .expect("batch of three");
    assert_eq!(out.version, 3);
    assert_eq!(out.positions.len(), 3);
    assert!(
        out.positions.windows(2).all(|w| w[0] < w[1]),
        "positions ascend within a batch"
    );

    let err = store
        .append(&s, ExpectedVersion::Exact(1), &events("stale", 5))
        .await
        .expect_err("stale batch");
    assert_conflict(&err, &s, ExpectedVersion::Exact(1), 3);

    let mut twice = events("dup", 2);
    twice[1].metadata.event_id = twice[0].metadata.event_id;
    let err = store
        .append(&s, ExpectedVersion::Exact(3), &twice)
        .await
        .expect_err("a batch that repeats an event id");
    assert!(
        matches!(err, StoreError::DuplicateEventId { .. }),
        "expected DuplicateEventId, got {err:?}"
    );

    let stored = store.read_stream(&s, 1).await.unwrap();
    assert_eq!(stored.len(), 3, "no event of a refused batch is stored");
    assert!(stored.iter().all(|e| e.payload.starts_with(b"first-")));
    assert_eq!(read_whole_log(&*store).await.len(), 3);
}

/// Versions are 1..=n without gaps, also over batches of mixed sizes, and
/// reading from a version returns exactly the suffix.
pub async fn gapless_versions<S: EventStore>(store: Arc<S>) {
    let s = stream("gapless");
    let mut version = 0;
    for size in [1, 4, 2, 7, 1, 5] {
        let out = store
            .append(&s, ExpectedVersion::Exact(version), &events("g", size))
            .await
            .expect("append");
        version += size as u64;
        assert_eq!(out.version, version);
    }
    let stored = store.read_stream(&s, 1).await.unwrap();
    let versions: Vec<u64> = stored.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=version).collect::<Vec<_>>());
    assert!(stored.iter().all(|e| e.stream_id == s));

    let replay = store.read_stream_for_replay(&s, 1).await.unwrap();
    let projected: Vec<crate::ReplayEvent> = stored.iter().cloned().map(Into::into).collect();
    assert_eq!(
        replay, projected,
        "the replay read returns what the full read does"
    );
    let replay_tail: Vec<u64> = store
        .read_stream_for_replay(&s, 15)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(replay_tail, (15..=version).collect::<Vec<_>>());
    assert!(
        store
            .read_stream_for_replay(&stream("gapless-none"), 1)
            .await
            .unwrap()
            .is_empty()
    );

    let tail: Vec<u64> = store
        .read_stream(&s, 15)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(tail, (15..=version).collect::<Vec<_>>());
    assert!(store.read_stream(&s, version + 1).await.unwrap().is_empty());
    assert!(
        store
            .read_stream(&stream("gapless-none"), 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.stream_version(&stream("gapless-none")).await.unwrap(),
        0
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), version);
}

/// The global log holds every event once, in strictly increasing position
/// order, and paging through it with any limit reads the same sequence.
pub async fn global_order_and_paging<S: EventStore>(store: Arc<S>) {
    let mut written = Vec::new();
    for round in 0..5 {
        for name in ["x", "y", "z"] {
            let s = stream(&format!("order-{name}"));
            let batch = events(&format!("{name}{round}"), 1 + round % 3);
            written.extend(batch.iter().map(|e| e.metadata.event_id));
            store
                .append(&s, ExpectedVersion::Any, &batch)
                .await
                .expect("append");
        }
    }
    let log = read_whole_log(&*store).await;
    let ids: Vec<_> = log.iter().map(|e| e.metadata.event_id).collect();
    assert_eq!(
        ids, written,
        "the log holds every event once, in commit order"
    );
    assert!(log.windows(2).all(|w| w[0].position < w[1].position));

    for limit in [1, 2, 7] {
        let mut paged = Vec::new();
        let mut after = LogPosition::START;
        loop {
            let page = store.read_all(after, limit).await.unwrap();
            assert!(page.len() <= limit, "a page respects its limit");
            let Some(last) = page.last() else { break };
            after = last.position;
            paged.extend(page.into_iter().map(|e| e.metadata.event_id));
        }
        assert_eq!(paged, written, "paging with limit {limit}");
    }
    let last = log.last().unwrap().position;
    assert!(store.read_all(last, 10).await.unwrap().is_empty());
    let err = store
        .read_all(LogPosition::START, 0)
        .await
        .expect_err("limit 0");
    assert!(matches!(err, StoreError::InvalidRequest(_)), "got {err:?}");
}

/// Re-sending the same event ids at the same versions is a success that
/// returns the original positions and writes nothing new.
pub async fn idempotent_retry<S: EventStore>(store: Arc<S>) {
    let s = stream("idempotent");
    store
        .append(&s, ExpectedVersion::NoStream, &events("before", 1))
        .await
        .unwrap();
    let batch = events("deposit", 2);
    let first = store
        .append(&s, ExpectedVersion::Exact(1), &batch)
        .await
        .expect("first attempt");
    let again = store
        .append(&s, ExpectedVersion::Exact(1), &batch)
        .await
        .expect("a retry with the same ids");
    assert_eq!(again, first, "the retry returns the original outcome");
    let any = store
        .append(&s, ExpectedVersion::Any, &batch)
        .await
        .expect("a retry with expected version Any");
    assert_eq!(any, first);
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        3,
        "nothing was written twice"
    );

    let mut mixed = events("mixed", 2);
    mixed[1].metadata.event_id = batch[0].metadata.event_id;
    let err = store
        .append(&s, ExpectedVersion::Exact(3), &mixed)
        .await
        .expect_err("an id reused in a new batch");
    assert!(
        matches!(err, StoreError::DuplicateEventId { .. }),
        "got {err:?}"
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), 3);
    assert_eq!(read_whole_log(&*store).await.len(), 3);
}

/// What is read back is what was written.
pub async fn round_trip<S: EventStore>(store: Arc<S>) {
    let s = stream("round-trip");
    let mut written = event("payload \u{1F600}");
    "wallet.deposited".clone_into(&mut written.event_type);
    written.schema_version = 7;
    written.payload = vec![0, 159, 146, 150, 255];
    written.metadata = written
        .metadata
        .clone()
        .caused_by(uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    store
        .append(&s, ExpectedVersion::NoStream, &[written.clone()])
        .await
        .unwrap();
    let read = store.read_stream(&s, 1).await.unwrap().remove(0);
    assert_eq!(read.stream_id, s);
    assert_eq!(read.version, 1);
    assert_eq!(read.event_type, written.event_type);
    assert_eq!(read.schema_version, written.schema_version);
    assert_eq!(read.payload, written.payload);
    assert_eq!(read.metadata.event_id, written.metadata.event_id);
    assert_eq!(
        read.metadata.correlation_id,
        written.metadata.correlation_id
    );
    assert_eq!(read.metadata.causation_id, written.metadata.causation_id);
    let micros = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_micros();
    assert_eq!(
        micros(read.metadata.timestamp),
        micros(written.metadata.timestamp),
        "timestamps keep at least microsecond precision"
    );
    let from_log = store
        .read_all(LogPosition::START, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        from_log, read,
        "the log and the stream return the same record"
    );
}

/// Many writers race on one stream with randomised timing: each version is
/// won by exactly one of them, the losers see a conflict that names the
/// actual version, and the stream ends gapless with one event per win.
pub async fn concurrent_appenders_one_winner_per_version<S: EventStore>(store: Arc<S>) {
    const WRITERS: usize = 16;
    const ATTEMPTS: usize = 25;
    let s = stream("race");
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            for attempt in 0..ATTEMPTS {
                let seen = store.stream_version(&s).await.expect("version");
                if fastrand::bool() {
                    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..500))).await;
                }
                let label = format!("w{writer}-a{attempt}");
                match store
                    .append(&s, ExpectedVersion::Exact(seen), &[event(&label)])
                    .await
                {
                    Ok(out) => {
                        assert_eq!(out.version, seen + 1);
                        wins.push((seen + 1, label));
                    }
                    Err(StoreError::Conflict { actual, .. }) => {
                        assert!(actual > seen, "a conflict reports a newer version");
                    }
                    Err(other) => panic!("unexpected error: {other:?}"),
                }
            }
            wins
        }));
    }
    let mut wins = Vec::new();
    for task in tasks {
        wins.extend(task.await.expect("writer task"));
    }
    wins.sort();
    let versions: Vec<u64> = wins.iter().map(|(v, _)| *v).collect();
    let expected: Vec<u64> = (1..=wins.len() as u64).collect();
    assert_eq!(versions, expected, "each version is won exactly once");
    let stored = store.read_stream(&s, 1).await.unwrap();
    let stored: Vec<(u64, String)> = stored
        .into_iter()
        .map(|e| (e.version, String::from_utf8(e.payload).unwrap()))
        .collect();
    assert_eq!(stored, wins, "the stream holds exactly the winners' events");
}

/// Many writers append to many streams at once with randomised timing,
/// each with its own expectation: a store that writes concurrent appends
/// of different streams together (in one statement or transaction) must
/// still give each append the outcome it would get alone. A current
/// `Exact` is stored, a stale one is a conflict, `NoStream` on an existing
/// stream is a conflict, and a batch reusing another stream's event id
/// fails alone, storing nothing; no other append fails with them.
pub async fn concurrent_streams_keep_their_own_checks<S: EventStore>(store: Arc<S>) {
    const WRITERS: usize = 24;
    const APPENDS: usize = 12;
    let holder = stream("holder");
    let held = event("held");
    let held_id = held.metadata.event_id;
    store
        .append(&holder, ExpectedVersion::NoStream, &[held])
        .await
        .expect("the holder's event");
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        let holder = holder.clone();
        tasks.push(tokio::spawn(async move {
            let s = stream(&format!("writer{writer}"));
            let mut version = 0;
            let mut stored = Vec::new();
            for append in 0..APPENDS {
                let label = format!("w{writer}-a{append}");
                let n = fastrand::usize(1..=3);
                let batch = events(&label, n);
                match fastrand::u8(0..4) {
                    0 if version > 0 => {
                        let stale = ExpectedVersion::Exact(version - 1);
                        let refused = store.append(&s, stale, &batch).await.expect_err("stale");
                        assert_conflict(&refused, &s, stale, version);
                    }
                    1 if version > 0 => {
                        let refused = store
                            .append(&s, ExpectedVersion::NoStream, &batch)
                            .await
                            .expect_err("the stream exists");
                        assert_conflict(&refused, &s, ExpectedVersion::NoStream, version);
                    }
                    2 => {
                        let mut reusing = batch;
                        reusing[n - 1].metadata.event_id = held_id;
                        match store
                            .append(&s, ExpectedVersion::Exact(version), &reusing)
                            .await
                        {
                            Err(StoreError::DuplicateEventId { stream, event_id }) => {
                                assert_eq!((stream, event_id), (holder.clone(), held_id));
                            }
                            other => panic!("a reused id fails alone, got {other:?}"),
                        }
                    }
                    _ => {
                        let out = store
                            .append(&s, ExpectedVersion::Exact(version), &batch)
                            .await
                            .expect("the stream's only writer appends at its version");
                        assert_eq!(out.version, version + n as u64);
                        assert_eq!(out.positions.len(), n);
                        version = out.version;
                        stored.extend((0..n).map(|i| format!("{label}-{i}")));
                    }
                }
                if fastrand::bool() {
                    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..300))).await;
                }
            }
            (s, stored)
        }));
    }
    for task in tasks {
        let (s, stored) = task.await.expect("writer task");
        let read: Vec<(u64, String)> = store
            .read_stream(&s, 1)
            .await
            .expect("read")
            .into_iter()
            .map(|e| (e.version, String::from_utf8(e.payload).unwrap()))
            .collect();
        let expected: Vec<(u64, String)> = (1..).zip(stored).collect();
        assert_eq!(
            read, expected,
            "{s} holds exactly its stored batches, gapless"
        );
    }
    assert_eq!(store.stream_version(&holder).await.unwrap(), 1);
}

/// A reader tails the global log while writers append to many streams with
/// randomised timing; it sees every committed event exactly once, in
/// position order.
pub async fn reading_while_writing_skips_nothing<S: EventStore>(store: Arc<S>) {
    const WRITERS: usize = 8;
    const APPENDS: usize = 40;
    let done = Arc::new(tokio::sync::Notify::new());
    let reader = {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = LogPosition::START;
            let mut finished = false;
            loop {
                let page = store
                    .read_all(after, 1 + fastrand::usize(0..16))
                    .await
                    .expect("read_all");
                if let Some(last) = page.last() {
                    assert!(last.position > after);
                    after = last.position;
                }
                let empty = page.is_empty();
                seen.extend(page);
                if empty {
                    if finished {
                        break;
                    }
                    tokio::select! {
                        () = done.notified() => finished = true,
                        () = tokio::time::sleep(Duration::from_millis(1)) => {}
                    }
                }
            }
            seen
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..APPENDS {
                let s = stream(&format!("tail-{}", fastrand::usize(0..4)));
                let batch = events(&format!("w{w}-{i}"), 1 + fastrand::usize(0..3));
                ids.extend(batch.iter().map(|e| e.metadata.event_id));
                store
                    .append(&s, ExpectedVersion::Any, &batch)
                    .await
                    .expect("append");
                if fastrand::u8(0..4) == 0 {
                    tokio::time::sleep(Duration::from_micros(fastrand::u64(0..300))).await;
                }
            }
            ids
        }));
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.expect("writer"));
    }
    // The reader may be between a read and its wait: wake it until it stops.
    let seen = loop {
        done.notify_one();
        if reader.is_finished() {
            break reader.await.expect("reader");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        seen.windows(2).all(|w| w[0].position < w[1].position),
        "the reader saw events in strictly increasing position order"
    );
    let ids: Vec<_> = seen.iter().map(|e| e.metadata.event_id).collect();
    let unique: HashSet<_> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event was seen twice");
    assert_eq!(unique, written, "the reader saw every committed event");
}

/// The head of a stream is its version, one lookup away, and says whether
/// the stream is archived; a stream without events has none.
pub async fn stream_heads<S: EventStore>(store: Arc<S>) {
    let s = stream("head");
    assert_eq!(
        store.stream_head(&s).await.unwrap(),
        None,
        "no events, no head"
    );
    store
        .append(&s, ExpectedVersion::NoStream, &events("h", 3))
        .await
        .unwrap();
    store
        .append(&s, ExpectedVersion::Any, &events("h-any", 2))
        .await
        .unwrap();
    let head = store.stream_head(&s).await.unwrap().expect("a head");
    assert_eq!(
        head,
        crate::store::StreamHead {
            version: 5,
            archived: false
        }
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), 5);
    let err = store
        .append(&s, ExpectedVersion::Exact(4), &[event("stale")])
        .await
        .expect_err("a stale version");
    assert_conflict(&err, &s, ExpectedVersion::Exact(4), 5);
    assert_eq!(
        store.stream_head(&s).await.unwrap().map(|h| h.version),
        Some(5),
        "a refused append leaves the head"
    );
    // Many writers of `Any` on one stream: the head counts every event.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = Arc::clone(&store);
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                store
                    .append(&s, ExpectedVersion::Any, &events(&format!("w{w}-{i}"), 2))
                    .await
                    .expect("an Any append never conflicts");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.stream_version(&s).await.unwrap(), 5 + 8 * 10 * 2);
    let versions: Vec<u64> = store
        .read_stream(&s, 1)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, (1..=165).collect::<Vec<_>>(), "gapless under Any");
}

/// An archived stream keeps its head but refuses appends with a typed error
/// and is skipped by stream, log and category reads; other streams are not
/// touched.
pub async fn archiving<S: EventStore>(store: Arc<S>) {
    let gone = stream("archived");
    let kept = stream("kept");
    let batch = events("gone", 2);
    let first = store
        .append(&gone, ExpectedVersion::NoStream, &batch)
        .await
        .unwrap();
    store
        .append(&kept, ExpectedVersion::NoStream, &events("kept", 2))
        .await
        .unwrap();
    let err = store
        .archive_stream(&stream("archived-never-written"))
        .await
        .expect_err("nothing to archive");
    assert!(matches!(err, StoreError::InvalidRequest(_)), "got {err:?}");

    store.archive_stream(&gone).await.expect("archive");
    store
        .archive_stream(&gone)
        .await
        .expect("archiving twice is a no-op");
    assert_eq!(
        store.stream_head(&gone).await.unwrap(),
        Some(crate::store::StreamHead {
            version: 2,
            archived: true
        })
    );
    for expected in [
        ExpectedVersion::Any,
        ExpectedVersion::Exact(2),
        ExpectedVersion::NoStream,
    ] {
        let err = store
            .append(&gone, expected, &[event("late")])
            .await
            .expect_err("an archived stream refuses appends");
        match &err {
            StoreError::StreamArchived { stream } => assert_eq!(stream, &gone),
            other => panic!("expected StreamArchived for {expected}, got {other:?}"),
        }
        assert!(err.is_archived());
    }
    let again = store
        .append(&gone, ExpectedVersion::NoStream, &batch)
        .await
        .expect("a retry of a batch stored before archiving still has its outcome");
    assert_eq!(again, first);
    assert!(store.read_stream(&gone, 1).await.unwrap().is_empty());
    assert!(
        store
            .read_stream_for_replay(&gone, 1)
            .await
            .unwrap()
            .is_empty()
    );
    let log = read_whole_log(&*store).await;
    assert_eq!(log.len(), 2, "the log skips the archived stream");
    assert!(log.iter().all(|e| e.stream_id == kept));
    let mut category = Vec::new();
    let mut after = LogPosition::START;
    loop {
        let page = store.read_category("conformance", after, 10).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        category.extend(page);
    }
    assert_eq!(category.len(), 2, "a category read skips it too");
    assert_eq!(store.read_stream(&kept, 1).await.unwrap().len(), 2);
}

/// A category read returns the events of every stream of one aggregate
/// type, in log order, pages like the global log, and nothing of other
/// categories (nor of a category that merely shares a prefix).
pub async fn category_reads<S: EventStore>(store: Arc<S>) {
    let mut wallets = Vec::new();
    for round in 0..4 {
        for (category, id) in [
            ("wallet", "a"),
            ("order", "a"),
            ("wallet", "b"),
            ("walletx", "a"),
        ] {
            let s = StreamId::for_entity(category, id);
            let batch = events(&format!("{category}{id}{round}"), 1 + round % 2);
            if category == "wallet" {
                wallets.extend(batch.iter().map(|e| e.metadata.event_id));
            }
            store
                .append(&s, ExpectedVersion::Any, &batch)
                .await
                .unwrap();
        }
    }
    // Paged to the end: a page may stop short at the log's horizon.
    let mut all = Vec::new();
    let mut after = LogPosition::START;
    loop {
        let page = store.read_category("wallet", after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        all.extend(page);
    }
    let ids: Vec<_> = all.iter().map(|e| e.metadata.event_id).collect();
    assert_eq!(ids, wallets, "every wallet event, in log order");
    assert!(all.iter().all(|e| e.stream_id.category() == "wallet"));
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let log = read_whole_log(&*store).await;
    let from_log: Vec<_> = log
        .iter()
        .filter(|e| e.stream_id.category() == "wallet")
        .cloned()
        .collect();
    assert_eq!(all, from_log, "the same records as the global log");
    for limit in [1, 3] {
        let mut paged = Vec::new();
        let mut after = LogPosition::START;
        loop {
            let page = store.read_category("wallet", after, limit).await.unwrap();
            assert!(page.len() <= limit);
            let Some(last) = page.last() else { break };
            after = last.position;
            paged.extend(page.into_iter().map(|e| e.metadata.event_id));
        }
        assert_eq!(paged, wallets, "paging with limit {limit}");
    }
    assert!(
        store
            .read_category("nothing", LogPosition::START, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let err = store
        .read_category("wallet", LogPosition::START, 0)
        .await
        .expect_err("limit 0");
    assert!(matches!(err, StoreError::InvalidRequest(_)), "got {err:?}");
}

/// A reused event id is reported as an id that is stored, with the stream
/// that holds it, not the stream being written.
pub async fn duplicate_names_the_holder<S: EventStore>(store: Arc<S>) {
    let holder = stream("holder");
    let writer = stream("writer");
    let held = events("held", 2);
    store
        .append(&holder, ExpectedVersion::NoStream, &held)
        .await
        .unwrap();
    let mut batch = events("new", 2);
    batch[1].metadata.event_id = held[1].metadata.event_id;
    let err = store
        .append(&writer, ExpectedVersion::NoStream, &batch)
        .await
        .expect_err("a reused id");
    match err {
        StoreError::DuplicateEventId { stream, event_id } => {
            assert_eq!(event_id, held[1].metadata.event_id, "the stored id");
            assert_eq!(stream, holder, "the stream holding it");
        }
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    assert_eq!(store.stream_version(&writer).await.unwrap(), 0);
}

/// The streaming replay hands over what the replay read returns, event by
/// event: every version from the one asked for, consecutive and in order,
/// over more events than one batch of a store that pages (so a batch
/// boundary is crossed); nothing of a stream that does not exist; and no
/// event after the visitor breaks.
pub async fn streaming_replay<S: EventStore>(store: Arc<S>) {
    const SIZES: [usize; 4] = [1, 299, 300, 700];
    let s = stream("streaming");
    let mut version = 0;
    for size in SIZES {
        store
            .append(&s, ExpectedVersion::Exact(version), &events("r", size))
            .await
            .expect("append");
        version += size as u64;
    }
    let whole = replay_whole(&*store, &s, 1).await;
    assert_eq!(
        whole,
        store.read_stream_for_replay(&s, 1).await.unwrap(),
        "the streaming replay hands over what the replay read returns"
    );
    let versions: Vec<u64> = whole.iter().map(|e| e.version).collect();
    assert_eq!(
        versions,
        (1..=version).collect::<Vec<_>>(),
        "in order, no gap"
    );
    let payloads: Vec<Vec<u8>> = SIZES
        .iter()
        .flat_map(|&size| (0..size).map(|i| format!("r-{i}").into_bytes()))
        .collect();
    assert_eq!(
        whole.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(),
        payloads,
        "each event with its own payload"
    );
    for from in [0, 1, 2, 256, 257, 600, 601, 1300] {
        let tail: Vec<u64> = replay_whole(&*store, &s, from)
            .await
            .iter()
            .map(|e| e.version)
            .collect();
        assert_eq!(
            tail,
            (from.max(1)..=version).collect::<Vec<_>>(),
            "replay from version {from}"
        );
    }
    assert!(replay_whole(&*store, &s, version + 1).await.is_empty());
    assert!(
        replay_whole(&*store, &stream("streaming-none"), 1)
            .await
            .is_empty()
    );

    let mut seen = Vec::new();
    store
        .replay(&s, 1, &mut |event| {
            seen.push(event.version);
            if event.version == 300 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await
        .expect("a replay the visitor stops is a success");
    assert_eq!(
        seen,
        (1..=300).collect::<Vec<_>>(),
        "nothing is handed over after a break"
    );
}

/// An archived stream replays as empty, like it reads, and archiving one
/// stream leaves the replay of another whole.
pub async fn streaming_replay_of_archived_stream<S: EventStore>(store: Arc<S>) {
    let gone = stream("streaming-archived");
    let kept = stream("streaming-kept");
    for s in [&gone, &kept] {
        store
            .append(s, ExpectedVersion::NoStream, &events("a", 3))
            .await
            .unwrap();
    }
    assert_eq!(replay_whole(&*store, &gone, 1).await.len(), 3);
    store.archive_stream(&gone).await.expect("archive");
    assert!(replay_whole(&*store, &gone, 1).await.is_empty());
    assert!(replay_whole(&*store, &gone, 2).await.is_empty());
    let kept_versions: Vec<u64> = replay_whole(&*store, &kept, 1)
        .await
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(kept_versions, [1, 2, 3]);
}
