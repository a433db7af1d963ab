//! Load of unique deposits through wallet-app processes, and the check of
//! the log against it: every event names the one request that wrote it, so
//! an acknowledged write found twice or not at all, an event no request can
//! account for, or a read that missed an acknowledged write all show.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexus_core::{Aggregate, EventStore, StreamId};
use nexus_examples::domain::wallet::{Wallet, WalletEvent};
use nexus_examples::domain::wallet_format;
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use reqwest::{Client, StatusCode};

use crate::history::{History, Outcome};
use crate::wallet_process::{Answer, Op, Request, timed};

/// Unique deposit amounts, so that every event names its request.
static NEXT_AMOUNT: AtomicI64 = AtomicI64::new(1);

/// A deposit of an amount no other request of this test process has.
#[must_use]
pub fn unique_deposit() -> Op {
    Op::Deposit(NEXT_AMOUNT.fetch_add(1, Ordering::Relaxed))
}

/// Clients sending deposits (60 %) and balance reads to random owners
/// through random processes until stopped, each pausing a little after
/// every answer (longer after a failure) so that the count stays bounded.
/// The deposits of `watched` owners all go through the last process, so
/// that the others only read them: a process that kept answering from an
/// old state would show it there, with no write of its own to fence it.
pub struct Load {
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients of at most `ops_per_client` requests each
    /// to `owners` through `bases`, timed from `started`; the deposits of
    /// `watched` owners all go through the last of `bases`.
    #[must_use]
    pub fn start(
        http: &Client,
        clients: usize,
        ops_per_client: usize,
        bases: &[String],
        owners: &[String],
        watched: &[String],
        started: Instant,
    ) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|_| {
                let (http, bases, owners) = (http.clone(), bases.to_vec(), owners.to_vec());
                let watched = watched.to_vec();
                let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
                tokio::spawn(async move {
                    for _ in 0..ops_per_client {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let owner = &owners[fastrand::usize(..owners.len())];
                        let (op, via) = if fastrand::u8(0..10) < 6 {
                            let via = if watched.contains(owner) {
                                bases.len() - 1
                            } else {
                                fastrand::usize(..bases.len())
                            };
                            (unique_deposit(), via)
                        } else {
                            (Op::Balance, fastrand::usize(..bases.len()))
                        };
                        let request = timed(&http, &bases[via], via, owner, op, started).await;
                        let ok = request.answer.status() == Some(StatusCode::OK);
                        requests.lock().unwrap().push(request);
                        let pause = if ok { 5 } else { 20 };
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                })
            })
            .collect();
        Self {
            requests,
            stop,
            clients,
        }
    }

    /// 200s answered by process `via`, sent at or after `since`.
    pub fn served_by(&self, via: usize, since: Duration) -> usize {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|r| r.via == via && r.sent >= since)
            .filter(|r| r.answer.status() == Some(StatusCode::OK))
            .count()
    }

    /// Waits until every client sent all its requests (bounded by
    /// `limit`, then stops them), and returns every request they sent.
    ///
    /// # Panics
    ///
    /// When a client panicked.
    pub async fn complete(self, limit: Duration) -> Vec<Request> {
        let give_up = Instant::now() + limit;
        while Instant::now() < give_up && self.clients.iter().any(|c| !c.is_finished()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.finish().await
    }

    /// Stops the clients and returns every request they sent.
    ///
    /// # Panics
    ///
    /// When a client does not stop within 30 s or panicked.
    pub async fn finish(self) -> Vec<Request> {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            tokio::time::timeout(Duration::from_secs(30), client)
                .await
                .expect("the clients stop within 30 s")
                .expect("client");
        }
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

/// Each owner's deposits in the store, in version order, checked gapless.
///
/// # Panics
///
/// When a stream has a gap, a withdrawal, or cannot be read.
pub async fn stored_deposits(
    config: &PgStoreConfig,
    owners: &[String],
) -> BTreeMap<String, Vec<i64>> {
    let store = PgEventStore::new(config);
    let codec = wallet_format::codec();
    let mut stored = BTreeMap::new();
    for owner in owners {
        let stream = StreamId::for_entity(<Wallet as Aggregate>::NAME, owner);
        let events = store.read_stream(&stream, 1).await.unwrap();
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        assert_eq!(
            versions,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "{owner}: versions are gapless"
        );
        let amounts = events
            .iter()
            .map(|e| match codec.decode(e).unwrap() {
                WalletEvent::Deposited { amount } => amount,
                WalletEvent::Withdrawn { amount } => panic!("{owner}: a withdrawal of {amount}"),
            })
            .collect();
        stored.insert(owner.clone(), amounts);
    }
    stored
}

/// What the log says about the requests.
#[derive(Debug, Default)]
pub struct Accounted {
    /// Acknowledged deposits, each found once at its version.
    pub acked: usize,
    /// Deposits answered 503 or not at all that the log holds.
    pub ambiguous_stored: usize,
    /// Deposits answered 503 or not at all that the log does not hold.
    pub ambiguous_absent: usize,
    /// Reads checked against the history.
    pub reads: usize,
    /// How many of them came after an acknowledged write of their owner.
    pub reads_bounded: usize,
}

/// Checks the log against the requests: every acknowledged deposit is in
/// it exactly once at its version, every event is an acknowledged or an
/// ambiguous deposit of that owner, each read's balance is the log's at its
/// version, and no read missed a write acknowledged before it was sent.
///
/// # Panics
///
/// On the first request or event that does not add up.
pub fn account(requests: &[Request], stored: &BTreeMap<String, Vec<i64>>) -> Accounted {
    let mut accounted = Accounted::default();
    let mut history = History::<Duration>::new();
    for (owner, amounts) in stored {
        let distinct: HashSet<i64> = amounts.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            amounts.len(),
            "{owner}: a deposit was stored twice: {amounts:?}"
        );
        let mine = || requests.iter().filter(|r| r.owner == *owner);
        let mut acked = HashSet::new();
        let mut ambiguous = HashSet::new();
        for request in mine() {
            match (&request.answer, request.op) {
                (Answer::Wrote { delta, version }, _) => {
                    let index = usize::try_from(*version).unwrap() - 1;
                    assert_eq!(
                        amounts.get(index),
                        Some(delta),
                        "{owner}: version {version} holds the acknowledged deposit of {delta}"
                    );
                    acked.insert(*delta);
                }
                (Answer::AmbiguousWrite { .. }, Op::Deposit(amount)) => {
                    ambiguous.insert(amount);
                }
                (Answer::Read { balance, version }, _) => {
                    let upto = usize::try_from(*version).unwrap();
                    assert_eq!(
                        amounts.get(..upto).map(|a| a.iter().sum::<i64>()),
                        Some(*balance),
                        "{owner}: a read's balance is the log's at version {version}"
                    );
                }
                _ => {}
            }
            let outcome = match request.answer {
                Answer::Wrote { version, .. } => Outcome::Wrote { version },
                Answer::Read { version, .. } => Outcome::Read { version },
                _ => Outcome::Ambiguous,
            };
            history.record(owner.as_str(), request.sent, request.answered, outcome);
        }
        let unaccounted: Vec<i64> = amounts
            .iter()
            .filter(|a| !acked.contains(a) && !ambiguous.contains(a))
            .copied()
            .collect();
        assert_eq!(
            unaccounted,
            Vec::<i64>::new(),
            "{owner}: deposits in the log that no request can account for"
        );
        let ambiguous_stored = ambiguous.iter().filter(|a| distinct.contains(a)).count();
        accounted.acked += acked.len();
        accounted.ambiguous_stored += ambiguous_stored;
        accounted.ambiguous_absent += ambiguous.len() - ambiguous_stored;
        let total: i64 = amounts.iter().sum();
        let acked_total: i64 = acked.iter().sum();
        let found: i64 = ambiguous.iter().filter(|a| distinct.contains(a)).sum();
        assert_eq!(
            total,
            acked_total + found,
            "{owner}: the balance is the acknowledged deposits plus the ambiguous ones stored"
        );
    }
    let stale = history.check();
    assert!(
        stale.is_empty(),
        "{} stale reads, the first: {}",
        stale.len(),
        stale
            .iter()
            .take(5)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    accounted.reads = history.reads_checked();
    accounted.reads_bounded = history.reads_bounded();
    accounted
}

/// How many requests of `requests` ended with each status (`None`: none).
pub fn statuses<'a>(requests: impl IntoIterator<Item = &'a Request>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        let status = request
            .answer
            .status()
            .map_or_else(|| "no answer".to_owned(), |s| s.as_u16().to_string());
        *counts.entry(status).or_default() += 1;
    }
    counts
}
