//! The `seat-bakeoff` program: both designs on one store, one report each.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use nexus_core::EventStore;
use nexus_core::store::memory::InMemoryEventStore;
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use sqlx::postgres::PgPoolOptions;

use super::actor::{count_from_store, run_buyers};
use super::optimistic::{Attempt, MemorySeats, PgSeats, SeatTable, buy};
use super::report::{DesignReport, quantile_ms, table};
use super::workload::{Workload, WorkloadError};

/// `seat-bakeoff [--database-url URL] [--buyers 200] [--seats 50] [--hot-seats 10] [--hot-share 0.8] [--seed N]`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "seat-bakeoff",
    about = "Optimistic version column against one actor per seat"
)]
pub struct Args {
    /// Postgres to run both designs on; in memory without one.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Buyers, one reservation each.
    #[arg(long, default_value_t = 200)]
    pub buyers: usize,
    /// Seats on sale.
    #[arg(long, default_value_t = 50)]
    pub seats: usize,
    /// Seats most buyers want.
    #[arg(long, default_value_t = 10)]
    pub hot_seats: usize,
    /// The share of buyers that target a hot seat.
    #[arg(long, default_value_t = 0.8)]
    pub hot_share: f64,
    /// The seed of the buyers' choices.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl Args {
    /// The workload these arguments describe.
    pub fn workload(&self) -> Workload {
        Workload {
            buyers: self.buyers,
            seats: self.seats,
            hot_seats: self.hot_seats,
            hot_share: self.hot_share,
            seed: self.seed,
        }
    }
}

/// Why a bake-off did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BakeoffError {
    /// The arguments describe no workload.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// The database failed.
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// The event store failed.
    #[error("event store: {0}")]
    Store(nexus_core::StoreError),
    /// Setting up a design failed.
    #[error("setup: {0}")]
    Setup(String),
    /// A buyer failed otherwise than losing the seat.
    #[error("buyer: {0}")]
    Buyer(String),
}

/// Runs both designs, optimistic first, and reports each.
pub async fn run(args: &Args) -> Result<Vec<DesignReport>, BakeoffError> {
    let workload = args.workload();
    workload.validate()?;
    let choices = workload.choices();
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let (table_a, store_b): (Arc<dyn SeatTable>, Arc<dyn EventStore>) = match &args.database_url {
        None => (
            MemorySeats::new(workload.seats),
            Arc::new(InMemoryEventStore::new()),
        ),
        Some(url) => {
            // The seed's pool: 32 connections shared by every buyer.
            let pool = PgPoolOptions::new()
                .max_connections(32)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            let config = PgStoreConfig::new(pool.clone())
                .schema("bakeoff")
                .map_err(|e| BakeoffError::Setup(e.to_string()))?;
            config
                .migrate()
                .await
                .map_err(|e| BakeoffError::Setup(e.to_string()))?;
            (
                Arc::new(PgSeats::create(pool, workload.seats).await?),
                Arc::new(PgEventStore::new(&config)),
            )
        }
    };
    let optimistic = optimistic(&workload, &choices, table_a).await?;
    let outcome = run_buyers(Arc::clone(&store_b), &run, &choices).await?;
    let (winners, double_bookings) = count_from_store(&*store_b, &run, workload.seats).await?;
    let actor = DesignReport {
        design: "actor".to_owned(),
        buyers: workload.buyers,
        seats: workload.seats,
        winners,
        double_bookings,
        retries: outcome.retries,
        p50_ms: quantile_ms(&outcome.latencies, 0.5),
        p99_ms: quantile_ms(&outcome.latencies, 0.99),
        wall_ms: outcome.wall.as_secs_f64() * 1_000.0,
    };
    Ok(vec![optimistic, actor])
}

async fn optimistic(
    workload: &Workload,
    choices: &[usize],
    table: Arc<dyn SeatTable>,
) -> Result<DesignReport, BakeoffError> {
    let started = Instant::now();
    let mut buyers = Vec::with_capacity(choices.len());
    for (buyer, &seat) in choices.iter().enumerate() {
        let table = Arc::clone(&table);
        buyers.push(tokio::spawn(async move {
            let asked = Instant::now();
            let outcome = buy(&*table, seat, &format!("buyer-{buyer}")).await;
            (outcome, asked.elapsed())
        }));
    }
    let (mut latencies, mut retries, mut gave_up) = (Vec::new(), 0, 0_u64);
    for buyer in buyers {
        let (outcome, latency) = buyer
            .await
            .map_err(|e| BakeoffError::Buyer(e.to_string()))?;
        let (attempt, lost_races) = outcome?;
        retries += lost_races;
        gave_up += u64::from(attempt == Attempt::GaveUp);
        latencies.push(latency);
    }
    let wall = started.elapsed();
    if gave_up > 0 {
        tracing::warn!(
            gave_up,
            "buyers of the optimistic design exhausted their retries"
        );
    }
    Ok(DesignReport {
        design: "optimistic".to_owned(),
        buyers: workload.buyers,
        seats: workload.seats,
        winners: table.winners().await?,
        double_bookings: table.double_bookings().await?,
        retries,
        p50_ms: quantile_ms(&latencies, 0.5),
        p99_ms: quantile_ms(&latencies, 0.99),
        wall_ms: wall.as_secs_f64() * 1_000.0,
    })
}

/// The `seat-bakeoff` program: one JSON line per design on stdout, then a
/// table. Bad arguments exit with 2, a failed run with 1.
pub fn cli_main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(error) = args.workload().validate() {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(reports) => {
            for report in &reports {
                match serde_json::to_string(report) {
                    Ok(line) => println!("{line}"),
                    Err(error) => {
                        eprintln!("error: {error}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            println!();
            print!("{}", table(&reports));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
