//! Database arbitration without ownership: several OS processes serve the
//! same entities through one Postgres schema, with no lease. Versions keep
//! writes safe (a second writer conflicts and retries on fresh state); these
//! tests check the other half of the guarantee, invariant 8 (no stale
//! answers): a balance read, a refused withdrawal, a stock query or a refused
//! reservation reflects every write acknowledged before it was sent, wherever
//! that write was served.
//!
//! Each process keeps its own live actor per id, so without confirming the
//! stream head before a non-writing reply, a process answers from the state
//! it last loaded. The workloads warm every process on every id first, then
//! spread writes and reads over all of them, so that staleness shows. The
//! same workloads on one process are the controls: one actor per id is
//! fresh by construction, so they pass whatever the runtime does about
//! confirming the head, and a failure there is the test's own.
//!
//! Each test also asserts that enough reads and rejections came after an
//! acknowledged write for an empty list of violations to mean something, and
//! checks the log: acknowledged writes at their versions, balances that add
//! up, no item oversold.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nexus_core::codec::{EventCodec, Json};
use nexus_core::{ActorSystem, Aggregate, Entities, EventStore, StreamId};
use nexus_examples::domain::wallet::{Wallet, WalletEvent};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use nexus_tests::history::{History, Outcome, Violation};
use nexus_tests::stock_item::{Restock, StockEvent, StockItem};
use nexus_tests::wallet_process::{Answer, Op, Request, WalletApp, timed};
use reqwest::{Client, StatusCode};
use serde_json::Value;

const PROCESSES: usize = 3;
const OWNERS: usize = 5;
const CLIENTS: usize = 24;
const OPS_PER_CLIENT: usize = 60;
/// The whole client phase must end within this, or the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(40);

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh, migrated schema of its own.
async fn fresh_schema() -> (PgStoreConfig, String) {
    let schema = format!("nexus_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&database_url())
        .await
        .expect("DATABASE_URL");
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

/// How many violations of each kind, and the first ones, one a line, for a
/// failure message.
fn listed<T: std::fmt::Debug>(violations: &[Violation<T>]) -> String {
    let stale = |kind| violations.iter().filter(|v| v.kind == kind).count();
    let first: Vec<String> = violations
        .iter()
        .take(10)
        .map(ToString::to_string)
        .collect();
    format!(
        " {} reads, {} rejections; the first:\n  {}",
        stale("read"),
        stale("rejection"),
        first.join("\n  ")
    )
}

/// Each stream's events, decoded, in version order (the first is version 1).
async fn streams<E>(
    config: &PgStoreConfig,
    category: &str,
    ids: impl IntoIterator<Item = String>,
) -> BTreeMap<String, Vec<E>>
where
    E: nexus_core::DomainEvent + serde::de::DeserializeOwned,
{
    let store = PgEventStore::new(config);
    let codec = EventCodec::<E>::new(Json);
    let mut streams = BTreeMap::new();
    for id in ids {
        let events = store
            .read_stream(&StreamId::for_entity(category, &id), 1)
            .await
            .unwrap();
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        assert_eq!(
            versions,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "{id}: versions are gapless"
        );
        let decoded = events.iter().map(|e| codec.decode(e).unwrap()).collect();
        streams.insert(id, decoded);
    }
    streams
}

/// A stream version as an index into a list of per-version values.
fn index(version: u64) -> usize {
    usize::try_from(version).expect("versions fit in usize")
}

/// A run's history and how many answers that did not write it holds.
struct Checked<T> {
    history: History<T>,
    reads: usize,
    rejections: usize,
}

impl<T> Default for Checked<T> {
    fn default() -> Self {
        Self {
            history: History::default(),
            reads: 0,
            rejections: 0,
        }
    }
}

impl<T: Ord + Copy + std::fmt::Debug> Checked<T> {
    /// Asserts that enough reads and rejections were checked for the check
    /// to mean something, then that none was stale.
    fn assert_no_stale_answers(&self, what: &str, reads: usize, rejections: usize, took: Duration) {
        let bounded = self.history.reads_bounded();
        assert!(
            self.reads >= reads && self.rejections >= rejections && bounded >= reads,
            "{what}: too few answers to check: {} reads, {} rejections, {bounded} after a write",
            self.reads,
            self.rejections,
        );
        let violations = self.history.check();
        eprintln!(
            "{what}: {} operations in {took:?}; {} reads and {} rejections checked, \
             {bounded} of them sent after an acknowledged write; {} stale",
            self.history.operations().len(),
            self.reads,
            self.rejections,
            violations.len()
        );
        assert!(
            violations.is_empty(),
            "{what}: {} of {} reads and rejections were stale:{}",
            violations.len(),
            self.reads + self.rejections,
            listed(&violations)
        );
    }
}

// ---------------------------------------------------------------------------
// (a) the wallet app, three processes, one schema

/// Reads every owner's balance through every process: each now holds a live
/// actor at version 0, which it keeps (passivation is two minutes away).
async fn warm(http: &Client, bases: &[String], owners: &[String]) {
    for base in bases {
        for owner in owners {
            let response = http
                .get(format!("{base}/wallet/balance"))
                .header("authorization", format!("Bearer {owner}-token"))
                .send()
                .await
                .expect("balance");
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["version"], 0, "{body}");
        }
    }
}

/// The clients' requests, each to a random owner through a random process;
/// times are offsets from the returned start.
async fn run_clients(http: &Client, bases: &[String], owners: &[String]) -> Vec<Request> {
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, bases, owners) = (http.clone(), bases.to_vec(), owners.to_vec());
        clients.push(tokio::spawn(async move {
            let mut requests = Vec::new();
            for _ in 0..OPS_PER_CLIENT {
                let owner = &owners[fastrand::usize(..owners.len())];
                let via = fastrand::usize(..bases.len());
                let request = timed(&http, &bases[via], via, owner, Op::random(), started).await;
                requests.push(request);
            }
            requests
        }));
    }
    let mut requests = Vec::new();
    for client in clients {
        let left = RUN_LIMIT.saturating_sub(started.elapsed());
        let done = tokio::time::timeout(left, client)
            .await
            .expect("the clients finish within the run limit")
            .expect("client");
        requests.extend(done);
    }
    requests
}

/// The balance after each version of each owner's stream (index 0: none).
fn balances_after(stored: &BTreeMap<String, Vec<WalletEvent>>) -> BTreeMap<String, Vec<i64>> {
    stored
        .iter()
        .map(|(owner, events)| {
            let mut balance = 0;
            let mut after = vec![0];
            for event in events {
                balance += match event {
                    WalletEvent::Deposited { amount } => *amount,
                    WalletEvent::Withdrawn { amount } => -*amount,
                };
                after.push(balance);
            }
            (owner.clone(), after)
        })
        .collect()
}

/// The requests as a history, checking on the way that every acknowledged
/// write is in the log at its version and every read's balance is the
/// log's at its version. A refusal does not say its version: it is placed
/// at the latest version whose balance it reports.
fn wallet_history(
    requests: &[Request],
    balances: &BTreeMap<String, Vec<i64>>,
) -> Checked<Duration> {
    let mut checked = Checked::default();
    let mut invented = Vec::new();
    for request in requests {
        let owner = request.owner.as_str();
        let after = &balances[owner];
        let outcome = match request.answer {
            Answer::Wrote { delta, version } => {
                let stored = after
                    .get(index(version))
                    .map(|b| b - after[index(version) - 1]);
                assert_eq!(
                    stored,
                    Some(delta),
                    "{owner}: version {version} holds the acknowledged write"
                );
                Outcome::Wrote { version }
            }
            Answer::Read { balance, version } => {
                checked.reads += 1;
                assert_eq!(
                    after.get(index(version)),
                    Some(&balance),
                    "{owner}: a read's balance is the balance at its version"
                );
                Outcome::Read { version }
            }
            Answer::Refused { balance } => {
                checked.rejections += 1;
                if let Some(version) = after.iter().rposition(|b| *b == balance) {
                    Outcome::Rejected {
                        version: version as u64,
                    }
                } else {
                    invented.push(format!("{owner}: refused on balance {balance}"));
                    Outcome::Ambiguous
                }
            }
            Answer::AmbiguousWrite { .. } | Answer::Unanswered { .. } => Outcome::Ambiguous,
        };
        checked
            .history
            .record(owner, request.sent, request.answered, outcome);
    }
    assert_eq!(
        invented,
        Vec::<String>::new(),
        "refusals on balances the log never had"
    );
    checked
}

/// Each owner's log holds the acknowledged writes and at most the ambiguous
/// ones besides; without ambiguous ones, the balance is the acknowledged
/// deposits minus the acknowledged withdrawals.
fn check_wallet_totals(requests: &[Request], balances: &BTreeMap<String, Vec<i64>>) {
    for (owner, after) in balances {
        let mine = || requests.iter().filter(|r| r.owner == *owner);
        let acked: Vec<i64> = mine()
            .filter_map(|r| match r.answer {
                Answer::Wrote { delta, .. } => Some(delta),
                _ => None,
            })
            .collect();
        let unknown = mine()
            .filter(|r| matches!(r.answer, Answer::AmbiguousWrite { .. }))
            .count();
        let events = after.len() - 1;
        assert!(
            acked.len() <= events && events <= acked.len() + unknown,
            "{owner}: {events} events for {} acknowledged and {unknown} ambiguous writes",
            acked.len()
        );
        if unknown == 0 {
            assert_eq!(
                after.last().copied(),
                Some(acked.iter().sum()),
                "{owner}: the balance is the acknowledged deposits minus the acknowledged withdrawals"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_processes_without_ownership_give_no_stale_answers() {
    wallet_run(PROCESSES, "wallet").await;
}

/// The control: one process owns every wallet by being alone, so the
/// checks hold today; a failure here is in the test, not the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_wallet_process_gives_no_stale_answers() {
    wallet_run(1, "wallet, one process").await;
}

/// The wallet workload on `processes` wallet-app processes.
async fn wallet_run(processes: usize, what: &str) {
    let url = database_url();
    let (config, schema) = fresh_schema().await;
    let mut apps = Vec::new();
    for _ in 0..processes {
        apps.push(WalletApp::spawn(env!("CARGO_BIN_EXE_wallet_app"), &url, &schema, &[]).await);
    }
    let bases: Vec<String> = apps.iter().map(|app| app.base().to_owned()).collect();
    let owners: Vec<String> = (0..OWNERS).map(|o| format!("owner{o}")).collect();
    let http = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    warm(&http, &bases, &owners).await;
    let started = Instant::now();
    let requests = run_clients(&http, &bases, &owners).await;
    let run_time = started.elapsed();
    drop(apps);
    let stored = streams::<WalletEvent>(&config, <Wallet as Aggregate>::NAME, owners).await;
    drop_schema(&config, &schema).await;

    let balances = balances_after(&stored);
    let checked = wallet_history(&requests, &balances);
    check_wallet_totals(&requests, &balances);
    checked.assert_no_stale_answers(what, 200, 50, run_time);
}

// ---------------------------------------------------------------------------
// (b) reserve/reject: `stock_hammer` processes on one schema

const ITEMS: usize = 6;
const STOCK: u64 = 600;
const HAMMER_CALLERS: usize = 8;
const HAMMER_OPS: usize = 60;

/// One operation as `stock_hammer` prints it (see its docs).
#[derive(Debug, serde::Deserialize)]
struct StockOp {
    item: String,
    sent: u64,
    answered: u64,
    kind: String,
    qty: Option<u64>,
    available: Option<u64>,
    version: Option<u64>,
}

fn now_ns() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_nanos()).unwrap()
}

/// Restocks every item once, through an entity of this process.
async fn restock(config: &PgStoreConfig, ids: &[String]) {
    let system = ActorSystem::new();
    let stock = Entities::<StockItem>::builder(&system)
        .event_sourced(Arc::new(PgEventStore::new(config)), EventCodec::new(Json))
        .build()
        .unwrap();
    for id in ids {
        let view = stock.of(id).ask(Restock { qty: STOCK }).await.unwrap();
        assert_eq!((view.available, view.version), (STOCK, 1));
    }
    system.shutdown(Duration::from_secs(5)).await;
}

/// Runs the processes, each warmed up on every item, all starting their
/// callers at `start_at` (wall-clock ns), and merges what they report. Each
/// item's small reservations go through one process, its queries and large
/// reservations through all (see `stock_hammer`'s docs).
async fn run_hammers(url: &str, schema: &str, start_at: u64, processes: usize) -> Vec<StockOp> {
    // As many callers in all, however many processes.
    let callers = HAMMER_CALLERS * PROCESSES / processes;
    let children: Vec<_> = (0..processes)
        .map(|process| {
            std::process::Command::new(env!("CARGO_BIN_EXE_stock_hammer"))
                .args([url, schema])
                .args([ITEMS, callers, HAMMER_OPS].map(|n| n.to_string()))
                .arg(start_at.to_string())
                .args([process, processes].map(|n| n.to_string()))
                .arg(STOCK.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start stock_hammer")
        })
        .collect();
    let mut ops = Vec::new();
    for child in children {
        let output = tokio::time::timeout(
            RUN_LIMIT,
            tokio::task::spawn_blocking(move || child.wait_with_output()),
        )
        .await
        .expect("stock_hammer finishes within the run limit")
        .unwrap()
        .expect("stock_hammer ran");
        assert!(output.status.success(), "stock_hammer failed: {output:?}");
        let report: Value =
            serde_json::from_slice(&output.stdout).expect("stock_hammer prints JSON");
        ops.extend(
            serde_json::from_value::<Vec<StockOp>>(report["ops"].clone()).expect("operations"),
        );
    }
    ops
}

/// The operations as a history with times as offsets from `start_at`,
/// checking on the way that every acknowledged reservation is in the log at
/// its version.
fn stock_history(
    ops: &[StockOp],
    stored: &BTreeMap<String, Vec<StockEvent>>,
    start_at: u64,
) -> Checked<Duration> {
    let since_start = |ns: u64| Duration::from_nanos(ns.saturating_sub(start_at));
    let mut checked = Checked::default();
    for op in ops {
        let version = || op.version.expect("a version");
        let outcome = match op.kind.as_str() {
            "reserved" => {
                let (version, qty) = (version(), op.qty.expect("a quantity"));
                assert_eq!(
                    stored[&op.item].get(index(version) - 1),
                    Some(&StockEvent::Reserved { qty }),
                    "{}: version {version} holds the acknowledged reservation",
                    op.item
                );
                Outcome::Wrote { version }
            }
            "rejected" => {
                checked.rejections += 1;
                Outcome::Rejected { version: version() }
            }
            "read" => {
                checked.reads += 1;
                Outcome::Read { version: version() }
            }
            _ => Outcome::Ambiguous,
        };
        checked.history.record(
            op.item.clone(),
            since_start(op.sent),
            since_start(op.answered),
            outcome,
        );
    }
    checked
}

/// The quantity rule, beside the version rule: a rejection or query shows
/// at most what every reservation acknowledged before it was sent left
/// available (with one restock first, the quantity only goes down).
fn quantity_violations(ops: &[StockOp], start_at: u64) -> Vec<String> {
    let mut left_after: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.kind == "reserved") {
        let available = op.available.expect("a quantity");
        left_after
            .entry(&op.item)
            .or_default()
            .push((op.answered, available));
    }
    for list in left_after.values_mut() {
        list.sort_unstable();
    }
    let mut violations = Vec::new();
    for op in ops
        .iter()
        .filter(|op| op.kind == "rejected" || op.kind == "read")
    {
        let available = op.available.expect("a quantity");
        let implied = left_after.get(op.item.as_str()).and_then(|list| {
            let before = list.partition_point(|(answered, _)| *answered < op.sent);
            list[..before].iter().map(|(_, left)| *left).min()
        });
        if let Some(implied) = implied.filter(|implied| available > *implied) {
            violations.push(format!(
                "{}: a {} sent at {:?} shows {available} available, \
                 but a reservation acknowledged before it was sent left {implied}",
                op.item,
                op.kind,
                Duration::from_nanos(op.sent.saturating_sub(start_at)),
            ));
        }
    }
    violations
}

/// No item is oversold, and the log holds the acknowledged reservations
/// (exactly, when no outcome was ambiguous).
fn check_stock_totals(ops: &[StockOp], stored: &BTreeMap<String, Vec<StockEvent>>) {
    for (item, events) in stored {
        let total: u64 = events
            .iter()
            .filter_map(|e| match e {
                StockEvent::Reserved { qty } => Some(*qty),
                StockEvent::Restocked { .. } => None,
            })
            .sum();
        assert!(total <= STOCK, "{item}: {total} reserved of {STOCK}");
        let mine = || ops.iter().filter(|op| op.item == *item);
        let acked: u64 = mine()
            .filter(|op| op.kind == "reserved")
            .filter_map(|op| op.qty)
            .sum();
        if mine().any(|op| op.kind == "ambiguous") {
            assert!(
                total >= acked,
                "{item}: an acknowledged reservation is missing"
            );
        } else {
            assert_eq!(
                total, acked,
                "{item}: the log holds exactly the acknowledged reservations"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_processes_without_ownership_give_no_stale_rejections() {
    stock_run(PROCESSES, "stock").await;
}

/// The control: one process holds the only actor of each item, so the
/// checks hold today; a failure here is in the test, not the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stock_process_gives_no_stale_rejections() {
    stock_run(1, "stock, one process").await;
}

/// The reserve/reject workload on `processes` `stock_hammer` processes.
async fn stock_run(processes: usize, what: &str) {
    let url = database_url();
    let (config, schema) = fresh_schema().await;
    let ids: Vec<String> = (0..ITEMS).map(|i| format!("i{i}")).collect();
    restock(&config, &ids).await;
    // Time for every process to start and warm up before they all go.
    let start_at = now_ns() + 2_000_000_000;
    let started = Instant::now();
    let ops = run_hammers(&url, &schema, start_at, processes).await;
    let run_time = started.elapsed();
    let stored = streams::<StockEvent>(&config, <StockItem as Aggregate>::NAME, ids).await;
    drop_schema(&config, &schema).await;

    check_stock_totals(&ops, &stored);
    let checked = stock_history(&ops, &stored, start_at);
    let too_many = quantity_violations(&ops, start_at);
    eprintln!(
        "{what}: {} answers showed more than an earlier acknowledged reservation left",
        too_many.len()
    );
    checked.assert_no_stale_answers(what, 150, 50, run_time);
    assert!(
        too_many.is_empty(),
        "{what}: {} answers showed more than was left:\n  {}",
        too_many.len(),
        too_many[..too_many.len().min(10)].join("\n  ")
    );
}
