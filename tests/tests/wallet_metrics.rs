//! `GET /metrics` of the wallet app, in a process of its own (the Prometheus
//! recorder is global): 200 owners under `--max-active-entities 50`; and,
//! through a real `wallet_app` process on Postgres, a request's
//! `traceparent` in the headers of the event it wrote and the balances
//! projection's metrics on `/metrics`.

use std::time::Duration;

use nexus_examples::wallet_app::telemetry::LogFormat;
use nexus_examples::wallet_app::{Config, serve};
use nexus_tests::wallet_process::WalletApp;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The value of the sample `name{labels}` in a Prometheus exposition.
fn sample(exposition: &str, name_and_labels: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name_and_labels} in:\n{exposition}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_command_and_at_most_50_live_wallets() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = Config {
        listen: listener.local_addr().unwrap(),
        database_url: None,
        schema: "unused".to_owned(),
        pool_size: 1,
        lease_shards: None,
        cluster: false,
        cluster_listen: None,
        lease_ttl_ms: 10_000,
        lease_database_url: None,
        max_active_entities: Some(50),
        log_format: LogFormat::Text,
        redis_url: None,
        admin_token: None,
        balances_wait_ms: 2_000,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(config, listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for owner in 0..200 {
        for _ in 0..2 {
            let response = http
                .post(format!("{base}/wallet/deposit"))
                .header("authorization", format!("Bearer owner{owner}-token"))
                .header("traceparent", traceparent)
                .json(&json!({ "amountCents": 100 }))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.status());
        }
        let response = http
            .get(format!("{base}/wallet/balance"))
            .header("authorization", format!("Bearer owner{owner}-token"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
    let response = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(response.status().is_success());
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let exposition = response.text().await.unwrap();
    let active = sample(&exposition, "nexus_entities_active{aggregate=\"wallet\"}");
    assert!(active <= 50.0, "{active} live wallets");
    let commands = sample(
        &exposition,
        "nexus_commands_total{aggregate=\"wallet\",outcome=\"ok\"}",
    );
    assert!(
        (commands - 600.0).abs() < f64::EPSILON,
        "{commands} commands counted"
    );
    let passivations = sample(
        &exposition,
        "nexus_passivations_total{aggregate=\"wallet\"}",
    );
    assert!(passivations >= 150.0, "{passivations} passivations");
    assert!(exposition.contains("nexus_command_duration_seconds"));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A valid `traceparent` on a deposit ends up in the stored event's
/// headers, an invalid one nowhere; once the balances projection has passed
/// the deposit, `/metrics` shows what it delivered and its lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_reaches_the_event_and_projection_metrics_reach_metrics() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("metrics_{}", uuid::Uuid::new_v4().simple());
    let app = WalletApp::spawn(env!("CARGO_BIN_EXE_wallet_app"), &url, &schema, &[]).await;
    let base = app.base();
    let http = reqwest::Client::new();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let deposit = |owner: &str, header: &str| {
        http.post(format!("{base}/wallet/deposit"))
            .header("authorization", format!("Bearer {owner}-token"))
            .header("traceparent", header)
            .json(&json!({ "amountCents": 250 }))
            .send()
    };
    let traced: Value = deposit("traced", traceparent)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let untraced = deposit("untraced", "not-a-trace").await.unwrap();
    assert!(untraced.status().is_success(), "{}", untraced.status());

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let headers: Vec<(String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT stream_id, headers->>'traceparent' FROM \"{schema}\".events ORDER BY stream_id"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        headers,
        vec![
            ("wallet-traced".to_owned(), Some(traceparent.to_owned())),
            ("wallet-untraced".to_owned(), None),
        ]
    );

    // Read your write through the projection, then its metrics.
    let position = traced["position"].as_str().unwrap();
    let ranked = http
        .get(format!("{base}/admin/balances?after={position}"))
        .send()
        .await
        .unwrap();
    assert!(ranked.status().is_success(), "{}", ranked.status());
    let metrics_of = |exposition: &str, name: &str| {
        sample(
            exposition,
            &format!("{name}{{projection=\"wallet_balances\"}}"),
        )
    };
    let mut exposition = String::new();
    for _ in 0..50 {
        exposition = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // Both deposits delivered (the untraced one may trail by a poll),
        // and the lag gauge refreshed since (it is measured once drained).
        if exposition.contains("nexus_projection_events_total{projection=\"wallet_balances\"} 2")
            && metrics_of(&exposition, "nexus_projection_lag_events").abs() < f64::EPSILON
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        (metrics_of(&exposition, "nexus_projection_events_total") - 2.0).abs() < f64::EPSILON,
        "{exposition}"
    );
    assert!(metrics_of(&exposition, "nexus_projection_batches_total") >= 1.0);
    // Drained, nothing held: the lag gauges are exported, and zero.
    assert!(metrics_of(&exposition, "nexus_projection_lag_events").abs() < f64::EPSILON);
    assert!(metrics_of(&exposition, "nexus_log_horizon_held_seconds").abs() < f64::EPSILON);
    assert!(exposition.contains("nexus_projection_lag_seconds{projection=\"wallet_balances\"}"));
    drop(app);
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}
