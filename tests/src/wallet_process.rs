//! Wallet-app OS processes for multi-process tests: starting one on a
//! schema, signalling it, and sending it the requests the tests count.
//!
//! Cargo gives a binary's path only to the tests of its crate
//! (`env!("CARGO_BIN_EXE_wallet_app")`), so callers pass it in.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How many of a process's last log lines are kept for failure messages.
const LOG_LINES: usize = 200;

/// One running `wallet_app` process, killed on drop.
pub struct WalletApp {
    child: tokio::process::Child,
    base: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl WalletApp {
    /// Starts `program` (the `wallet_app` binary) on a free loopback port
    /// with `--database-url url --schema schema --pool-size 8` and `extra`
    /// arguments, and returns once it listens (within 30 s).
    ///
    /// # Panics
    ///
    /// When the program cannot start, or exits or stays silent before it
    /// listens.
    pub async fn spawn(program: &str, url: &str, schema: &str, extra: &[String]) -> Self {
        let mut child = tokio::process::Command::new(program)
            .args(["--listen", "127.0.0.1:0", "--schema", schema])
            .args(["--database-url", url, "--pool-size", "8"])
            .args(extra)
            .env_remove("DATABASE_URL")
            .env_remove("WALLET_ADMIN_TOKEN")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start wallet_app");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let keep = {
            let log = Arc::clone(&log);
            move |line: &str| {
                let mut log = log.lock().unwrap();
                if log.len() == LOG_LINES {
                    log.pop_front();
                }
                log.push_back(line.to_owned());
            }
        };
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let listening = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                keep(&line);
                if let Some(rest) = line.split("addr=").nth(1) {
                    return Some(rest.split_whitespace().next().unwrap().to_owned());
                }
            }
            None
        })
        .await;
        let tail = || log.lock().unwrap().iter().cloned().collect::<Vec<_>>();
        let tail = tail().join("\n");
        let addr = match listening {
            Ok(Some(addr)) => addr,
            Ok(None) => panic!("wallet_app exited before listening:\n{tail}"),
            Err(elapsed) => panic!("wallet_app did not listen ({elapsed}):\n{tail}"),
        };
        // Keep draining the log so the process never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                keep(&line);
            }
        });
        Self {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process runs")
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`, …) with `kill(1)`.
    ///
    /// # Panics
    ///
    /// When `kill` fails.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}: {status}", self.pid());
    }

    /// The process's last log lines, for a failure message.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// The arguments that make a process own its entities through a lease of
/// `shards` shards and `ttl_ms`, its lease connections going to `lease_url`
/// (the database URL when `None`).
pub fn leased(shards: u32, ttl_ms: u64, lease_url: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "--lease-shards".to_owned(),
        shards.to_string(),
        "--lease-ttl-ms".to_owned(),
        ttl_ms.to_string(),
    ];
    if let Some(url) = lease_url {
        args.extend(["--lease-database-url".to_owned(), url.to_owned()]);
    }
    args
}

/// One request a test sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `POST /wallet/deposit` of this many cents.
    Deposit(i64),
    /// `POST /wallet/withdraw` of this many cents.
    Withdraw(i64),
    /// `GET /wallet/balance`.
    Balance,
}

impl Op {
    /// 40 % deposits of 1..=100 cents, 30 % withdrawals of 1..=200 cents,
    /// 30 % balance reads.
    pub fn random() -> Self {
        match fastrand::u8(0..10) {
            0..=3 => Self::Deposit(fastrand::i64(1..=100)),
            4..=6 => Self::Withdraw(fastrand::i64(1..=200)),
            _ => Self::Balance,
        }
    }

    /// The change to the balance if the request is a write that commits.
    pub fn delta(self) -> Option<i64> {
        match self {
            Self::Deposit(amount) => Some(amount),
            Self::Withdraw(amount) => Some(-amount),
            Self::Balance => None,
        }
    }
}

/// What one request was and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A 200 deposit (`+amount`) or withdrawal (`-amount`) at `version`.
    Wrote {
        /// The change to the balance.
        delta: i64,
        /// The stream version the write produced.
        version: u64,
    },
    /// A 200 balance read.
    Read {
        /// The balance.
        balance: i64,
        /// The stream version it reflects.
        version: u64,
    },
    /// A 409 withdrawal refused on `balance`.
    Refused {
        /// The balance it was refused on.
        balance: i64,
    },
    /// A write that may or may not have committed: a 503 (`status`), or no
    /// answer at all (`None`: a lost connection, a timeout).
    AmbiguousWrite {
        /// The HTTP status, if one came.
        status: Option<StatusCode>,
    },
    /// A read that told nothing: a 503, or no answer.
    Unanswered {
        /// The HTTP status, if one came.
        status: Option<StatusCode>,
    },
}

impl Answer {
    /// The HTTP status of the answer, `None` when none came.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Wrote { .. } | Self::Read { .. } => Some(StatusCode::OK),
            Self::Refused { .. } => Some(StatusCode::CONFLICT),
            Self::AmbiguousWrite { status } | Self::Unanswered { status } => *status,
        }
    }
}

/// One request, its times as offsets from the start of the run.
#[derive(Clone, Debug)]
pub struct Request {
    /// The wallet's owner.
    pub owner: String,
    /// Which process it went to (an index into the caller's list).
    pub via: usize,
    /// What it asked.
    pub op: Op,
    /// When it was sent.
    pub sent: Duration,
    /// When its answer (or its failure) came.
    pub answered: Duration,
    /// How it ended.
    pub answer: Answer,
}

/// Sends `op` for `owner` to `via`'s `base`, timed from `started`.
pub async fn timed(
    http: &Client,
    base: &str,
    via: usize,
    owner: &str,
    op: Op,
    started: Instant,
) -> Request {
    let sent = started.elapsed();
    let answer = send(http, base, owner, op).await;
    Request {
        owner: owner.to_owned(),
        via,
        op,
        sent,
        answered: started.elapsed(),
        answer,
    }
}

/// Sends `op` for `owner` to `base`.
///
/// # Panics
///
/// On an answer other than 200, a 409 refused withdrawal or a 503.
pub async fn send(http: &Client, base: &str, owner: &str, op: Op) -> Answer {
    let token = format!("Bearer {owner}-token");
    let request = match op {
        Op::Deposit(amount) => http
            .post(format!("{base}/wallet/deposit"))
            .json(&json!({ "amountCents": amount })),
        Op::Withdraw(amount) => http
            .post(format!("{base}/wallet/withdraw"))
            .json(&json!({ "amountCents": amount })),
        Op::Balance => http.get(format!("{base}/wallet/balance")),
    };
    let delta = op.delta();
    let unknown = |status| {
        if delta.is_some() {
            Answer::AmbiguousWrite { status }
        } else {
            Answer::Unanswered { status }
        }
    };
    let Ok(response) = request.header("authorization", token).send().await else {
        return unknown(None);
    };
    let status = response.status();
    let Ok(body) = response.json::<Value>().await else {
        return unknown(Some(status));
    };
    let cents = |field: &str| body[field].as_i64().unwrap_or_else(|| panic!("{body}"));
    let version = || body["version"].as_u64().unwrap_or_else(|| panic!("{body}"));
    match (status, delta) {
        (StatusCode::OK, Some(delta)) => Answer::Wrote {
            delta,
            version: version(),
        },
        (StatusCode::OK, None) => Answer::Read {
            balance: cents("balanceCents"),
            version: version(),
        },
        (StatusCode::CONFLICT, Some(delta)) if delta < 0 => {
            assert_eq!(body["error"], "insufficient_funds", "{body}");
            Answer::Refused {
                balance: cents("balanceCents"),
            }
        }
        (StatusCode::SERVICE_UNAVAILABLE, _) => unknown(Some(status)),
        _ => panic!("unexpected answer {status}: {body}"),
    }
}

/// Waits until `child` (already sent SIGKILL) is gone: its exit status, or,
/// when tokio never reports one (the SIGCHLD of a child reaped while another
/// test's runtime shut down can be missed, and `wait` then hangs), its
/// `/proc` entry gone or a zombie. Bounded by 10 s.
///
/// # Panics
///
/// When the process still runs after 10 s.
pub async fn wait_killed(child: &mut tokio::process::Child) {
    let pid = child.id();
    if tokio::time::timeout(Duration::from_secs(2), child.wait())
        .await
        .is_ok()
    {
        return;
    }
    let Some(pid) = pid else { return };
    let give_up = Instant::now() + Duration::from_secs(8);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if status.is_empty() || status.contains("State:\tZ") {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "process {pid} still runs after SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
