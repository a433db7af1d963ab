//! The read side end to end, on a real Postgres and a real Redis, one schema
//! (and so one Redis key prefix) per test:
//! - after a concurrent hammer of the wallet app, `/admin/balances` equals
//!   every owner's balance, and `?after=` never returns a ranking that misses
//!   the caller's acknowledged write;
//! - ledger reads through two processes never go back in time, and still
//!   answer with Redis unreachable (one process points at a dead port, the
//!   other's Redis connection is cut mid-run);
//! - a projection process killed with kill -9 mid-batch and restarted yields
//!   a read model equal to a fold of the whole log, exactly once;
//! - a prepared transaction holds the horizon: the projection reports lag
//!   naming its gid, never skips, and catches up after COMMIT PREPARED.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_core::codec::EventCodec;
use nexus_core::projection::{LogProbe as _, PositionToken};
use nexus_core::{EventMetadata, EventStore, ExpectedVersion, LogPosition, StreamId};
use nexus_examples::domain::wallet::WalletEvent;
use nexus_examples::domain::wallet_format;
use nexus_examples::wallet_app::{Config, serve};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use nexus_tests::wallet_process::WalletApp;
use nexus_tests::{Outage, ThrowawayPostgres};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn fresh_schema(what: &str) -> String {
    format!("read_{what}_{}", uuid::Uuid::new_v4().simple())
}

async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await
        .expect("drop schema");
}

fn auth(owner: &str) -> String {
    format!("Bearer {owner}-token")
}

/// An in-process wallet app on the shared Postgres.
async fn start_server(schema: &str, admin_token: Option<&str>) -> (String, Running) {
    start_server_at(&database_url(), schema, admin_token, 2_000).await
}

async fn balances(
    client: &Client,
    base: &str,
    after: Option<&str>,
    token: &str,
) -> (StatusCode, Value) {
    let mut request = client
        .get(format!("{base}/admin/balances"))
        .header("authorization", format!("Bearer {token}"));
    if let Some(after) = after {
        request = request.query(&[("after", after)]);
    }
    let response = request.send().await.expect("balances");
    let status = response.status();
    let retry = response.headers().get("retry-after").is_some();
    let body: Value = response.json().await.expect("json");
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(retry, "a 503 carries Retry-After");
    }
    (status, body)
}

fn ranked(body: &Value) -> BTreeMap<String, i64> {
    body.as_array()
        .expect("a ranking")
        .iter()
        .map(|line| {
            (
                line["owner"].as_str().unwrap().to_owned(),
                line["balanceCents"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_needs_the_token_and_an_oversized_body_is_413() {
    let schema = fresh_schema("admin");
    let token = "admin-secret";
    let (base, server) = start_server(&schema, Some(token)).await;
    let client = Client::new();
    let open = client
        .get(format!("{base}/admin/balances"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::UNAUTHORIZED);
    let wrong = client
        .get(format!("{base}/admin/wallets"))
        .header("authorization", "Bearer nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = balances(&client, &base, None, token).await;
    assert_eq!(status, StatusCode::OK);
    let huge = client
        .post(format!("{base}/wallet/deposit"))
        .header("authorization", auth("big"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"amountCents\": 1, \"pad\": \"{}\"}}",
            "x".repeat(200_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bad = client
        .get(format!("{base}/admin/balances?after=zz"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
    drop_schema(&database_url(), &schema).await;
}

/// Without `--admin-token` the app says at start-up, in its log, that the
/// admin endpoints are open to anyone; with one it does not (and they are
/// closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_admin_endpoints_are_warned_about_at_start_up() {
    let program = env!("CARGO_BIN_EXE_wallet_app");
    let url = database_url();
    let warning = "the admin endpoints (/admin/*) are open to anyone";
    let schema = fresh_schema("warn_open");
    let open = WalletApp::spawn(program, &url, &schema, &[]).await;
    let log = open.log_tail();
    let line = log
        .lines()
        .find(|line| line.contains(warning))
        .unwrap_or_else(|| panic!("no warning in the start-up log:\n{log}"));
    assert!(line.contains("WARN"), "{line}");
    let admin = Client::new()
        .get(format!("{}/admin/wallets", open.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    drop(open);

    let closed = WalletApp::spawn(
        program,
        &url,
        &schema,
        &["--admin-token".to_owned(), "s3cret".to_owned()],
    )
    .await;
    let log = closed.log_tail();
    assert!(!log.contains(warning), "{log}");
    let admin = Client::new()
        .get(format!("{}/admin/wallets", closed.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::UNAUTHORIZED);
    drop(closed);
    drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn balances_after_a_hammer_equal_every_owner_and_after_reads_your_write() {
    let schema = fresh_schema("hammer");
    let token = "admin-secret";
    let (base, server) = start_server(&schema, Some(token)).await;
    let client = Client::new();

    // 12 owners, each written by one client in sequence, all concurrently:
    // after every acknowledged write, `?after=` its position must rank the
    // owner at exactly the acknowledged balance (nobody else writes it).
    let mut tasks = Vec::new();
    for o in 0..12 {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(hammer_owner(client, base, o)));
    }
    let mut finals = BTreeMap::new();
    for task in tasks {
        let (owner, expected) = task.await.unwrap();
        finals.insert(owner, expected);
    }

    // A retried idempotent write answers its original position again.
    let first: Value = client
        .post(format!("{base}/wallet/deposit"))
        .header("authorization", auth("owner0"))
        .header("idempotency-key", "again")
        .json(&json!({"amountCents": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: Value = client
        .post(format!("{base}/wallet/deposit"))
        .header("authorization", auth("owner0"))
        .header("idempotency-key", "again")
        .json(&json!({"amountCents": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["position"], again["position"]);
    finals.insert("owner0".to_owned(), first["balanceCents"].as_i64().unwrap());
    let last = first["position"].as_str().unwrap().to_owned();

    // The projection equals every owner's balance as the entity tells it.
    let (status, ranking) = balances(&client, &base, Some(&last), token).await;
    assert_eq!(status, StatusCode::OK);
    let mut told = BTreeMap::new();
    for owner in finals.keys() {
        let body: Value = client
            .get(format!("{base}/wallet/balance"))
            .header("authorization", auth(owner))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        told.insert(owner.clone(), body["balanceCents"].as_i64().unwrap());
    }
    assert_eq!(told, finals);
    assert_eq!(ranked(&ranking), finals);
    let order: Vec<i64> = ranking
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["balanceCents"].as_i64().unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] >= w[1]),
        "highest first: {order:?}"
    );

    // A position the log has not reached: bounded wait, then 503.
    let ahead = PositionToken::encode(LogPosition::in_epoch(0, u64::MAX / 2, 1));
    let started = Instant::now();
    let (status, _) = balances(&client, &base, Some(&ahead), token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5));

    server.stop().await;
    drop_schema(&database_url(), &schema).await;
}

/// One owner written by one client in sequence: after every acknowledged
/// write, `?after=` its position must rank the owner at exactly the
/// acknowledged balance (nobody else writes it). Returns the last one.
async fn hammer_owner(client: Client, base: String, o: i64) -> (String, i64) {
    let owner = format!("owner{o}");
    let mut expected = 0_i64;
    for i in 0..25 {
        let withdraw = i % 4 == 3;
        let amount = 10 + (i * 7 + o) % 50;
        let path = if withdraw { "withdraw" } else { "deposit" };
        let mut request = client
            .post(format!("{base}/wallet/{path}"))
            .header("authorization", auth(&owner))
            .json(&json!({"amountCents": amount}));
        if i % 5 == 0 {
            request = request.header("idempotency-key", format!("k{i}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if status == StatusCode::CONFLICT {
            continue; // insufficient funds: nothing written
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        expected = body["balanceCents"].as_i64().unwrap();
        let position = body["position"]
            .as_str()
            .expect("a write carries its position");
        PositionToken::decode(position).expect("an opaque position token");
        let (status, ranking) = balances(&client, &base, Some(position), "admin-secret").await;
        assert_eq!(status, StatusCode::OK, "{ranking}");
        assert_eq!(
            ranked(&ranking).get(&owner),
            Some(&expected),
            "?after= missed the acknowledged write of {owner}: {ranking}"
        );
    }
    (owner, expected)
}

async fn ledger_read(client: &Client, base: &str, owner: &str) -> Option<(u64, String)> {
    let response = client
        .get(format!("{base}/wallet/ledger"))
        .header("authorization", auth(owner))
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let from = response
        .headers()
        .get("x-read-from")?
        .to_str()
        .ok()?
        .to_owned();
    let body: Value = response.json().await.ok()?;
    Some((body["version"].as_u64()?, from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledger_reads_through_two_processes_never_go_back_and_survive_redis_down() {
    let url = database_url();
    let schema = fresh_schema("ledger");
    let program = env!("CARGO_BIN_EXE_wallet_app");
    let redis = redis_url();
    let target = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = Outage::forward_to(&target).await.expect("a redis proxy");
    let through = format!("redis://{}", proxy.addr());
    // `a` reaches Redis through a proxy the test cuts; `b` never reaches it.
    let a = WalletApp::spawn(program, &url, &schema, &["--redis-url".to_owned(), through]).await;
    let b = WalletApp::spawn(
        program,
        &url,
        &schema,
        &["--redis-url".to_owned(), "redis://127.0.0.1:1".to_owned()],
    )
    .await;
    let client = Client::new();
    let owner = "carol";
    let mut seen = 0_u64; // the newest version any read or write has shown
    let mut from_cache = 0;
    for i in 0..40_u64 {
        if i == 15 {
            proxy.cut();
        }
        if i == 30 {
            proxy.restore().await.unwrap();
        }
        let writer = if i % 2 == 0 { &a } else { &b };
        let mut acknowledged = None;
        for _ in 0..20 {
            let response = client
                .post(format!("{}/wallet/ledger/record", writer.base()))
                .header("authorization", auth(owner))
                .json(&json!({"kind": "deposit", "amountCents": 5, "description": format!("#{i}")}))
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::OK {
                let body: Value = response.json().await.unwrap();
                acknowledged = body["version"].as_u64();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let version = acknowledged.expect("the write was acknowledged");
        assert!(version > seen, "a write's version {version} after {seen}");
        seen = version;
        for reader in [&a, &b, &a] {
            let (read, from) = ledger_read(&client, reader.base(), owner)
                .await
                .unwrap_or_else(|| panic!("a ledger read answers:\n{}", reader.log_tail()));
            assert!(
                read >= seen,
                "read version {read} ({from}) went back behind {seen}"
            );
            seen = read;
            if from == "cache" {
                from_cache += 1;
            }
            if reader.base() == b.base() {
                assert_eq!(from, "store", "b never reaches Redis");
            }
        }
    }
    assert!(from_cache > 0, "a's reads were served from the cache");
    drop((a, b));
    drop_schema(&url, &schema).await;
}

/// Appends `events` wallet events over `owners` in batches of up to 5.
async fn seed(store: &dyn EventStore, owners: u64, events: u64) -> LogPosition {
    let codec = wallet_format::codec();
    let mut last = LogPosition::START;
    let mut balances = vec![0_i64; usize::try_from(owners).unwrap()];
    let mut n = 0;
    while n < events {
        let o = usize::try_from(n % owners).unwrap();
        let batch: Vec<_> = (0..5.min(events - n))
            .map(|k| {
                let amount = i64::try_from(1 + (n + k) % 13).unwrap();
                let event = if balances[o] >= amount && (n + k) % 3 == 0 {
                    balances[o] -= amount;
                    WalletEvent::Withdrawn { amount }
                } else {
                    balances[o] += amount;
                    WalletEvent::Deposited { amount }
                };
                codec.encode(&event, EventMetadata::new()).unwrap()
            })
            .collect();
        n += batch.len() as u64;
        let out = store
            .append(
                &StreamId::for_entity("wallet", &format!("w{o}")),
                ExpectedVersion::Any,
                &batch,
            )
            .await
            .unwrap();
        last = *out.positions.last().unwrap();
    }
    last
}

/// The fold of the whole log: owner → (balance, events).
async fn fold(store: &dyn EventStore) -> BTreeMap<String, (i64, i64)> {
    let codec = wallet_format::codec();
    let mut folded = BTreeMap::<String, (i64, i64)>::new();
    let mut after = LogPosition::START;
    loop {
        let page = store.read_all(after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        for recorded in &page {
            let owner = recorded
                .stream_id
                .as_str()
                .trim_start_matches("wallet-")
                .to_owned();
            let entry = folded.entry(owner).or_default();
            entry.0 += match codec.decode(recorded).unwrap() {
                WalletEvent::Deposited { amount } => amount,
                WalletEvent::Withdrawn { amount } => -amount,
            };
            entry.1 += 1;
        }
    }
    folded
}

async fn worker_model(config: &PgStoreConfig) -> BTreeMap<String, (i64, i64)> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
        "SELECT owner, balance, events FROM \"{}\".worker_totals",
        config.schema_name().as_str()
    ))
    .fetch_all(config.pool())
    .await
    .unwrap_or_default();
    rows.into_iter().map(|(o, b, e)| (o, (b, e))).collect()
}

async fn checkpoint(config: &PgStoreConfig) -> Option<String> {
    sqlx::query_scalar(&format!(
        "SELECT position FROM \"{}\".projections WHERE name = 'worker_totals'",
        config.schema_name().as_str()
    ))
    .fetch_optional(config.pool())
    .await
    .unwrap()
}

fn worker(url: &str, schema: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_projection_worker"))
        .args([url, schema])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start projection_worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projection_killed_mid_batch_restarts_into_an_exact_fold_of_the_log() {
    let url = database_url();
    let schema = fresh_schema("kill");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let config = PgStoreConfig::new(pool).schema(&schema).unwrap();
    config.migrate().await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    seed(&*store, 20, 3000).await;

    // Kill it three times while it works through the log (and while more
    // events arrive), each time after the checkpoint has moved.
    let mut kills = 0;
    let mut seeded = 3000;
    while kills < 3 {
        let mut child = worker(&url, &schema);
        let before = checkpoint(&config).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while checkpoint(&config).await == before {
            assert!(
                Instant::now() < deadline,
                "the worker never moved its checkpoint"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Mid-batch: each batch holds its transaction open for a while.
        tokio::time::sleep(Duration::from_millis(37)).await;
        child.start_kill().unwrap(); // SIGKILL
        nexus_tests::wallet_process::wait_killed(&mut child).await;
        kills += 1;
        seed(&*store, 20, 200).await;
        seeded += 200;
        let model = worker_model(&config).await;
        let applied: i64 = model.values().map(|(_, e)| e).sum();
        assert!(
            applied < seeded,
            "killed before the end ({applied} of {seeded})"
        );
    }

    // Restarted, it catches up to a read model equal to the fold of the log:
    // every event applied exactly once (the per-owner counts say so).
    let mut child = worker(&url, &schema);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let expected = fold(&*store).await;
    let total: i64 = expected.values().map(|(_, e)| e).sum();
    assert_eq!(total, seeded);
    let caught_up = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("caught-up") && worker_model(&config).await == expected {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        caught_up,
        Ok(true),
        "the restarted projection never matched the fold"
    );
    assert_eq!(worker_model(&config).await, expected);
    child.start_kill().unwrap();
    nexus_tests::wallet_process::wait_killed(&mut child).await;
    drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prepared_transaction_holds_the_horizon_as_named_lag_never_a_skip() {
    // PREPARE TRANSACTION needs max_prepared_transactions > 0: a private
    // cluster with the setting, never the shared server.
    let mut cluster = ThrowawayPostgres::start_new();
    {
        let pool = sqlx::PgPool::connect(&cluster.url()).await.unwrap();
        sqlx::query("ALTER SYSTEM SET max_prepared_transactions = 10")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    cluster.restart();
    let url = cluster.url();
    let schema = fresh_schema("prepared");
    let (base, server) = start_server_at(&url, &schema, None, 1_000).await;
    let client = Client::new();
    let deposit = |owner: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let body: Value = client
                .post(format!("{base}/wallet/deposit"))
                .header("authorization", auth(owner))
                .json(&json!({"amountCents": 100}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["position"].as_str().unwrap().to_owned()
        }
    };
    deposit("early").await;

    // A wallet event written in a transaction that is then prepared: it
    // holds the horizon until COMMIT PREPARED.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let config = PgStoreConfig::new(pool.clone()).schema(&schema).unwrap();
    let codec = wallet_format::codec();
    prepare_a_deposit(&pool, &schema, &codec, "nexus_read_side_gid").await;

    // Commits after it wait behind it: ?after= times out (503), and the
    // projection's status names the prepared transaction's gid.
    let later = deposit("later").await;
    let (status, _) = balances(&client, &base, Some(&later), "unused").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // A projection of its own reports it as lag, the gid named.
    let read_side = nexus_store_pg::projection::PgReadSide::connect(&config)
        .await
        .unwrap();
    let watcher = read_side
        .at_least_once(
            "watcher",
            Arc::new(PgEventStore::new(&config)),
            codec.clone(),
            |_batch| async { Ok(()) },
        )
        .poll_every(Duration::from_millis(50))
        .horizon_warn_after(Duration::from_millis(100))
        .spawn();
    let status = held_status(&watcher).await;
    let held = status.horizon_held_by.clone().unwrap();
    assert!(held.contains("nexus_read_side_gid"), "{held}");
    assert!(status.lag_events.unwrap() >= 1, "{status:?}");
    let probe = nexus_store_pg::projection::PgLogProbe::new(&config);
    let (lag, _) = probe.lag(LogPosition::START).await.unwrap();
    assert!(lag >= 2, "lag {lag}");
    let (_, ranking) = balances(&client, &base, None, "unused").await;
    let now = ranked(&ranking);
    assert!(
        !now.contains_key("later"),
        "a commit after the horizon was not skipped over: {now:?}"
    );

    sqlx::query("COMMIT PREPARED 'nexus_read_side_gid'")
        .execute(&pool)
        .await
        .unwrap();
    let (status, ranking) = balances(&client, &base, Some(&later), "unused").await;
    assert_eq!(status, StatusCode::OK);
    let now = ranked(&ranking);
    assert_eq!(
        now.get("prepared"),
        Some(&7),
        "the prepared event was not skipped: {now:?}"
    );
    assert_eq!(now.get("later"), Some(&100));
    assert_eq!(now.get("early"), Some(&100));
    let later = PositionToken::decode(&later).unwrap();
    watcher
        .wait_for(later, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(watcher.status().await.horizon_held_by, None);
    watcher.stop().await;
    server.stop().await;
    pool.close().await;
    drop(cluster);
}

/// A running in-process wallet app.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Shuts the app down as SIGTERM would, its projection and actors with
    /// it, so that dropping its schema afterwards races none of its
    /// queries (a `DROP SCHEMA` beside a running projection can deadlock).
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the app stops within 15 s")
            .expect("the app's task");
    }
}

/// An in-process wallet app on `url`, `?after=` waiting up to `wait_ms`.
async fn start_server_at(
    url: &str,
    schema: &str,
    admin_token: Option<&str>,
    wait_ms: u64,
) -> (String, Running) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = Config {
        listen: listener.local_addr().unwrap(),
        database_url: Some(url.to_owned()),
        schema: schema.to_owned(),
        pool_size: 8,
        lease_shards: None,
        cluster: false,
        cluster_listen: None,
        lease_ttl_ms: 10_000,
        lease_database_url: None,
        max_active_entities: None,
        redis_url: None,
        admin_token: admin_token.map(str::to_owned),
        balances_wait_ms: wait_ms,
        log_format: nexus_examples::wallet_app::telemetry::LogFormat::Text,
    };
    let base = format!("http://{}", config.listen);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        serve(config, listener, shutdown).await.expect("serve");
    });
    let client = Client::new();
    for _ in 0..300 {
        if client.get(&base).send().await.is_ok() {
            return (base, Running { stop, task });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the wallet app did not start");
}

/// Inserts a wallet event for `prepared` (7 cents) in a transaction, then
/// `PREPARE TRANSACTION gid`: it holds the horizon until COMMIT PREPARED.
async fn prepare_a_deposit(
    pool: &sqlx::PgPool,
    schema: &str,
    codec: &EventCodec<WalletEvent>,
    gid: &str,
) {
    let event = codec
        .encode(&WalletEvent::Deposited { amount: 7 }, EventMetadata::new())
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".events (stream_id, version, event_id, event_type, schema_version, payload_bytes, occurred_at)
         VALUES ('wallet-prepared', 1, $1, $2, $4, $3, now())"
    ))
    .bind(event.metadata.event_id)
    .bind(&event.event_type)
    .bind(&event.payload)
    .bind(i64::from(event.schema_version))
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query(&format!("PREPARE TRANSACTION '{gid}'"))
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
}

/// The status of `watcher` once it reports a held horizon (within 10 s).
async fn held_status(
    watcher: &nexus_core::projection::ProjectionHandle,
) -> nexus_core::projection::ProjectionStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = watcher.status().await;
        if status.horizon_held_by.is_some() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the held horizon was never reported: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
