//! `Idempotency-Key` on the wallet app: a retry with the same key writes
//! once and answers the same, concurrent duplicates write once, another
//! body under the key is a 422, and after a `kill -9` clients that retry
//! every unanswered request with its key end at exactly the sum of the
//! distinct requests.

use std::process::Stdio;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn fresh_schema() -> String {
    format!("nexus_test_{}", uuid::Uuid::new_v4().simple())
}

async fn drop_schema(schema: &str) {
    let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

struct App {
    child: tokio::process::Child,
    base: String,
}

async fn spawn_app(database_url: Option<&str>, schema: &str) -> App {
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
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("addr=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("wallet_app exited before listening");
    })
    .await
    .expect("wallet_app listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    App {
        child,
        base: format!("http://{addr}"),
    }
}

/// One deposit or withdrawal under a key; `None` when no answer came.
async fn write(
    http: &Client,
    base: &str,
    owner: &str,
    route: &str,
    key: &str,
    amount: i64,
) -> Option<(StatusCode, Value)> {
    let response = http
        .post(format!("{base}/wallet/{route}"))
        .header("authorization", format!("Bearer {owner}-token"))
        .header("idempotency-key", key)
        .json(&json!({"amountCents": amount}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = response.status();
    Some((status, response.json().await.ok()?))
}

async fn balance(http: &Client, base: &str, owner: &str) -> i64 {
    let body: Value = http
        .get(format!("{base}/wallet/balance"))
        .header("authorization", format!("Bearer {owner}-token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["balanceCents"].as_i64().unwrap()
}

/// The same key and body twice, 16 concurrent copies of another, a
/// rejected withdrawal retried, and another body under a used key.
async fn keys_write_once(base: &str) {
    let http = Client::new();
    let first = write(&http, base, "ivy", "deposit", "k-1", 500)
        .await
        .unwrap();
    assert_eq!(first.0, StatusCode::OK);
    let again = write(&http, base, "ivy", "deposit", "k-1", 500)
        .await
        .unwrap();
    assert_eq!(again, first, "same status and body");
    assert_eq!(balance(&http, base, "ivy").await, 500);

    let copies: Vec<_> = (0..16)
        .map(|_| {
            let (http, base) = (http.clone(), base.to_owned());
            tokio::spawn(async move { write(&http, &base, "ivy", "deposit", "k-2", 70).await })
        })
        .collect();
    let mut answers = Vec::new();
    for copy in copies {
        answers.push(copy.await.unwrap().unwrap());
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, StatusCode::OK);
    assert_eq!(
        balance(&http, base, "ivy").await,
        570,
        "16 copies wrote once"
    );

    let refused = write(&http, base, "ivy", "withdraw", "k-3", 10_000)
        .await
        .unwrap();
    assert_eq!(refused.0, StatusCode::CONFLICT);
    write(&http, base, "ivy", "deposit", "k-4", 20_000)
        .await
        .unwrap();
    let retried = write(&http, base, "ivy", "withdraw", "k-3", 10_000)
        .await
        .unwrap();
    assert_eq!(retried, refused, "a rejection is answered again as it was");

    let other = write(&http, base, "ivy", "deposit", "k-1", 501)
        .await
        .unwrap();
    assert_eq!(other.0, StatusCode::UNPROCESSABLE_ENTITY, "{other:?}");
    let other_route = write(&http, base, "ivy", "withdraw", "k-1", 500)
        .await
        .unwrap();
    assert_eq!(other_route.0, StatusCode::UNPROCESSABLE_ENTITY);
    // Keys are per owner: the same key for another owner is another request.
    let bob = write(&http, base, "bob", "deposit", "k-1", 500)
        .await
        .unwrap();
    assert_eq!(bob.0, StatusCode::OK);
    assert_eq!(balance(&http, base, "ivy").await, 20_570);

    let bad = http
        .post(format!("{base}/wallet/deposit"))
        .header("authorization", "Bearer ivy-token")
        .header("idempotency-key", "")
        .json(&json!({"amountCents": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(balance(&http, base, "ivy").await, 20_570);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_writes_once_on_the_in_memory_stores() {
    let app = spawn_app(None, "unused").await;
    keys_write_once(&app.base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_writes_once_on_postgres() {
    let schema = fresh_schema();
    let app = spawn_app(Some(&database_url()), &schema).await;
    keys_write_once(&app.base).await;
    drop(app);
    drop_schema(&schema).await;
}

/// Deposits under their own keys; the app is killed with `kill -9` in the
/// middle. Clients retry every request that got no 200 with its key, on a
/// fresh process, until each is answered: the balance is then exactly the
/// sum of the distinct requests, none lost, none doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_retries_with_keys_apply_each_deposit_exactly_once() {
    let schema = fresh_schema();
    let url = database_url();
    let mut app = spawn_app(Some(&url), &schema).await;
    let http = Client::new();
    let amounts: Vec<i64> = (1..=300).collect();
    let acked_so_far = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let first_round: Vec<_> = amounts
        .iter()
        .map(|&amount| {
            let (http, base) = (http.clone(), app.base.clone());
            let acked_so_far = std::sync::Arc::clone(&acked_so_far);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..400_000))).await;
                let answer = write(
                    &http,
                    &base,
                    "kim",
                    "deposit",
                    &format!("d-{amount}"),
                    amount,
                )
                .await;
                let ok = answer.is_some_and(|(status, _)| status == StatusCode::OK);
                if ok {
                    acked_so_far.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                (amount, ok)
            })
        })
        .collect();
    // Killed in the middle: once some deposits were acknowledged, at a
    // random point after (bounded, whatever the machine's load).
    let waiting = std::time::Instant::now();
    while acked_so_far.load(std::sync::atomic::Ordering::SeqCst) < 10
        && waiting.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..30))).await;
    app.child.start_kill().unwrap();
    nexus_tests::wallet_process::wait_killed(&mut app.child).await;
    let mut unanswered = Vec::new();
    let mut acked = 0;
    for task in first_round {
        let (amount, ok) = task.await.unwrap();
        if ok {
            acked += 1;
        } else {
            unanswered.push(amount);
        }
    }
    assert!(acked > 0, "some deposits were acknowledged before the kill");
    assert!(!unanswered.is_empty(), "the kill cut some deposits off");

    let again = spawn_app(Some(&url), &schema).await;
    // Every request again, answered or not: a retry must never double.
    for round in 0..5 {
        let mut left = Vec::new();
        for &amount in &amounts {
            let answer = write(
                &http,
                &again.base,
                "kim",
                "deposit",
                &format!("d-{amount}"),
                amount,
            )
            .await;
            if answer.is_none_or(|(status, _)| status != StatusCode::OK) {
                left.push(amount);
            }
        }
        if left.is_empty() {
            break;
        }
        assert!(round < 4, "still unanswered after 5 rounds: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expected: i64 = amounts.iter().sum();
    assert_eq!(balance(&http, &again.base, "kim").await, expected);
    drop(again);
    drop_schema(&schema).await;
}
