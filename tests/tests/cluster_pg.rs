//! The wallet app as a cluster of real OS processes on loopback, one
//! Postgres schema (`--cluster`): any node accepts any request and forwards
//! it to the owner's node, and the guarantees hold through the faults a
//! cluster meets:
//!
//! 1. steady load: 3 nodes, 24 clients sending to random nodes for random
//!    owners; every balance read through every node equals the sum of the
//!    acknowledged writes, and the store counts 0 conflicts (a single writer
//!    never trips the version check);
//! 2. a node is `kill -9`ed mid-load: no acknowledged write is lost, the
//!    survivors serve its owners within the lease ttl + 1 s, and clients see
//!    only retryable errors;
//! 3. a fourth node joins and another leaves with SIGTERM mid-load: shards
//!    move with no client error and nothing lost, and each caller's numbered
//!    deposits are stored in the order it sent them;
//! 4. a node is `SIGSTOP`ped past its lease, then resumed: it answers
//!    nothing from stale state, and its old shards stay with their new
//!    owners (or come back through a clean handoff);
//! 5. a node is cut off from the coordination in Postgres (its lease and
//!    membership connections go through a TCP proxy the test cuts, its
//!    stores' do not, so only the fence can stop its writes): it stops
//!    serving within its lease, the others take over, and there is never a
//!    second writer.
//!
//! Deposits have amounts no other request has (`nexus_tests::deposits`), so
//! the log is checked against the requests exactly: acknowledged writes
//! once each at their versions, nothing no request can account for, and no
//! read that missed a write acknowledged before it was sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nexus_core::EventStore;
use nexus_core::{Aggregate, StreamId};
use nexus_examples::domain::wallet::Wallet;
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use nexus_tests::Outage;
use nexus_tests::deposits::{Load, account, statuses, stored_deposits, unique_deposit};
use nexus_tests::wallet_process::{Answer, Op, WalletApp, send, timed};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

const WALLET_APP: &str = env!("CARGO_BIN_EXE_wallet_app");
const SHARDS: u32 = 32;
const TTL_MS: u64 = 3_000;
const TTL: Duration = Duration::from_millis(TTL_MS);

/// The scenarios start three or four processes each; one at a time keeps
/// the 2-core CI machine from timing them out.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh, migrated schema of its own.
async fn fresh_schema(url: &str) -> (PgStoreConfig, String) {
    let schema = format!("nexus_cluster_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(url).await.expect("DATABASE_URL");
    let config = PgStoreConfig::new(pool).schema(&schema).unwrap();
    config.migrate().await.unwrap();
    (config, schema)
}

async fn drop_schema(config: &PgStoreConfig, schema: &str) {
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(config.pool())
        .await
        .unwrap();
}

fn cluster_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["--cluster", "--lease-shards", "32", "--lease-ttl-ms"]
        .iter()
        .map(ToString::to_string)
        .collect();
    args.push(TTL_MS.to_string());
    args.extend(extra.iter().map(ToString::to_string));
    args
}

async fn node(url: &str, schema: &str, extra: &[&str]) -> WalletApp {
    WalletApp::spawn(WALLET_APP, url, schema, &cluster_args(extra)).await
}

/// Three nodes of one cluster on `schema`.
async fn three_nodes(url: &str, schema: &str) -> Vec<WalletApp> {
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(node(url, schema, &[]).await);
    }
    apps
}

fn bases_of(apps: &[WalletApp]) -> Vec<String> {
    apps.iter().map(|app| app.base().to_owned()).collect()
}

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `GET /cluster` of `app`.
async fn cluster_of(http: &Client, base: &str) -> Value {
    http.get(format!("{base}/cluster"))
        .send()
        .await
        .expect("GET /cluster")
        .json()
        .await
        .expect("a JSON body")
}

/// Waits (15 s at most) until every node of `bases` sees `bases.len()`
/// members holding every shard between them, none more than its share
/// rounded up; returns the last view of each.
async fn settled(http: &Client, bases: &[String]) -> Vec<Value> {
    let give_up = Instant::now() + Duration::from_secs(15);
    let room = (SHARDS as usize).div_ceil(bases.len()) as u64;
    loop {
        let mut views = Vec::new();
        for base in bases {
            views.push(cluster_of(http, base).await);
        }
        let balanced = views.iter().all(|view| {
            let members = view["members"].as_array().unwrap();
            let shards: Vec<u64> = members
                .iter()
                .map(|m| m["shards"].as_u64().unwrap())
                .collect();
            members.len() == bases.len()
                && shards.iter().sum::<u64>() == u64::from(SHARDS)
                && shards.iter().all(|&held| held <= room)
        });
        let held: u64 = views
            .iter()
            .map(|v| v["held"].as_array().unwrap().len() as u64)
            .sum();
        if balanced && held == u64::from(SHARDS) {
            return views;
        }
        assert!(
            Instant::now() < give_up,
            "the cluster did not settle: {views:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The shards a `GET /cluster` view says its node holds.
fn held(view: &Value) -> Vec<u64> {
    view["held"]
        .as_array()
        .expect("a view lists the held shards")
        .iter()
        .map(|shard| shard.as_u64().expect("a shard is a number"))
        .collect()
}

/// The sum of the counter `name`'s samples in `base`'s `/metrics`.
async fn counter(http: &Client, base: &str, name: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn owners(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("owner{i}")).collect()
}

fn shard_of(owner: &str) -> u32 {
    nexus_core::lease::shard_of(
        &StreamId::for_entity(<Wallet as Aggregate>::NAME, owner),
        SHARDS,
    )
}

/// A deposit with a W3C `traceparent`, sent to node 0 for a wallet node 1
/// owns, is forwarded and written there with the header in its event.
async fn a_trace_crosses_the_hop(
    http: &Client,
    bases: &[String],
    views: &[Value],
    config: &PgStoreConfig,
) {
    let held_by_1 = held(&views[1]);
    let owner = (0..1000)
        .map(|i| format!("traced{i}"))
        .find(|o| held_by_1.contains(&u64::from(shard_of(o))))
        .expect("some owner falls on node 1's shards");
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = http
        .post(format!("{}/wallet/deposit", bases[0]))
        .header("authorization", format!("Bearer {owner}-token"))
        .header("traceparent", traceparent)
        .json(&serde_json::json!({ "amountCents": 5 }))
        .send()
        .await
        .expect("the deposit is answered");
    assert_eq!(response.status(), StatusCode::OK);
    let stream = StreamId::for_entity(<Wallet as Aggregate>::NAME, &owner);
    let events = PgEventStore::new(config)
        .read_stream(&stream, 1)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]
            .metadata
            .headers
            .get("traceparent")
            .map(String::as_str),
        Some(traceparent),
        "the caller's trace reached the owner's event across the hop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steady_load_through_every_node_counts_no_conflict() {
    let _one = ONE_AT_A_TIME.lock().await;
    let url = database_url();
    let (config, schema) = fresh_schema(&url).await;
    let apps = three_nodes(&url, &schema).await;
    let bases = bases_of(&apps);
    let http = http();
    let views = settled(&http, &bases).await;

    let owners = owners(60);
    let started = Instant::now();
    let load = Load::start(&http, 24, 80, &bases, &owners, &[], started);
    let requests = load.complete(Duration::from_secs(60)).await;
    let counts = statuses(&requests);
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        vec!["200"],
        "steady load: every request answered 200, got {counts:?}\n{}",
        apps[0].log_tail()
    );
    let stored = stored_deposits(&config, &owners).await;
    let accounted = account(&requests, &stored);
    assert!(
        accounted.acked > 500,
        "only {} deposits acknowledged",
        accounted.acked
    );

    // Every balance, read through every node, is the sum of the
    // acknowledged deposits (all of them were: no ambiguous answer).
    for owner in &owners {
        let expected: i64 = stored[owner].iter().sum();
        for (via, base) in bases.iter().enumerate() {
            match send(&http, base, owner, Op::Balance).await {
                Answer::Read { balance, .. } => {
                    assert_eq!(balance, expected, "{owner} through node {via}");
                }
                other => panic!("{owner} through node {via}: {other:?}"),
            }
        }
    }
    let mut conflicts = 0;
    for base in &bases {
        conflicts += counter(&http, base, "nexus_conflicts_total").await;
    }
    assert_eq!(conflicts, 0, "a single writer per wallet never conflicts");
    a_trace_crosses_the_hop(&http, &bases, &views, &config).await;
    drop(apps);
    drop_schema(&config, &schema).await;
}

/// How long after `since` the nodes of `bases` held every one of `shards`
/// between them (polled every 50 ms, 15 s at most).
async fn taken_over(http: &Client, bases: &[String], shards: &[u64], since: Instant) -> Duration {
    let give_up = since + Duration::from_secs(15);
    loop {
        let mut taken = Vec::new();
        for base in bases {
            taken.extend(held(&cluster_of(http, base).await));
        }
        if shards.iter().all(|shard| taken.contains(shard)) {
            return since.elapsed();
        }
        assert!(
            Instant::now() < give_up,
            "the others did not take the shards {shards:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// For each of `owners` at once, reads its balance through `bases` (in
/// turn) until a read is answered 200; returns how long after `since` each
/// owner was first served again (15 s at most).
async fn served_again(
    http: &Client,
    bases: &[String],
    owners: &[String],
    since: Instant,
) -> Vec<(String, Duration)> {
    let probes: Vec<_> = owners
        .iter()
        .enumerate()
        .map(|(i, owner)| {
            let (http, bases, owner) = (http.clone(), bases.to_vec(), owner.clone());
            tokio::spawn(async move {
                let give_up = Instant::now() + Duration::from_secs(15);
                for attempt in 0.. {
                    let base = &bases[(i + attempt) % bases.len()];
                    if let Answer::Read { .. } = send(&http, base, &owner, Op::Balance).await {
                        return (owner, since.elapsed());
                    }
                    assert!(
                        Instant::now() < give_up,
                        "{owner} was not served again within 15 s"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                unreachable!("the loop returns or panics")
            })
        })
        .collect();
    let mut served = Vec::new();
    for probe in probes {
        served.push(probe.await.expect("a probe panicked"));
    }
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_loses_nothing_and_its_owners_move_within_the_ttl() {
    let _one = ONE_AT_A_TIME.lock().await;
    let url = database_url();
    let (config, schema) = fresh_schema(&url).await;
    let apps = three_nodes(&url, &schema).await;
    let bases = bases_of(&apps);
    let http = http();
    let views = settled(&http, &bases).await;
    let victim_shards = held(&views[2]);
    let owners = owners(60);
    let victims: Vec<String> = owners
        .iter()
        .filter(|o| victim_shards.contains(&u64::from(shard_of(o))))
        .cloned()
        .collect();
    assert!(!victims.is_empty(), "the victim owns some wallets");

    // Clients through the two survivors only: the victim's own clients
    // would see its death as lost connections, which tells nothing.
    let started = Instant::now();
    let survivors = bases[..2].to_vec();
    let load = Load::start(&http, 16, 400, &survivors, &owners, &[], started);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    apps[2].signal("KILL");
    let killed_at = Instant::now();
    // The victim's wallets, each probed through the survivors from the
    // kill on, are served again within the ttl + 1 s.
    let served = served_again(&http, &survivors, &victims, killed_at).await;
    let slowest = served.iter().map(|(_, after)| *after).max().unwrap();
    eprintln!(
        "kill -9: the victim's {} wallets served again after at most {slowest:?}",
        served.len()
    );
    for (owner, after) in &served {
        assert!(
            *after <= TTL + Duration::from_secs(1),
            "{owner} served again {after:?} after the kill"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let requests = load.finish().await;

    // Only retryable errors: 503s; never a 500 or a refused connection.
    let counts = statuses(&requests);
    for status in counts.keys() {
        assert!(status == "200" || status == "503", "{counts:?}");
    }
    let stored = stored_deposits(&config, &owners).await;
    let accounted = account(&requests, &stored);
    assert!(accounted.acked > 200, "{accounted:?}");
    eprintln!("kill -9: {counts:?}, {accounted:?}");
    drop(apps);
    drop_schema(&config, &schema).await;
}

/// One caller's numbered deposits (`caller * 1_000_000 + n` cents), sent
/// one after the other to random owners through random nodes of `bases`
/// (re-read on every request, so that a drained node stops receiving).
/// Every answer must be a 200.
fn numbered_caller(
    http: Client,
    bases: Arc<std::sync::Mutex<Vec<String>>>,
    owners: Arc<Vec<String>>,
    caller: i64,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Result<Vec<(String, i64)>, String>> {
    tokio::spawn(async move {
        let mut sent = Vec::new();
        for n in 1..=400 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let owner = owners[fastrand::usize(..owners.len())].clone();
            let base = {
                let bases = bases.lock().unwrap();
                bases[fastrand::usize(..bases.len())].clone()
            };
            let amount = caller * 1_000_000 + n;
            let response = http
                .post(format!("{base}/wallet/deposit"))
                .header("authorization", format!("Bearer {owner}-token"))
                .json(&serde_json::json!({ "amountCents": amount }))
                .send()
                .await;
            let (status, body) = match response {
                Ok(response) => (
                    Some(response.status()),
                    response.text().await.unwrap_or_default(),
                ),
                Err(error) => (None, error.to_string()),
            };
            if status != Some(StatusCode::OK) {
                return Err(format!(
                    "caller {caller}, deposit {n} for {owner} via {base}: {status:?} {body}"
                ));
            }
            acked.fetch_add(1, Ordering::Relaxed);
            sent.push((owner, amount));
            tokio::time::sleep(Duration::from_millis(fastrand::u64(1..8))).await;
        }
        Ok(sent)
    })
}

/// Nothing lost, nothing twice, each caller's deposits in its order: the
/// log holds exactly the acknowledged deposits, and per owner each caller's
/// numbers grow.
fn assert_stored_in_order(stored: &BTreeMap<String, Vec<i64>>, sent: &[(String, i64)]) {
    let stored_count: usize = stored.values().map(Vec::len).sum();
    assert_eq!(
        stored_count,
        sent.len(),
        "every acknowledged deposit is stored, once"
    );
    for (owner, amounts) in stored {
        let mut last: BTreeMap<i64, i64> = BTreeMap::new();
        for amount in amounts {
            let (caller, n) = (amount / 1_000_000, amount % 1_000_000);
            let previous = last.insert(caller, n).unwrap_or(0);
            assert!(
                n > previous,
                "{owner}: caller {caller}'s deposit {n} stored after {previous}"
            );
        }
    }
    for (owner, amount) in sent {
        assert!(
            stored[owner].contains(amount),
            "{owner}: deposit {amount} was acknowledged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_and_a_graceful_leave_move_shards_with_no_client_error() {
    let _one = ONE_AT_A_TIME.lock().await;
    let url = database_url();
    let (config, schema) = fresh_schema(&url).await;
    let mut apps = three_nodes(&url, &schema).await;
    let http = http();
    let bases = bases_of(&apps);
    settled(&http, &bases).await;
    let routed = Arc::new(std::sync::Mutex::new(bases.clone()));
    let owners = owners(40);
    let shared_owners = Arc::new(owners.clone());
    let (stop, acked) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let callers: Vec<_> = (1..=12)
        .map(|caller| {
            numbered_caller(
                http.clone(),
                Arc::clone(&routed),
                Arc::clone(&shared_owners),
                caller,
                Arc::clone(&stop),
                Arc::clone(&acked),
            )
        })
        .collect();

    // A fourth node joins mid-load and starts taking requests.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let joiner = node(&url, &schema, &[]).await;
    routed.lock().unwrap().push(joiner.base().to_owned());
    let four: Vec<String> = routed.lock().unwrap().clone();
    settled(&http, &four).await;
    apps.push(joiner);
    let before_leave = acked.load(Ordering::Relaxed);

    // Node 1 leaves: drained from the clients first (as a load balancer
    // does), then SIGTERM; its shards are handed off while the others keep
    // forwarding to it.
    routed.lock().unwrap().retain(|base| base != apps[1].base());
    // A load balancer's deregistration delay: requests that picked the node
    // just before it was drained finish before its HTTP listener closes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    apps[1].signal("TERM");
    let three: Vec<String> = routed.lock().unwrap().clone();
    settled(&http, &three).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    let mut failures = Vec::new();
    for caller in callers {
        match tokio::time::timeout(Duration::from_secs(30), caller)
            .await
            .unwrap()
            .unwrap()
        {
            Ok(deposits) => sent.extend(deposits),
            Err(failure) => failures.push(failure),
        }
    }
    if !failures.is_empty() {
        let logs: Vec<String> = apps
            .iter()
            .map(|app| {
                format!(
                    "--- {} (pid {}):\n{}",
                    app.base(),
                    app.pid(),
                    app.log_tail()
                )
            })
            .collect();
        panic!(
            "{} callers failed:\n{}\n{}",
            failures.len(),
            failures.join("\n"),
            logs.join("\n")
        );
    }
    assert!(
        acked.load(Ordering::Relaxed) > before_leave,
        "deposits went on during the leave"
    );
    assert!(before_leave > 50, "deposits went on during the join");

    let stored = stored_deposits(&config, &owners).await;
    assert_stored_in_order(&stored, &sent);
    drop(apps);
    drop_schema(&config, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_node_answers_nothing_stale_when_it_resumes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let url = database_url();
    let (config, schema) = fresh_schema(&url).await;
    let apps = three_nodes(&url, &schema).await;
    let bases = bases_of(&apps);
    let http = http();
    settled(&http, &bases).await;
    let owners = owners(40);
    let started = Instant::now();
    // Clients through every node, the stopped one included: the requests
    // it holds while stopped are answered when it resumes, and must not be
    // answered from the state it had.
    let load = Load::start(&http, 12, 300, &bases, &owners, &[], started);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped_shards = held(&cluster_of(&http, &bases[2]).await);
    apps[2].signal("STOP");
    let stopped_at = Instant::now();
    let taken = taken_over(&http, &bases[..2], &stopped_shards, stopped_at).await;
    eprintln!(
        "SIGSTOP: the others held the stopped node's {} shards {taken:?} after the stop",
        stopped_shards.len()
    );
    assert!(
        taken <= TTL + Duration::from_secs(1),
        "taken over after {taken:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    apps[2].signal("CONT");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let requests = load.finish().await;
    let stored = stored_deposits(&config, &owners).await;
    let accounted = account(&requests, &stored);
    eprintln!("SIGSTOP: {:?}, {accounted:?}", statuses(&requests));
    assert!(accounted.reads_bounded > 50, "{accounted:?}");

    // The resumed node rejoined: every shard has one holder, and all three
    // serve every owner again.
    settled(&http, &bases).await;
    for owner in owners.iter().take(10) {
        for base in &bases {
            assert!(matches!(
                send(&http, base, owner, Op::Balance).await,
                Answer::Read { .. }
            ));
        }
    }
    drop(apps);
    drop_schema(&config, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_cut_off_from_postgres_stops_serving_and_the_others_take_over() {
    let _one = ONE_AT_A_TIME.lock().await;
    let url = database_url();
    let (config, schema) = fresh_schema(&url).await;
    let target = url
        .rsplit('@')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let proxy = Outage::forward_to(&target).await.unwrap();
    let cut_url = proxy.url_through(&url);
    let apps = vec![
        node(&url, &schema, &[]).await,
        node(&url, &schema, &[]).await,
        // The third node's lease and membership connections go through the
        // proxy, its stores' do not: cut off from the coordination, it could
        // still write, and only the fence stops it.
        node(&url, &schema, &["--lease-database-url", &cut_url]).await,
    ];
    let bases = bases_of(&apps);
    let http = http();
    let views = settled(&http, &bases).await;
    let cut_shards = held(&views[2]);
    let owners = owners(40);
    let started = Instant::now();
    let load = Load::start(&http, 16, 1000, &bases, &owners, &[], started);
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.cut();
    let cut = started.elapsed();
    let cut_at = Instant::now();
    // The others take its shards within the ttl + 1 s (reads through them
    // would not show it: until its lease ends, the cut node still owns its
    // wallets and answers their reads from memory, rightly).
    let taken = taken_over(&http, &bases[..2], &cut_shards, cut_at).await;
    eprintln!(
        "partition: the others held the cut node's {} shards {taken:?} after the cut",
        cut_shards.len()
    );
    assert!(
        taken <= TTL + Duration::from_secs(1),
        "taken over after {taken:?}"
    );
    // Requests through the cut node for its own shards hang until the ask
    // timeout (3 s): a tail long enough to see it answer none with a 200.
    tokio::time::sleep(TTL + Duration::from_secs(2)).await;
    let requests = load.finish().await;

    // Within its lease the cut node stops serving the shards it held: its
    // requests for them get no 200 (it may still forward the others' to
    // their owners, who answer from their own state).
    let held_by_cut = |owner: &str| cut_shards.contains(&u64::from(shard_of(owner)));
    let late_ok = requests
        .iter()
        .filter(|r| r.via == 2 && held_by_cut(&r.owner) && r.sent > cut + TTL)
        .filter(|r| r.answer.status() == Some(StatusCode::OK))
        .count();
    assert_eq!(
        late_ok,
        0,
        "the cut node served its shards after its lease: {:?}",
        statuses(&requests)
    );
    // The survivors now write the cut node's wallets.
    let mut requests = requests;
    for owner in owners.iter().filter(|o| held_by_cut(o)) {
        let deposit = timed(&http, &bases[0], 0, owner, unique_deposit(), started).await;
        assert!(
            matches!(deposit.answer, Answer::Wrote { .. }),
            "{owner}: {:?}",
            deposit.answer
        );
        requests.push(deposit);
    }
    // Never a second writer: the log accounts for every request exactly.
    let stored = stored_deposits(&config, &owners).await;
    let accounted = account(&requests, &stored);
    eprintln!("partition: {:?}, {accounted:?}", statuses(&requests));
    let mut conflicts = 0;
    for base in &bases[..2] {
        conflicts += counter(&http, base, "nexus_conflicts_total").await;
    }
    assert_eq!(conflicts, 0, "no second writer raced the survivors");
    drop(apps);
    drop_schema(&config, &schema).await;
}
