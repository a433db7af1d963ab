//! The production schema: stream heads under a hot `Any` stream, jsonb
//! payloads, category reads on an index, migrating today's schema in place,
//! rolling upgrades, a log restored ahead of the server, the held-back
//! horizon, and the SQLSTATE mapping of timeouts, read-only servers and
//! races.

mod common;

use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{Codec, Json};
use nexus_core::{EventStore, ExpectedVersion, LogPosition, NewEvent, StoreError, StreamId};
use nexus_store_pg::{AppendCoalescing, PayloadFormat, PgEventStore, PgSetupError, PgStoreConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

fn event(label: &str) -> NewEvent {
    NewEvent::new("test.happened", 1, label.as_bytes().to_vec())
}

fn q(config: &PgStoreConfig, sql: &str) -> String {
    sql.replace("{schema}", &format!("\"{}\"", config.schema_name()))
}

/// 32 writers × 50 `Any` appends on one stream: every identity value the
/// events table consumed belongs to a stored row (no insert failed), and
/// the stream is gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_any_stream_wastes_no_insert() {
    let migrated = common::fresh_config().await;
    let pool = common::pool(migrated.schema_name().as_str(), 32).await;
    // Without coalescing, which would write one stream's appends one at a
    // time: the 32 writers meet at the head row itself.
    let config = PgStoreConfig::new(pool)
        .schema(migrated.schema_name().as_str())
        .unwrap()
        .coalesce_appends(AppendCoalescing::off());
    let store = Arc::new(PgEventStore::new(&config));
    let stream = StreamId::new("hot-1");
    let mut writers = Vec::new();
    for w in 0..32 {
        let store = Arc::clone(&store);
        let stream = stream.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..50 {
                store
                    .append(&stream, ExpectedVersion::Any, &[event(&format!("{w}-{i}"))])
                    .await
                    .expect("an Any append never fails");
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let (rows, consumed): (i64, i64) = sqlx::query_as(&q(
        &config,
        "SELECT (SELECT count(*) FROM {schema}.events),
                (SELECT last_value FROM {schema}.events_seq_seq)",
    ))
    .fetch_one(config.pool())
    .await
    .unwrap();
    println!("hot Any stream: {rows} rows, {consumed} identity values consumed");
    assert_eq!(rows, 1600);
    assert_eq!(
        consumed, rows,
        "no failed insert consumed an identity value"
    );
    let versions: Vec<u64> = store
        .read_stream(&stream, 1)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, (1..=1600).collect::<Vec<_>>());
    assert_eq!(store.stream_version(&stream).await.unwrap(), 1600);
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
#[serde(rename_all = "camelCase")]
struct Deposited {
    amount_cents: i64,
    note: String,
}

/// With `PayloadFormat::Json` a JSON codec's payloads are jsonb: SQL reads
/// their fields and indexes them, the store reads them back as the same
/// value; a payload that is not JSON stays bytes.
#[tokio::test]
async fn json_payloads_are_queryable_jsonb() {
    let config = common::fresh_config().await.payloads(PayloadFormat::Json);
    let store = PgEventStore::new(&config);
    let stream = StreamId::for_entity("wallet", "alice");
    let deposit = Deposited {
        amount_cents: 250,
        note: "caf\u{e9} \"x\"".to_owned(),
    };
    let json = Json.encode(&deposit, "deposit").unwrap();
    let raw = vec![0, 159, 146, 150, 255];
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            &[
                NewEvent::new("wallet.deposited", 1, json),
                NewEvent::new("wallet.raw", 1, raw.clone()),
            ],
        )
        .await
        .unwrap();
    let amounts: Vec<Option<String>> = sqlx::query_scalar(&q(
        &config,
        "SELECT payload->>'amountCents' FROM {schema}.events ORDER BY version",
    ))
    .fetch_all(config.pool())
    .await
    .unwrap();
    assert_eq!(amounts, vec![Some("250".to_owned()), None]);
    // The expression index of the crate docs.
    sqlx::query(&q(
        &config,
        "CREATE INDEX events_amount_idx ON {schema}.events (((payload->>'amountCents')::bigint))
         WHERE event_type = 'wallet.deposited'",
    ))
    .execute(config.pool())
    .await
    .unwrap();
    let read = store.read_stream(&stream, 1).await.unwrap();
    let back: Deposited = Json.decode(&read[0].payload, "deposit").unwrap();
    assert_eq!(back, deposit);
    assert_eq!(read[1].payload, raw, "a binary payload keeps its bytes");

    // The default keeps every payload's bytes.
    let binary = PgEventStore::new(&common::fresh_config().await);
    let json = br#"{"b":1,"a":[1,2]}"#.to_vec();
    binary
        .append(
            &stream,
            ExpectedVersion::NoStream,
            &[NewEvent::new("t", 1, json.clone())],
        )
        .await
        .unwrap();
    assert_eq!(
        binary.read_stream(&stream, 1).await.unwrap()[0].payload,
        json
    );
}

/// A category read is served by `events_category_idx`.
#[tokio::test]
async fn category_reads_use_the_category_index() {
    let config = common::fresh_config().await;
    let store = PgEventStore::new(&config);
    for i in 0..40 {
        let batch: Vec<_> = (0..25).map(|j| event(&format!("{i}-{j}"))).collect();
        store
            .append(
                &StreamId::for_entity(&format!("kind{}", i % 20), &i.to_string()),
                ExpectedVersion::Any,
                &batch,
            )
            .await
            .unwrap();
    }
    sqlx::query(&q(&config, "ANALYZE {schema}.events"))
        .execute(config.pool())
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(&q(
        &config,
        "EXPLAIN SELECT * FROM {schema}.events e
         WHERE split_part(e.stream_id, '-', 1) = 'kind3'
           AND (split_part(e.stream_id, '-', 1), e.epoch, e.tx_id, e.seq) > ('kind3', 0, '0'::xid8, 0)
         ORDER BY split_part(e.stream_id, '-', 1), e.epoch, e.tx_id, e.seq LIMIT 100",
    ))
    .fetch_all(config.pool())
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("events_category_idx"), "{plan}");
    let page = store
        .read_category("kind3", LogPosition::START, 100)
        .await
        .unwrap();
    assert_eq!(page.len(), 50);
}

/// Today's schema (migrations 0001–0005), written as the previous release
/// wrote it, migrates in place: the new release reads every event with its
/// bytes and position, and appends after the old head.
#[tokio::test]
async fn todays_schema_migrates_in_place_with_its_data() {
    let schema = common::schema_name();
    let pool = common::pool(&schema, 4).await;
    let mut conn = PgConnection::connect_with(&common::connect_options(&schema))
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA \"{schema}\"; SET search_path TO \"{schema}\""
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let old = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations"
    )))
    .await
    .unwrap();
    let mut old = old;
    old.migrations = old
        .migrations
        .iter()
        .filter(|m| m.version <= 5)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    old.run_direct(&mut conn).await.unwrap();
    // The previous release's append statement, as it was.
    for (stream, n) in [("wallet-a", 3), ("wallet-b", 2)] {
        for v in 1..=n {
            sqlx::query(
                "WITH head AS (SELECT coalesce(max(version), 0) AS version FROM events WHERE stream_id = $1)
                 INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload, occurred_at)
                 SELECT $1, head.version + 1, gen_random_uuid(), 'old', 1, $2, now() FROM head",
            )
            .bind(stream)
            .bind(format!("old-{stream}-{v}").into_bytes())
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
    conn.close().await.unwrap();

    let config = PgStoreConfig::new(pool).schema(&schema).unwrap();
    config
        .migrate()
        .await
        .expect("today's schema migrates in place");
    let store = PgEventStore::new(&config);
    let a = StreamId::new("wallet-a");
    let read = store.read_stream(&a, 1).await.unwrap();
    let payloads: Vec<Vec<u8>> = read.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(
        payloads,
        (1..=3)
            .map(|v| format!("old-wallet-a-{v}").into_bytes())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        store.stream_version(&a).await.unwrap(),
        3,
        "the head was backfilled"
    );
    let out = store
        .append(&a, ExpectedVersion::Exact(3), &[event("new")])
        .await
        .unwrap();
    assert_eq!(out.version, 4);
    let err = store
        .append(
            &StreamId::new("wallet-b"),
            ExpectedVersion::Exact(1),
            &[event("stale")],
        )
        .await
        .expect_err("the backfilled head checks versions");
    assert!(
        matches!(err, StoreError::Conflict { actual: 2, .. }),
        "{err:?}"
    );
    let mut log = Vec::new();
    let mut after = LogPosition::START;
    loop {
        let page = store.read_all(after, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        log.extend(page);
    }
    assert_eq!(log.len(), 6);
    assert_eq!(
        log.last().unwrap().version,
        4,
        "the new event sorts after the old ones"
    );
}

/// A newer release applied an expand migration this binary does not know:
/// this binary still starts and works beside the newer one's writes. Once a
/// contract migration raises the compatibility version, it refuses to
/// start, naming both levels.
#[tokio::test]
async fn an_older_binary_runs_against_a_newer_compatible_schema() {
    let config = common::fresh_config().await;
    // The newer release: its migration 0099 adds a nullable column and
    // leaves the compatibility version.
    sqlx::raw_sql(&q(
        &config,
        "ALTER TABLE {schema}.events ADD COLUMN tenant text;
         INSERT INTO {schema}._sqlx_migrations
             (version, description, success, checksum, execution_time)
         VALUES (99, 'tenants', true, '\\x00', 1);",
    ))
    .execute(config.pool())
    .await
    .unwrap();
    config.migrate().await.expect("the older binary starts");
    let store = PgEventStore::new(&config);
    let old = StreamId::new("rolling-1");
    let newer = tokio::spawn({
        let pool = config.pool().clone();
        let sql = q(
            &config,
            "UPDATE {schema}.events SET tenant = 'acme' WHERE stream_id = 'rolling-1'",
        );
        async move {
            for _ in 0..20 {
                sqlx::query(&sql).execute(&pool).await.unwrap();
            }
        }
    });
    for i in 0..20 {
        store
            .append(&old, ExpectedVersion::Exact(i), &[event("old")])
            .await
            .unwrap();
    }
    newer.await.unwrap();
    assert_eq!(store.read_stream(&old, 1).await.unwrap().len(), 20);

    sqlx::query(&q(
        &config,
        "UPDATE {schema}.schema_compat SET oldest_compatible = 99",
    ))
    .execute(config.pool())
    .await
    .unwrap();
    let err = config.migrate().await.expect_err("an incompatible schema");
    assert!(
        matches!(
            err,
            PgSetupError::IncompatibleSchema {
                oldest_compatible: 99,
                this_release: _,
                ..
            }
        ),
        "{err}"
    );
}

/// Rows restored from a busier cluster, with transaction ids ahead of the
/// server's: the store refuses to start; after a new log epoch, new events
/// sort after the restored ones and a reader past them skips nothing.
#[tokio::test]
async fn a_log_restored_ahead_of_the_server_is_refused_until_a_new_epoch() {
    let config = common::fresh_config().await;
    let store = PgEventStore::new(&config);
    store
        .append(
            &StreamId::new("restored-1"),
            ExpectedVersion::NoStream,
            &[event("before")],
        )
        .await
        .unwrap();
    sqlx::raw_sql(&q(
        &config,
        "INSERT INTO {schema}.events (stream_id, version, event_id, event_type, schema_version,
             payload_bytes, occurred_at, tx_id)
         VALUES ('restored-1', 2, gen_random_uuid(), 't', 1, '\\x00', now(),
                 (pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000)::text::xid8);
         UPDATE {schema}.streams SET version = 2 WHERE stream_id = 'restored-1';",
    ))
    .execute(config.pool())
    .await
    .unwrap();
    let err = config
        .migrate()
        .await
        .expect_err("a log ahead of the server");
    assert!(matches!(err, PgSetupError::LogAhead { .. }), "{err}");
    println!("{err}");
    let all = store.read_all(LogPosition::START, 10).await.unwrap();
    let checkpoint = all.last().unwrap().position;

    assert_eq!(
        config
            .begin_log_epoch("restored from the busy cluster")
            .await
            .unwrap(),
        1
    );
    config.migrate().await.expect("starts in the new epoch");
    let out = store
        .append(
            &StreamId::new("restored-1"),
            ExpectedVersion::Exact(2),
            &[event("after")],
        )
        .await
        .unwrap();
    assert_eq!(out.positions[0].epoch, 1);
    assert!(out.positions[0] > checkpoint);
    // The restored row (held back while its id was ahead) and the new event,
    // in that order: nothing skipped.
    let next = store.read_all(checkpoint, 10).await.unwrap();
    let versions: Vec<(u32, u64)> = next.iter().map(|e| (e.position.epoch, e.version)).collect();
    assert_eq!(versions, vec![(0, 2), (1, 3)]);
}

/// An epoch opened while the pool's connections hold the append prepared
/// (planned generically after a few runs) reaches their very next append:
/// the epoch is the column's default, and moving it re-plans them.
#[tokio::test]
async fn appends_prepared_before_a_new_epoch_write_the_new_epoch() {
    let config = common::fresh_config().await;
    let store = PgEventStore::new(&config);
    let stream = StreamId::new("epoch-1");
    for version in 0..20 {
        let out = store
            .append(&stream, ExpectedVersion::Exact(version), &[event("old")])
            .await
            .unwrap_or_else(|e| panic!("append at {version}: {e}"));
        assert_eq!(out.positions[0].epoch, 0);
    }
    assert_eq!(config.begin_log_epoch("a test").await.unwrap(), 1);
    for version in 20..40 {
        let out = store
            .append(&stream, ExpectedVersion::Exact(version), &[event("new")])
            .await
            .unwrap();
        assert_eq!(out.positions[0].epoch, 1, "the append at {version}");
    }
    // An append that names no epoch, as an older release's would not
    // either: the default is the newest epoch.
    let epoch: i32 = sqlx::query_scalar(&q(
        &config,
        "INSERT INTO {schema}.events (stream_id, version, event_id, event_type, schema_version,
             payload_bytes, occurred_at)
         VALUES ('epoch-2', 1, gen_random_uuid(), 't', 1, '\\x00', now()) RETURNING epoch",
    ))
    .fetch_one(config.pool())
    .await
    .unwrap();
    assert_eq!(epoch, 1);
}

/// A transaction holding the horizon back is named with its pid and age,
/// and the events behind it are counted.
#[tokio::test]
async fn a_held_back_horizon_names_its_blocker() {
    let config = common::fresh_config().await;
    let store = PgEventStore::new(&config);
    let mut idle = PgConnection::connect_with(&common::connect_options("idle"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut idle).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut idle)
        .await
        .unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut idle)
        .await
        .unwrap();
    store
        .append(
            &StreamId::new("lag-1"),
            ExpectedVersion::NoStream,
            &[event("held")],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lag = store.catch_up_lag().await.unwrap();
    assert!(lag.held_back >= 1, "{lag:?}");
    let blocker = lag.blocker.expect("a blocker");
    // Another test's transaction may be older still; ours is at most as old.
    if blocker.pid == Some(pid) {
        assert_eq!(blocker.state, "idle in transaction");
        assert!(blocker.age >= Duration::from_millis(50));
    }
    sqlx::query("ROLLBACK").execute(&mut idle).await.unwrap();
}

fn options(config: &PgStoreConfig, settings: &[(&str, &str)]) -> PgConnectOptions {
    common::connect_options(config.schema_name().as_str()).options(settings.iter().copied())
}

/// Statement and lock timeouts are `Timeout`, a read-only server is
/// `Unavailable`, and nothing of either was written.
#[tokio::test]
async fn timeouts_and_read_only_servers_have_their_errors() {
    let config = common::fresh_config().await;
    let stream = StreamId::new("locked-1");
    let store = PgEventStore::new(&config);
    store
        .append(&stream, ExpectedVersion::NoStream, &[event("a")])
        .await
        .unwrap();
    let mut holder = PgConnection::connect_with(&common::connect_options("holder"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(&q(
        &config,
        "SELECT FROM {schema}.streams WHERE stream_id = 'locked-1' FOR UPDATE",
    ))
    .execute(&mut holder)
    .await
    .unwrap();
    for setting in ["lock_timeout", "statement_timeout"] {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options(&config, &[(setting, "100ms")]))
            .await
            .unwrap();
        let timed = PgEventStore::new(
            &PgStoreConfig::new(pool)
                .schema(config.schema_name().as_str())
                .unwrap(),
        );
        let err = timed
            .append(&stream, ExpectedVersion::Any, &[event("b")])
            .await
            .expect_err("the head is locked");
        assert!(
            matches!(err, StoreError::Timeout { .. }),
            "{setting}: {err:?}"
        );
        assert!(err.is_retryable());
    }
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options(&config, &[("default_transaction_read_only", "on")]))
        .await
        .unwrap();
    let read_only = PgEventStore::new(
        &PgStoreConfig::new(pool)
            .schema(config.schema_name().as_str())
            .unwrap(),
    );
    let err = read_only
        .append(&stream, ExpectedVersion::Any, &[event("c")])
        .await
        .expect_err("a read-only server");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert_eq!(
        store.stream_version(&stream).await.unwrap(),
        1,
        "nothing was written"
    );

    // Cannot connect at all: unavailable.
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy_with(options(&config, &[]).port(1));
    let gone = PgEventStore::new(
        &PgStoreConfig::new(pool)
            .schema(config.schema_name().as_str())
            .unwrap(),
    );
    let err = gone
        .append(&stream, ExpectedVersion::Any, &[event("d")])
        .await
        .expect_err("no server");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
}

/// Under `serializable`, racing appends lose with serialization failures:
/// each is a conflict or a success, never a backend error, and the stream
/// stays gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serialization_failures_are_races() {
    let config = common::fresh_config().await;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options(
            &config,
            &[("default_transaction_isolation", "serializable")],
        ))
        .await
        .unwrap();
    let store = Arc::new(PgEventStore::new(
        &PgStoreConfig::new(pool)
            .schema(config.schema_name().as_str())
            .unwrap(),
    ));
    let stream = StreamId::new("serial-1");
    let mut tasks = Vec::new();
    for w in 0..16 {
        let store = Arc::clone(&store);
        let stream = stream.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = 0;
            for i in 0..25 {
                let seen = store.stream_version(&stream).await.unwrap();
                let expected = if i % 2 == 0 {
                    ExpectedVersion::Any
                } else {
                    ExpectedVersion::Exact(seen)
                };
                match store
                    .append(&stream, expected, &[event(&format!("{w}-{i}"))])
                    .await
                {
                    Ok(_) => wins += 1,
                    Err(StoreError::Conflict { .. }) => {}
                    Err(other) => panic!("a race is a conflict, got {other:?}"),
                }
            }
            wins
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += task.await.unwrap();
    }
    assert_eq!(store.stream_version(&stream).await.unwrap(), wins);
}
