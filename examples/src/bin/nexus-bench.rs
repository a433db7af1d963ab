//! `nexus-bench`: runs the benchmark workloads and prints one JSON object
//! per line, each with a `"workload"` field.
//!
//! ```text
//! cargo run --release -p nexus-examples --bin nexus-bench -- [--database-url URL] [--seconds N] [--only WORKLOAD]... [--plot FILE.svg]
//! ```
//!
//! The in-memory workloads always run; the Postgres workloads run after
//! them when a database URL is given. `mem_allocs` counts allocations
//! only in a build with `--features count-allocs`. `--only` (repeatable)
//! runs just the workloads it names, such as `--only pg_rehydrate_10k`.
//! `--plot` draws the latency CDF of every workload that times its
//! requests.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use nexus_examples::bench::{self, Budget, Selection};
use nexus_examples::plot;

/// Counts allocations for `mem_allocs`. Only with feature `count-allocs`:
/// its atomic additions on every allocation add about 0.2 µs to an ask.
#[cfg(feature = "count-allocs")]
#[global_allocator]
static ALLOCATOR: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

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
    /// Run only this workload (by its `"workload"` name); repeat it for
    /// several. Every workload runs without it.
    #[arg(long = "only", value_name = "WORKLOAD")]
    only: Vec<String>,
    /// Also draw the latency CDFs of the workloads that time requests
    /// into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
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
    let only = Selection::only(args.only);
    if args.plot.is_some() {
        bench::latencies::keep_from_now();
    }
    bench::memory::run(budget, &only).await;
    if let Some(database_url) = args.database_url {
        if let Err(error) = bench::postgres::run(&database_url, budget, &only).await {
            eprintln!("postgres workloads: {error}");
            std::process::exit(1);
        }
        if let Err(error) = bench::projection::run(&database_url, budget, &only).await {
            eprintln!("projection workloads: {error}");
            std::process::exit(1);
        }
        if let Err(error) = bench::cluster::run(&database_url, budget, &only).await {
            eprintln!("cluster workloads: {error}");
            std::process::exit(1);
        }
        if let Err(error) = bench::matrix::run(&database_url, budget, &only).await {
            eprintln!("matrix workload: {error}");
            std::process::exit(1);
        }
    }
    if let Some(path) = args.plot {
        let title = "nexus-bench: latency per workload";
        if let Err(error) = plot::write_latency_cdfs(&path, title, &bench::latencies::take()) {
            eprintln!("--plot: {error}");
            std::process::exit(1);
        }
    }
}
