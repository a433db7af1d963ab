//! The wallet app driven as a user drives it: HTTP requests against a running
//! server on the in-memory stores and on Postgres, and the process itself
//! under SIGTERM and `kill -9`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nexus_examples::wallet_app::{Config, serve};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn fresh_schema() -> String {
    format!("wallet_test_{}", uuid::Uuid::new_v4().simple())
}

async fn drop_schema(schema: &str) {
    let pool = sqlx::PgPool::connect(&database_url())
        .await
        .expect("connect");
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await
        .expect("drop schema");
}

/// An in-process server on a free port.
struct Server {
    base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(database_url: Option<String>, schema: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let listen = listener.local_addr().unwrap();
        let config = Config {
            listen,
            database_url,
            schema: schema.to_owned(),
            pool_size: 8,
            lease_shards: None,
            cluster: false,
            cluster_listen: None,
            lease_ttl_ms: 10_000,
            lease_database_url: None,
            max_active_entities: None,
            log_format: nexus_examples::wallet_app::telemetry::LogFormat::Text,
            redis_url: None,
            admin_token: None,
            balances_wait_ms: 2_000,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("the server runs and stops cleanly");
        });
        Self {
            base: format!("http://{listen}"),
            stop,
            task,
        }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the server stops within 5 s")
            .unwrap();
    }
}

/// A user of the API: one owner's bearer token.
struct User<'a> {
    http: &'a Client,
    base: &'a str,
    token: String,
}

impl<'a> User<'a> {
    fn new(http: &'a Client, base: &'a str, owner: &str) -> Self {
        Self {
            http,
            base,
            token: format!("Bearer {owner}-token"),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.token)
            .json(body)
            .send()
            .await
            .expect("request");
        let (status, mut body) = answer(response).await;
        // A wallet write carries its log position, an opaque token; the
        // comparisons below leave it out.
        if status == StatusCode::OK && path.starts_with("/wallet/") && !path.contains("ledger") {
            let position = body
                .as_object_mut()
                .and_then(|o| o.remove("position"))
                .expect("a wallet write carries its position");
            assert!(position.is_string(), "{position}");
        }
        (status, body)
    }

    async fn post_raw(
        &self,
        path: &str,
        body: &'static str,
        content_type: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        answer(request.send().await.expect("request")).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", &self.token)
            .send()
            .await
            .expect("request");
        answer(response).await
    }
}

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.text().await.expect("body");
    assert!(
        content_type.starts_with("application/json"),
        "every answer is JSON; got {status} {content_type:?}: {body}"
    );
    (status, serde_json::from_str(&body).expect("JSON body"))
}

/// The whole API once, with every kind of bad input; used on both stores.
async fn exercise(base: &str) {
    wallet_flow(base).await;
    bad_input_writes_nothing(base).await;
    bad_tokens_are_401(base).await;
    ledger_and_admin(base).await;
}

async fn wallet_flow(base: &str) {
    let http = Client::new();
    let alice = User::new(&http, base, "alice");

    let (status, index) = alice.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(index["endpoints"].as_array().unwrap().len(), 8);

    assert_eq!(
        alice.get("/wallet/balance").await,
        (
            StatusCode::OK,
            json!({"owner": "alice", "balanceCents": 0, "version": 0})
        )
    );
    assert_eq!(
        alice
            .post("/wallet/deposit", &json!({"amountCents": 500}))
            .await,
        (
            StatusCode::OK,
            json!({"owner": "alice", "balanceCents": 500, "version": 1})
        )
    );
    assert_eq!(
        alice
            .post("/wallet/withdraw", &json!({"amountCents": 200}))
            .await,
        (
            StatusCode::OK,
            json!({"owner": "alice", "balanceCents": 300, "version": 2})
        )
    );
    let (status, short) = alice
        .post("/wallet/withdraw", &json!({"amountCents": 1000}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        short,
        json!({"error": "insufficient_funds", "balanceCents": 300, "requestedCents": 1000})
    );
}

async fn bad_input_writes_nothing(base: &str) {
    let http = Client::new();
    let alice = User::new(&http, base, "alice");
    let bad_bodies: [(&str, Value, StatusCode); 7] = [
        ("missing field", json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "zero",
            json!({"amountCents": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "negative",
            json!({"amountCents": -5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "fraction",
            json!({"amountCents": 1.5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "string",
            json!({"amountCents": "5"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "beyond i64",
            json!({"amountCents": 1e30}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "overflowing the balance",
            json!({"amountCents": i64::MAX}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, body, expected) in bad_bodies {
        for path in ["/wallet/deposit", "/wallet/withdraw"] {
            let (status, error) = alice.post(path, &body).await;
            if what == "overflowing the balance" && path == "/wallet/withdraw" {
                assert_eq!(status, StatusCode::CONFLICT, "{what} on {path}: {error}");
                continue;
            }
            assert_eq!(status, expected, "{what} on {path}: {error}");
            assert!(error["error"].is_string(), "{what}: {error}");
        }
    }
    let (status, error) = alice
        .post_raw(
            "/wallet/deposit",
            "{\"amountCents\": ",
            Some("application/json"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, error) = alice
        .post_raw("/wallet/deposit", "{\"amountCents\": 5}", None)
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error}");
    assert_eq!(
        alice.get("/wallet/balance").await,
        (
            StatusCode::OK,
            json!({"owner": "alice", "balanceCents": 300, "version": 2})
        ),
        "bad input wrote nothing"
    );
}

async fn bad_tokens_are_401(base: &str) {
    let http = Client::new();
    for token in [
        None,
        Some("Bearer Alice-token"),
        Some("Bearer alice"),
        Some("Basic YWxpY2U="),
    ]
    .into_iter()
    .chain([Some(
        format!("Bearer {}-token", "a".repeat(65)).leak() as &str
    )]) {
        let mut request = http.get(format!("{base}/wallet/balance"));
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let (status, error) = answer(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(error["error"], "unauthorized");
    }
}

async fn ledger_and_admin(base: &str) {
    let http = Client::new();
    let alice = User::new(&http, base, "alice");
    let bob = User::new(&http, base, "bob_2");
    let (status, ledger) = alice
        .post(
            "/wallet/ledger/record",
            &json!({"kind": "deposit", "amountCents": 1000, "description": "salary"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ledger}");
    assert_eq!(ledger["netCents"], 1000);
    let (status, ledger) = alice
        .post(
            "/wallet/ledger/record",
            &json!({"kind": "withdraw", "amountCents": 300, "description": "rent"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ledger}");
    assert_eq!(ledger["netCents"], 700);
    let (status, _) = alice
        .post(
            "/wallet/ledger/record",
            &json!({"kind": "withdraw", "amountCents": 5000, "description": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = alice
        .post(
            "/wallet/ledger/record",
            &json!({"kind": "refund", "amountCents": 5, "description": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = alice
        .post(
            "/wallet/ledger/record",
            &json!({"kind": "deposit", "amountCents": 0, "description": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        alice.get("/wallet/ledger").await,
        (
            StatusCode::OK,
            json!({"owner": "alice", "netCents": 700, "entries": [
                {"kind": "deposit", "amountCents": 1000, "description": "salary"},
                {"kind": "withdraw", "amountCents": 300, "description": "rent"},
            ], "version": 2})
        )
    );
    let (status, _) = bob
        .post(
            "/wallet/ledger/record",
            &json!({"kind": "deposit", "amountCents": 1500, "description": "gift"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        alice.get("/admin/wallets").await,
        (
            StatusCode::OK,
            json!([{"owner": "bob_2", "netCents": 1500}, {"owner": "alice", "netCents": 700}])
        )
    );
    let (status, _) = alice.get("/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Many concurrent deposits for one owner: every one is acknowledged with its
/// own version, and the balance is their sum.
async fn concurrent_deposits(base: &str) {
    let http = Client::new();
    let mut tasks = Vec::new();
    for amount in 1..=60_i64 {
        let http = http.clone();
        let base = base.to_owned();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_micros(fastrand::u64(0..2_000))).await;
            User::new(&http, &base, "carol")
                .post("/wallet/deposit", &json!({"amountCents": amount}))
                .await
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        versions.push(body["version"].as_u64().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=60).collect::<Vec<_>>(),
        "one version per deposit"
    );
    let (_, balance) = User::new(&http, base, "carol").get("/wallet/balance").await;
    assert_eq!(balance["balanceCents"], (1..=60).sum::<i64>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_on_the_in_memory_stores() {
    let server = Server::start(None, "unused").await;
    exercise(&server.base).await;
    concurrent_deposits(&server.base).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_on_postgres_survives_a_restart() {
    let schema = fresh_schema();
    let server = Server::start(Some(database_url()), &schema).await;
    exercise(&server.base).await;
    concurrent_deposits(&server.base).await;
    server.stop().await;
    amounts_read_in_sql(&schema).await;
    // What a release before the flat event format wrote: version 1.
    append_version_1(
        &schema,
        "dave",
        &[("wallet.deposited", 250), ("wallet.withdrawn", 50)],
    )
    .await;

    let again = Server::start(Some(database_url()), &schema).await;
    let http = Client::new();
    assert_eq!(
        User::new(&http, &again.base, "alice")
            .get("/wallet/balance")
            .await,
        (
            StatusCode::OK,
            json!({"owner": "alice", "balanceCents": 300, "version": 2})
        )
    );
    let (_, ledger) = User::new(&http, &again.base, "alice")
        .get("/wallet/ledger")
        .await;
    assert_eq!(ledger["netCents"], 700);
    // A history in both shapes replays to one balance and goes on.
    let dave = User::new(&http, &again.base, "dave");
    assert_eq!(
        dave.get("/wallet/balance").await,
        (
            StatusCode::OK,
            json!({"owner": "dave", "balanceCents": 200, "version": 2})
        )
    );
    assert_eq!(
        dave.post("/wallet/deposit", &json!({"amountCents": 25}))
            .await,
        (
            StatusCode::OK,
            json!({"owner": "dave", "balanceCents": 225, "version": 3})
        )
    );
    again.stop().await;
    let versions: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT schema_version FROM {schema}.events WHERE stream_id = 'wallet-dave' ORDER BY version"
    ))
    .fetch_all(&sqlx::PgPool::connect(&database_url()).await.unwrap())
    .await
    .unwrap();
    assert_eq!(versions, [1, 1, 2], "old rows stay as written");
    drop_schema(&schema).await;
}

/// Every wallet event the app wrote carries its amount as `amountCents`,
/// a positive integer plain SQL reads, and carol's add up to her balance.
async fn amounts_read_in_sql(schema: &str) {
    let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
    let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(&format!(
        "SELECT stream_id, event_type, schema_version, (payload->>'amountCents')::bigint
         FROM {schema}.events WHERE event_type LIKE 'wallet.%'"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(rows.len() >= 60, "{rows:?}");
    for (stream, event_type, version, amount) in &rows {
        assert_eq!(*version, 2, "{stream} {event_type}");
        assert!(
            amount.is_some_and(|a| a > 0),
            "{stream} {event_type}: {amount:?}"
        );
    }
    let carol: i64 = sqlx::query_scalar(&format!(
        "SELECT sum(CASE event_type WHEN 'wallet.deposited' THEN 1 ELSE -1 END
                   * (payload->>'amountCents')::bigint)::bigint
         FROM {schema}.events WHERE stream_id = 'wallet-carol'"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(carol, (1..=60).sum::<i64>());
}

/// Appends `events` (name, cents) to `owner`'s wallet in the version 1
/// shape, `{"Deposited": {"amount": N}}`, through the store's own API.
async fn append_version_1(schema: &str, owner: &str, events: &[(&str, i64)]) {
    use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
    use nexus_store_pg::{PayloadFormat, PgEventStore, PgStoreConfig};
    let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
    let config = PgStoreConfig::new(pool)
        .schema(schema)
        .unwrap()
        .payloads(PayloadFormat::Json);
    let batch: Vec<NewEvent> = events
        .iter()
        .map(|(name, cents)| {
            let variant = if *name == "wallet.deposited" {
                "Deposited"
            } else {
                "Withdrawn"
            };
            let payload = json!({ variant: { "amount": cents } });
            NewEvent::new(*name, 1, serde_json::to_vec(&payload).unwrap())
        })
        .collect();
    PgEventStore::new(&config)
        .append(
            &StreamId::for_entity("wallet", owner),
            ExpectedVersion::NoStream,
            &batch,
        )
        .await
        .unwrap();
}

/// The real program as a process, reporting the address it listens on.
struct Process {
    child: tokio::process::Child,
    base: String,
}

async fn spawn_app(database_url: Option<&str>, schema: &str) -> Process {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wallet_app"));
    command
        .args(["--listen", "127.0.0.1:0", "--schema", schema])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    let mut child = command.spawn().expect("start wallet_app");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut first = None;
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            first.get_or_insert_with(|| line.clone());
            if let Some(rest) = line.split("addr=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("wallet_app exited before listening");
    })
    .await
    .expect("wallet_app listens within 30 s");
    let first = first.unwrap();
    let expected = if database_url.is_some() {
        "PostgreSQL"
    } else {
        "in-memory"
    };
    assert!(
        first.contains(expected),
        "the first log line names the store: {first}"
    );
    // Keep draining the log so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Process {
        child,
        base: format!("http://{addr}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_zero_within_5_seconds() {
    let mut app = spawn_app(None, "unused").await;
    let http = Client::new();
    let mut in_flight = Vec::new();
    for amount in 1..=40_i64 {
        let (http, base) = (http.clone(), app.base.clone());
        in_flight.push(tokio::spawn(async move {
            http.post(format!("{base}/wallet/deposit"))
                .header("authorization", "Bearer dave-token")
                .json(&json!({"amountCents": amount}))
                .send()
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pid = app.child.id().unwrap().to_string();
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(5), app.child.wait())
        .await
        .expect("exits within 5 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
    assert!(signalled.elapsed() < Duration::from_secs(5));
    for request in in_flight {
        // A request either completed with an answer or was never accepted.
        if let Ok(response) = request.await.unwrap() {
            let status = response.status();
            assert!(
                status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
                "in-flight request answered {status}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_write() {
    let schema = fresh_schema();
    let url = database_url();
    let mut app = spawn_app(Some(&url), &schema).await;
    let http = Client::new();
    let mut sent = Vec::new();
    for amount in 1..=300_i64 {
        let (http, base) = (http.clone(), app.base.clone());
        sent.push((
            amount,
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..200_000))).await;
                let response = http
                    .post(format!("{base}/wallet/deposit"))
                    .header("authorization", "Bearer erin-token")
                    .json(&json!({"amountCents": amount}))
                    .send()
                    .await
                    .ok()?;
                (response.status() == StatusCode::OK).then_some(())
            }),
        ));
    }
    tokio::time::sleep(Duration::from_millis(60 + fastrand::u64(0..60))).await;
    app.child.start_kill().unwrap();
    nexus_tests::wallet_process::wait_killed(&mut app.child).await;
    let (mut acked, mut unacked) = (0_i64, 0_i64);
    for (amount, task) in sent {
        if task.await.unwrap().is_some() {
            acked += amount;
        } else {
            unacked += amount;
        }
    }
    assert!(acked > 0, "some deposits were acknowledged before the kill");

    let again = spawn_app(Some(&url), &schema).await;
    let (status, balance) = User::new(&http, &again.base, "erin")
        .get("/wallet/balance")
        .await;
    assert_eq!(status, StatusCode::OK);
    let balance = balance["balanceCents"].as_i64().unwrap();
    assert!(
        balance >= acked,
        "every acknowledged deposit survived: {balance} < {acked}"
    );
    assert!(
        balance <= acked + unacked,
        "nothing was invented: {balance} > {}",
        acked + unacked
    );
    drop(again);
    drop_schema(&schema).await;
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn host_port(url: &str) -> String {
    let after_scheme = url.split("://").nth(1).unwrap_or(url);
    let after_user = after_scheme.rsplit('@').next().unwrap_or(after_scheme);
    after_user.split('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_503_with_retry_after_and_service_resumes() {
    let schema = fresh_schema();
    let url = database_url();
    let outage = nexus_tests::Outage::forward_to(&host_port(&url))
        .await
        .unwrap();
    let server = Server::start(Some(outage.url_through(&url)), &schema).await;
    let http = Client::new();
    let frank = User::new(&http, &server.base, "frank");
    let (status, _) = frank
        .post("/wallet/deposit", &json!({"amountCents": 10}))
        .await;
    assert_eq!(status, StatusCode::OK);

    outage.cut();
    // An owner with a live entity (its append fails) and a new owner (its
    // recovery fails): both are told to come back, quickly, with no write.
    for owner in ["frank", "gina"] {
        let started = Instant::now();
        let response = http
            .post(format!("{}/wallet/deposit", server.base))
            .header("authorization", format!("Bearer {owner}-token"))
            .json(&json!({"amountCents": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{owner}"
        );
        assert_eq!(response.headers()["retry-after"], "1");
        let (_, body) = answer(response).await;
        assert_eq!(body["error"], "unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no hang: {:?}",
            started.elapsed()
        );
    }
    let (status, _) = frank.get("/admin/wallets").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    outage.restore().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let balance = loop {
        let (status, body) = frank.get("/wallet/balance").await;
        if status == StatusCode::OK {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "service did not resume: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        balance["balanceCents"], 10,
        "the refused deposit wrote nothing"
    );
    server.stop().await;
    drop_schema(&schema).await;
}
