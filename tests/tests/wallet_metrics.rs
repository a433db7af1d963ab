//! `GET /metrics` of the wallet app, in a process of its own (the Prometheus
//! recorder is global): 200 owners under `--max-active-entities 50`.

use std::time::Duration;

use nexus_examples::wallet_app::telemetry::LogFormat;
use nexus_examples::wallet_app::{Config, serve};
use serde_json::json;
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
