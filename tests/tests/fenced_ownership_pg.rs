//! Fenced ownership across real OS processes (invariant 9), and no stale
//! answers while ownership moves (invariant 8): wallet-app processes on
//! loopback, each owning its wallets through a `PgLease` (`--lease-shards`),
//! with the faults the lease must survive:
//!
//! 1. the owner's lease connection is cut mid-load (its lease goes through a
//!    TCP forwarder, its stores do not): within the lease ttl it answers
//!    only 503 and writes nothing more, and the other process serves;
//! 2. the owner is `SIGSTOP`ped past its lease, the other takes over, then
//!    `SIGCONT`: it answers none of the requests queued while it slept with
//!    a 200, and the store holds none of their writes;
//! 3. Postgres (a throwaway cluster) restarts mid-load: no acknowledged
//!    write is lost, no entity has two owners, both processes serve again.
//!
//! Every deposit has an amount no other request has, so each event in the
//! log names the one request that wrote it: the checks count acknowledged
//! writes found (exactly once, at their versions), writes found that were
//! never acknowledged (only ambiguous ones may be), and reads that missed a
//! write acknowledged before they were sent (`nexus_tests::history`).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use nexus_core::{Aggregate, StreamId};
use nexus_examples::domain::wallet::Wallet;
use nexus_store_pg::{LeaseTiming, PgLease, PgStoreConfig};
use nexus_tests::deposits::{Load, account, statuses, stored_deposits, unique_deposit};
use nexus_tests::wallet_process::{Answer, Op, Request, WalletApp, leased, timed};
use nexus_tests::{Outage, ThrowawayPostgres};
use reqwest::{Client, StatusCode};

const WALLET_APP: &str = env!("CARGO_BIN_EXE_wallet_app");
/// Shards of every lease: enough that the owners below fall on shards of
/// their own.
const SHARDS: u32 = 64;
/// The processes' lease ttl; they renew every ttl/5 (`--lease-ttl-ms`).
const TTL_MS: u64 = 3_000;
const TTL: Duration = Duration::from_millis(TTL_MS);
const RENEW: Duration = Duration::from_millis(TTL_MS / 5);
/// Concurrent clients of a load phase.
const CLIENTS: usize = 8;
/// At most this many requests per client and phase.
const OPS_PER_CLIENT: usize = 1_500;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn host_port(url: &str) -> String {
    let after_at = url.rsplit('@').next().unwrap();
    after_at.split('/').next().unwrap().to_owned()
}

/// A fresh, migrated schema of its own on `url`.
async fn fresh_schema(url: &str) -> (PgStoreConfig, String) {
    let schema = format!("nexus_test_{}", uuid::Uuid::new_v4().simple());
    let config = store_config(url, &schema).await;
    config.migrate().await.unwrap();
    (config, schema)
}

async fn store_config(url: &str, schema: &str) -> PgStoreConfig {
    let pool = sqlx::PgPool::connect(url).await.expect("DATABASE_URL");
    PgStoreConfig::new(pool).schema(schema).unwrap()
}

async fn drop_schema(config: &PgStoreConfig, schema: &str) {
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(config.pool())
        .await
        .unwrap();
}

fn http(timeout: Duration) -> Client {
    Client::builder().timeout(timeout).build().unwrap()
}

/// `n` owners whose wallets fall on `n` different shards, so that each is
/// owned by the process that served it first.
async fn owners_on_distinct_shards(config: &PgStoreConfig, n: usize) -> Vec<String> {
    let timing = LeaseTiming::new(TTL, RENEW, TTL / 10).unwrap();
    let lease = PgLease::connect_with(config, SHARDS, timing).await.unwrap();
    let mut shards = HashSet::new();
    (0..)
        .map(|i| format!("owner{i}"))
        .filter(|owner| {
            let stream = StreamId::for_entity(<Wallet as Aggregate>::NAME, owner);
            shards.insert(lease.shard_of(&stream))
        })
        .take(n)
        .collect()
}

/// Reads each owner's balance through `app`, which must answer 200: it
/// now holds the owner's shard.
async fn take(http: &Client, app: &WalletApp, via: usize, owners: &[String]) -> Vec<Request> {
    let started = Instant::now();
    let mut taken = Vec::new();
    for owner in owners {
        let request = timed(http, app.base(), via, owner, Op::Balance, started).await;
        assert!(
            matches!(request.answer, Answer::Read { .. }),
            "process {via} serves {owner}: {:?}\n{}",
            request.answer,
            app.log_tail()
        );
        taken.push(request);
    }
    taken
}

/// Reads `owner`'s balance through `app` until it answers 200 (bounded).
async fn read_until_served(
    http: &Client,
    app: &WalletApp,
    via: usize,
    owner: &str,
    started: Instant,
    requests: &mut Vec<Request>,
) -> i64 {
    let give_up = Instant::now() + Duration::from_secs(15);
    loop {
        let request = timed(http, app.base(), via, owner, Op::Balance, started).await;
        let answer = request.answer.clone();
        requests.push(request);
        if let Answer::Read { balance, .. } = answer {
            return balance;
        }
        assert!(
            Instant::now() < give_up,
            "process {via} does not serve {owner} within 15 s: {answer:?}\n{}",
            app.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads every owner's balance through `app` until it answers 200.
async fn final_balances(
    http: &Client,
    app: &WalletApp,
    via: usize,
    owners: &[String],
    started: Instant,
    requests: &mut Vec<Request>,
) -> BTreeMap<String, i64> {
    let mut balances = BTreeMap::new();
    for owner in owners {
        let balance = read_until_served(http, app, via, owner, started, requests).await;
        balances.insert(owner.clone(), balance);
    }
    balances
}

/// Each final balance is the sum of the owner's stored deposits.
fn check_final(balances: &BTreeMap<String, i64>, stored: &BTreeMap<String, Vec<i64>>) {
    for (owner, balance) in balances {
        assert_eq!(
            *balance,
            stored[owner].iter().sum::<i64>(),
            "{owner}: the final balance"
        );
    }
}

/// How many deposits of `requests` the store holds.
fn deposits_stored<'a>(
    requests: impl IntoIterator<Item = &'a Request>,
    stored: &BTreeMap<String, Vec<i64>>,
) -> usize {
    requests
        .into_iter()
        .filter(|r| match r.op {
            Op::Deposit(amount) => stored[&r.owner].contains(&amount),
            _ => false,
        })
        .count()
}

// ---------------------------------------------------------------------------
// (1) the owner's lease connection is cut

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_lease_connection_stops_the_old_owner_and_the_new_one_serves() {
    let url = database_url();
    let (config, schema) = fresh_schema(&url).await;
    let owners = owners_on_distinct_shards(&config, 8).await;
    let (owners_a, owners_b) = owners.split_at(4);
    let outage = Outage::forward_to(&host_port(&url)).await.unwrap();
    let lease_url = outage.url_through(&url);
    let a = WalletApp::spawn(
        WALLET_APP,
        &url,
        &schema,
        &leased(SHARDS, TTL_MS, Some(&lease_url)),
    )
    .await;
    let b = WalletApp::spawn(WALLET_APP, &url, &schema, &leased(SHARDS, TTL_MS, None)).await;
    let http = http(Duration::from_secs(5));
    take(&http, &a, 0, owners_a).await;
    take(&http, &b, 1, owners_b).await;

    let bases = [a.base().to_owned(), b.base().to_owned()];
    let started = Instant::now();
    // Two of A's owners are written only through B: A only reads them.
    let load = Load::start(
        &http,
        CLIENTS,
        OPS_PER_CLIENT,
        &bases,
        &owners,
        &owners_a[..2],
        started,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cut_at = started.elapsed();
    outage.cut();
    // Past the ttl, B takes A's shards as soon as they expire at the
    // database; a few seconds of serving them follow.
    tokio::time::sleep(TTL + RENEW + Duration::from_secs(5)).await;
    let mut requests = load.finish().await;
    let run_time = started.elapsed();
    let balances = final_balances(&http, &b, 1, &owners, started, &mut requests).await;
    let a_log = a.log_tail();
    drop((a, b));
    let stored = stored_deposits(&config, &owners).await;
    drop_schema(&config, &schema).await;

    let a_after = check_cut_owner(&requests, cut_at, &stored, &a_log);
    // B serves A's old owners, the first time how long after the cut.
    let mut takeovers = Vec::new();
    for owner in owners_a {
        let first = requests
            .iter()
            .filter(|r| r.via == 1 && r.owner == *owner && r.sent >= cut_at)
            .filter(|r| r.answer.status() == Some(StatusCode::OK))
            .map(|r| r.answered)
            .min()
            .unwrap_or_else(|| panic!("B never served {owner} after the cut"));
        takeovers.push(first.saturating_sub(cut_at));
    }
    let accounted = account(&requests, &stored);
    check_final(&balances, &stored);
    assert!(
        accounted.reads_bounded >= 50,
        "too few reads to check: {accounted:?}"
    );
    eprintln!(
        "lease cut: {} requests in {run_time:?} ({:?}), cut at {cut_at:?}; {a_after}; \
         B took A's owners {takeovers:?} after the cut; {accounted:?}",
        requests.len(),
        statuses(&requests),
    );
}

/// Process 0, whose lease was cut at `cut_at`: it served before, and by its
/// own clock answers nothing but 503 and writes nothing once a ttl passed.
fn check_cut_owner(
    requests: &[Request],
    cut_at: Duration,
    stored: &BTreeMap<String, Vec<i64>>,
    log: &str,
) -> String {
    let deadline = cut_at + TTL;
    let late: Vec<&Request> = requests
        .iter()
        .filter(|r| r.via == 0 && r.sent >= deadline)
        .collect();
    let late_statuses = statuses(late.iter().copied());
    let early_ok = requests
        .iter()
        .filter(|r| r.via == 0 && r.sent < cut_at && r.answer.status() == Some(StatusCode::OK))
        .count();
    assert!(
        early_ok >= 10,
        "A served only {early_ok} requests before the cut"
    );
    assert!(
        late.len() >= 25,
        "only {} requests reached A after its deadline",
        late.len()
    );
    assert!(
        late.iter()
            .all(|r| r.answer.status() == Some(StatusCode::SERVICE_UNAVAILABLE)),
        "A answered other than 503 after its lease ended: {late_statuses:?}\n{log}"
    );
    let late_stored = deposits_stored(late.iter().copied(), stored);
    assert_eq!(
        late_stored, 0,
        "A's deposits sent after its deadline that the store accepted"
    );
    format!(
        "A served {early_ok} before the cut; after its deadline {} requests, \
         {late_statuses:?}, {late_stored} of its deposits stored",
        late.len()
    )
}

// ---------------------------------------------------------------------------
// (2) the owner is stopped past its lease

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_stopped_past_its_lease_wakes_fenced_and_writes_nothing() {
    let url = database_url();
    let (config, schema) = fresh_schema(&url).await;
    let owners = owners_on_distinct_shards(&config, 3).await;
    let lease = leased(SHARDS, TTL_MS, None);
    let a = WalletApp::spawn(WALLET_APP, &url, &schema, &lease).await;
    let b = WalletApp::spawn(WALLET_APP, &url, &schema, &lease).await;
    let http = http(Duration::from_secs(5));
    let started = Instant::now();
    let mut requests = take(&http, &a, 0, &owners).await;
    for owner in &owners {
        for _ in 0..5 {
            let deposit = timed(&http, a.base(), 0, owner, unique_deposit(), started).await;
            assert!(
                matches!(deposit.answer, Answer::Wrote { .. }),
                "{deposit:?}"
            );
            requests.push(deposit);
        }
        // A holds the shard: B refuses.
        let refused = timed(&http, b.base(), 1, owner, Op::Balance, started).await;
        assert_eq!(
            refused.answer.status(),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        requests.push(refused);
    }

    a.signal("STOP");
    let stopped_at = started.elapsed();
    let queued = queue(&a, &owners, started);
    tokio::time::sleep(TTL + Duration::from_millis(200)).await;
    let b_refused = take_over(&http, &b, &owners, started, &mut requests).await;
    let took_over_at = started.elapsed();

    a.signal("CONT");
    let mut woken = Vec::new();
    for request in queued {
        let request = tokio::time::timeout(Duration::from_secs(30), request)
            .await
            .expect("A answers what queued within 30 s of waking")
            .unwrap();
        woken.push(request);
    }
    let woken_statuses = statuses(&woken);
    let mut later = Vec::new();
    for owner in &owners {
        for op in [unique_deposit(), Op::Balance, unique_deposit(), Op::Balance] {
            later.push(timed(&http, a.base(), 0, owner, op, started).await);
        }
    }
    let later_statuses = statuses(&later);
    let balances = final_balances(&http, &b, 1, &owners, started, &mut requests).await;
    let a_log = a.log_tail();
    drop((a, b));
    let stored = stored_deposits(&config, &owners).await;
    drop_schema(&config, &schema).await;

    assert!(
        woken
            .iter()
            .all(|r| r.answer.status() != Some(StatusCode::OK)),
        "A answered requests sent while it slept: {woken_statuses:?}\n{a_log}"
    );
    assert!(
        later
            .iter()
            .all(|r| r.answer.status() == Some(StatusCode::SERVICE_UNAVAILABLE)),
        "A answered other than 503 while B holds the lease: {later_statuses:?}\n{a_log}"
    );
    let accepted_after_stop = deposits_stored(woken.iter().chain(&later), &stored);
    assert_eq!(
        accepted_after_stop, 0,
        "A's writes after the stop that the store accepted"
    );
    requests.extend(woken.iter().cloned());
    requests.extend(later.iter().cloned());
    let accounted = account(&requests, &stored);
    let events: usize = stored.values().map(Vec::len).sum();
    assert_eq!(
        events, accounted.acked,
        "the log holds exactly the acknowledged deposits: {accounted:?}"
    );
    check_final(&balances, &stored);
    eprintln!(
        "SIGSTOP: stopped at {stopped_at:?}, B took over (5 acked per owner) by {took_over_at:?} \
         after {b_refused} refusals; {} requests queued at A, after waking: {woken_statuses:?}; \
         {} later through A: {later_statuses:?}; {accepted_after_stop} of A's writes after the \
         stop accepted; {events} events, {accounted:?}",
        woken.len(),
        later.len(),
    );
}

/// Four deposits and four reads per owner sent to the stopped `app`: they
/// wait in its accept backlog (the client waits up to 60 s).
fn queue(
    app: &WalletApp,
    owners: &[String],
    started: Instant,
) -> Vec<tokio::task::JoinHandle<Request>> {
    let patient = http(Duration::from_secs(60));
    owners
        .iter()
        .flat_map(|owner| {
            (0..8).map(|i| {
                let (http, base, owner) = (patient.clone(), app.base().to_owned(), owner.clone());
                let op = if i % 2 == 0 {
                    unique_deposit()
                } else {
                    Op::Balance
                };
                tokio::spawn(async move { timed(&http, &base, 0, &owner, op, started).await })
            })
        })
        .collect()
}

/// Deposits through `app` (process 1) until it acknowledged five per
/// owner (bounded): it took the leases over. Returns how many it refused.
async fn take_over(
    http: &Client,
    app: &WalletApp,
    owners: &[String],
    started: Instant,
    requests: &mut Vec<Request>,
) -> usize {
    let give_up = Instant::now() + Duration::from_secs(20);
    let mut acked = BTreeMap::<&str, usize>::new();
    let mut refused = 0;
    while owners.iter().any(|o| acked.get(o.as_str()) < Some(&5)) {
        assert!(
            Instant::now() < give_up,
            "B took over within 20 s\n{}",
            app.log_tail()
        );
        for owner in owners {
            let deposit = timed(http, app.base(), 1, owner, unique_deposit(), started).await;
            if matches!(deposit.answer, Answer::Wrote { .. }) {
                *acked.entry(owner).or_default() += 1;
            } else {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            requests.push(deposit);
        }
    }
    refused
}

// ---------------------------------------------------------------------------
// (3) Postgres restarts mid-load

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_loses_no_acknowledged_write_and_gives_no_second_owner() {
    let postgres = ThrowawayPostgres::start_new();
    let url = postgres.url();
    let (config, schema) = fresh_schema(&url).await;
    let owners = owners_on_distinct_shards(&config, 8).await;
    let (owners_a, owners_b) = owners.split_at(4);
    config.pool().close().await;
    let lease = leased(SHARDS, TTL_MS, None);
    let a = WalletApp::spawn(WALLET_APP, &url, &schema, &lease).await;
    let b = WalletApp::spawn(WALLET_APP, &url, &schema, &lease).await;
    let http = http(Duration::from_secs(5));
    take(&http, &a, 0, owners_a).await;
    take(&http, &b, 1, owners_b).await;

    let bases = [a.base().to_owned(), b.base().to_owned()];
    let started = Instant::now();
    let load = Load::start(
        &http,
        CLIENTS,
        OPS_PER_CLIENT,
        &bases,
        &owners,
        &[],
        started,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // A crash-restart (a fraction of a second, leases survive it), then an
    // outage longer than the ttl (every lease expires at the database, and
    // both processes race for every shard when it is back).
    let mut outages = Vec::new();
    let mut postgres = Some(postgres);
    for outage in [Duration::ZERO, TTL + RENEW] {
        let began = started.elapsed();
        let mut cluster = postgres.take().unwrap();
        postgres = Some(
            tokio::task::spawn_blocking(move || {
                if outage.is_zero() {
                    cluster.restart();
                } else {
                    cluster.stop();
                    std::thread::sleep(outage);
                    cluster.start();
                }
                cluster
            })
            .await
            .unwrap(),
        );
        let restarted = started.elapsed();
        // Load until both processes served again, for a while.
        let give_up = Instant::now() + Duration::from_secs(30);
        while load.served_by(0, restarted) < 50 || load.served_by(1, restarted) < 50 {
            assert!(
                Instant::now() < give_up,
                "both processes serve again within 30 s of the restart: A {}, B {}\nA:\n{}\nB:\n{}",
                load.served_by(0, restarted),
                load.served_by(1, restarted),
                a.log_tail(),
                b.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        outages.push((began, restarted, started.elapsed()));
    }
    let requests = load.finish().await;
    let run_time = started.elapsed();
    drop((a, b));
    let config = store_config(&url, &schema).await;
    let stored = stored_deposits(&config, &owners).await;
    drop(postgres);

    let accounted = account(&requests, &stored);
    assert!(
        accounted.reads_bounded >= 50,
        "too few reads to check: {accounted:?}"
    );
    let served = |via, from, to| {
        requests
            .iter()
            .filter(|r| r.via == via && r.sent >= from && r.sent < to)
            .filter(|r| r.answer.status() == Some(StatusCode::OK))
            .count()
    };
    for (i, (began, restarted, resumed)) in outages.iter().copied().enumerate() {
        let until = outages.get(i + 1).map_or(run_time, |next| next.0);
        eprintln!(
            "Postgres outage {i}: from {began:?} to {restarted:?}, both serving again by \
             {resumed:?}; 200s after it: A {}, B {}",
            served(0, restarted, until),
            served(1, restarted, until),
        );
    }
    eprintln!(
        "Postgres restarts: {} requests in {run_time:?} ({:?}); {accounted:?}",
        requests.len(),
        statuses(&requests),
    );
}
