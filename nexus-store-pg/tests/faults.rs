//! Connection faults against a real server: a killed backend, a database
//! that goes away and comes back, and an exhausted pool each surface as
//! their own typed error, and the store works again once the cause is gone.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use nexus_core::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamId};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

fn event() -> NewEvent {
    NewEvent::new("test.happened", 1, b"x".to_vec())
}

#[tokio::test]
async fn an_exhausted_pool_is_its_own_retryable_error() {
    let migrated = common::fresh_config().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(150))
        .connect_with(common::connect_options("exhausted"))
        .await
        .unwrap();
    let config = PgStoreConfig::new(pool.clone())
        .schema(migrated.schema_name().as_str())
        .unwrap();
    let store = PgEventStore::new(&config);
    let stream = StreamId::new("exhausted");

    let held = pool.acquire().await.unwrap();
    let err = store
        .append(&stream, ExpectedVersion::NoStream, &[event()])
        .await
        .expect_err("no free connection");
    assert!(
        matches!(err, StoreError::PoolExhausted { waited_ms: 150 }),
        "got {err:?}"
    );
    assert!(err.is_retryable());
    drop(held);
    let out = store
        .append(&stream, ExpectedVersion::NoStream, &[event()])
        .await
        .expect("a connection is free again");
    assert_eq!(out.version, 1, "the refused attempt wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_mid_write_is_ambiguous_and_the_pool_recovers() {
    let config = common::fresh_config().await;
    let store = PgEventStore::new(&config);
    let stream = StreamId::new("killed");
    // Hold the stream's head in an open transaction, so the store's append
    // waits on the head's key with its statement in flight.
    let mut blocker = PgConnection::connect_with(&common::connect_options("blocker"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{}\".streams (stream_id, aggregate_type, version)
         VALUES ('killed', 'killed', 1)",
        config.schema_name()
    ))
    .execute(&mut blocker)
    .await
    .unwrap();

    let append = tokio::spawn({
        let store = store.clone();
        let stream = stream.clone();
        async move {
            store
                .append(&stream, ExpectedVersion::NoStream, &[event()])
                .await
        }
    });
    let application = config.schema_name().to_string();
    let killed = loop {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
        )
        .bind(&application)
        .fetch_all(&mut blocker)
        .await
        .unwrap();
        if !killed.is_empty() {
            break killed;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(killed, vec![true]);
    let err = append
        .await
        .unwrap()
        .expect_err("the connection was killed");
    // The statement was sent: it may have committed, only a retry can tell.
    assert!(matches!(err, StoreError::Ambiguous { .. }), "got {err:?}");
    assert!(err.is_retryable());

    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let out = store
        .append(&stream, ExpectedVersion::NoStream, &[event()])
        .await
        .expect("the pool replaced the killed connection");
    assert_eq!(out.version, 1);
}

/// A TCP forwarder to the test database that can go down (dropping every
/// connection, refusing new ones) and come back on the same address, as a
/// restarting server does.
struct Outage {
    addr: SocketAddr,
    /// `host:port` of the test database.
    target: String,
    tasks: JoinSet<()>,
}

impl Outage {
    async fn start() -> Self {
        let options = common::connect_options("outage");
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut outage = Self {
            addr,
            target,
            tasks: JoinSet::new(),
        };
        outage.serve(listener);
        outage
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        self.tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
    }

    /// Drops the listener and every forwarded connection.
    async fn down(&mut self) {
        self.tasks.shutdown().await;
    }

    async fn up(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

/// A fresh schema, a forwarder to the database, and a config whose pool
/// connects through the forwarder (short acquire timeout).
async fn behind_outage(application: &str) -> (PgStoreConfig, Outage, PgStoreConfig) {
    let migrated = common::fresh_config().await;
    let outage = Outage::start().await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_millis(300))
        .connect_with(common::connect_options(application).port(outage.addr.port()))
        .await
        .unwrap();
    let config = PgStoreConfig::new(pool)
        .schema(migrated.schema_name().as_str())
        .unwrap();
    (migrated, outage, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_unavailable_not_exhaustion_and_recovers_when_back() {
    let (_, mut outage, config) = behind_outage("outage").await;
    let store = PgEventStore::new(&config);
    let stream = StreamId::new("outage");
    store
        .append(&stream, ExpectedVersion::NoStream, &[event()])
        .await
        .expect("append through the forwarder");

    outage.down().await;
    for _ in 0..3 {
        let err = store
            .append(&stream, ExpectedVersion::Exact(1), &[event()])
            .await
            .expect_err("the database is down");
        assert!(matches!(err, StoreError::Unavailable { .. }), "got {err:?}");
        assert!(err.is_retryable());
    }

    outage.up().await;
    let out = store
        .append(&stream, ExpectedVersion::Exact(1), &[event()])
        .await
        .expect("the store works again once the database is back");
    assert_eq!(out.version, 2, "nothing was written while it was down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_answer_unavailable_during_an_outage_and_recover_after_it() {
    use std::sync::Arc;

    use nexus_core::codec::{EventCodec, Json};
    use nexus_core::testkit::doc::{Add, Counter};
    use nexus_core::{ActorSystem, Entities, EntityError};

    let (migrated, mut outage, config) = behind_outage("outage-entities").await;
    let system = ActorSystem::new();
    let counters = Entities::<Counter>::builder(&system)
        .event_sourced(Arc::new(PgEventStore::new(&config)), EventCodec::new(Json))
        .build()
        .unwrap();
    assert_eq!(counters.of("c").ask(Add(2)).await.unwrap(), 2);

    outage.down().await;
    match counters.of("c").ask(Add(3)).await {
        Err(error @ EntityError::Store(StoreError::Unavailable { .. })) => {
            assert!(error.is_unavailable());
        }
        other => panic!("expected an unavailable store, got {other:?}"),
    }

    outage.up().await;
    // The failed write restarted the entity; it recovers from the store,
    // which holds only the first command.
    let mut answer = None;
    for _ in 0..100 {
        match counters.of("c").ask(Add(3)).await {
            Ok(value) => {
                answer = Some(value);
                break;
            }
            Err(error) if error.is_unavailable() => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("unexpected error: {error:?}"),
        }
    }
    assert_eq!(
        answer,
        Some(5),
        "the entity works again once the database is back"
    );
    let stored = PgEventStore::new(&migrated)
        .read_stream(&StreamId::for_entity("counter", "c"), 1)
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        2,
        "the command refused during the outage wrote nothing"
    );
}

/// Terminates the backend of `application` once it waits on a lock (its
/// write statement in flight behind `blocker`'s open transaction).
async fn kill_when_waiting(blocker: &mut PgConnection, application: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no backend of {application} waited on a lock within 20 s"
        );
        // The blocker asks from inside its open transaction, where
        // pg_stat_activity is a snapshot taken at its first read: clear it,
        // or a backend that starts waiting later is never seen.
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut *blocker)
            .await
            .unwrap();
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
        )
        .bind(application)
        .fetch_all(&mut *blocker)
        .await
        .unwrap();
        if !killed.is_empty() {
            assert_eq!(killed, vec![true]);
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A connection of its own with an open transaction that ran `sql`.
async fn blocking(sql: &str) -> PgConnection {
    let mut blocker = PgConnection::connect_with(&common::connect_options("blocker"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut blocker).await.unwrap();
    blocker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_save_killed_mid_statement_is_ambiguous() {
    use nexus_core::store::StateStore;
    let config = common::fresh_config().await;
    let schema = config.schema_name().to_string();
    let store = nexus_store_pg::PgStateStore::new(&config);
    let (new, existing) = (StreamId::new("new-row"), StreamId::new("existing-row"));
    store
        .save(&existing, ExpectedVersion::NoStream, b"1".to_vec())
        .await
        .unwrap();
    // The new row's key is taken by an uncommitted insert, the existing
    // row is locked by an uncommitted update: each save's statement waits.
    for (id, expected, sql) in [
        (
            new.clone(),
            ExpectedVersion::NoStream,
            format!(
                "INSERT INTO \"{schema}\".states (id, version, payload) VALUES ('new-row', 1, 'x')"
            ),
        ),
        (
            existing.clone(),
            ExpectedVersion::Exact(1),
            format!("UPDATE \"{schema}\".states SET payload = 'y' WHERE id = 'existing-row'"),
        ),
        (
            existing.clone(),
            ExpectedVersion::Any,
            format!("UPDATE \"{schema}\".states SET payload = 'y' WHERE id = 'existing-row'"),
        ),
    ] {
        let mut blocker = blocking(&sql).await;
        let save = tokio::spawn({
            let (store, id) = (store.clone(), id.clone());
            async move { store.save(&id, expected, b"2".to_vec()).await }
        });
        kill_when_waiting(&mut blocker, &schema).await;
        let err = save.await.unwrap().expect_err("the connection was killed");
        assert!(
            matches!(err, StoreError::Ambiguous { .. }),
            "{id} {expected:?}: got {err:?}"
        );
        assert!(err.is_retryable());
        sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    }
    // Nothing was written, and the pool replaced the killed connections.
    assert_eq!(store.version(&new).await.unwrap(), 0);
    assert_eq!(
        store
            .save(&existing, ExpectedVersion::Exact(1), b"3".to_vec())
            .await
            .unwrap(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_save_killed_mid_statement_is_ambiguous() {
    use nexus_core::store::{Snapshot, SnapshotStore};
    let config = common::fresh_config().await;
    let schema = config.schema_name().to_string();
    let store = nexus_store_pg::PgSnapshotStore::new(&config);
    let snapshot = Snapshot {
        stream_id: StreamId::new("snapshotted"),
        version: 10,
        payload: b"state".to_vec(),
        taken_at: std::time::SystemTime::now(),
    };
    // An uncommitted snapshot at the same version: the save's insert waits
    // for it (after the save took its stream lock, so this is the write).
    let mut blocker = blocking(&format!(
        "INSERT INTO \"{schema}\".snapshots (stream_id, version, payload, taken_at)
         VALUES ('snapshotted', 10, 'other', now())"
    ))
    .await;
    let save = tokio::spawn({
        let (store, snapshot) = (store.clone(), snapshot.clone());
        async move { store.save(snapshot, std::num::NonZeroUsize::new(2)).await }
    });
    kill_when_waiting(&mut blocker, &schema).await;
    let err = save.await.unwrap().expect_err("the connection was killed");
    assert!(matches!(err, StoreError::Ambiguous { .. }), "got {err:?}");
    assert!(err.is_retryable());
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();

    assert_eq!(
        store.versions(&snapshot.stream_id).await.unwrap(),
        Vec::<u64>::new()
    );
    store
        .save(snapshot.clone(), std::num::NonZeroUsize::new(2))
        .await
        .expect("the pool replaced the killed connection");
    assert_eq!(store.versions(&snapshot.stream_id).await.unwrap(), [10]);
}
