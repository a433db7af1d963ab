//! `nexus-bench`: runs the benchmark workloads and prints one JSON object
//! per line, each with a `"workload"` field.
//!
//! ```text
//! cargo run --release -p nexus-examples --bin nexus-bench -- [--database-url URL] [--seconds N]
//! ```
//!
//! The in-memory workloads always run; the Postgres workloads run after
//! them when a database URL is given.

use std::time::Duration;

use clap::Parser;
use nexus_examples::bench::{self, Budget};

/// Benchmarks of the Nexus runtime.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Also run the Postgres workloads against this database.
    #[arg(long)]
    database_url: Option<String>,
    /// How long each workload runs, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let budget = Budget {
        per_workload: Duration::from_secs(args.seconds.max(1)),
    };
    bench::memory::run(budget).await;
    if let Some(database_url) = args.database_url {
        if let Err(error) = bench::postgres::run(&database_url, budget).await {
            eprintln!("postgres workloads: {error}");
            std::process::exit(1);
        }
        if let Err(error) = bench::projection::run(&database_url, budget).await {
            eprintln!("projection workloads: {error}");
            std::process::exit(1);
        }
        if let Err(error) = bench::cluster::run(&database_url, budget).await {
            eprintln!("cluster workloads: {error}");
            std::process::exit(1);
        }
    }
}
