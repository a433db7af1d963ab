//! One bake-off: both designs on one store, one report each.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::EventStore;
use nexus_core::store::memory::InMemoryEventStore;
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use sqlx::postgres::PgPoolOptions;

use super::actor::{count_from_store, run_buyers};
use super::args::Args;
use super::buyers::{Fired, buyer_name, fire};
use super::error::BakeoffError;
use super::optimistic::{Attempt, MemorySeats, PgSeats, SeatTable, buy};
use super::report::{DesignReport, quantile_ms};
use super::workload::Workload;

/// The bake-off article's pool: every buyer of a design shares 32 connections.
const POOL_SIZE: u32 = 32;

/// The schema of the actor design's event store, shared by all runs (their
/// streams are apart by run id).
const EVENT_SCHEMA: &str = "bakeoff";

/// One design's report, with every buyer's latency behind its quantiles
/// (for `--plot`).
#[derive(Clone, Debug)]
pub struct DesignRun {
    /// What the design did.
    pub report: DesignReport,
    /// How long each buyer waited, in buyer order.
    pub latencies: Vec<Duration>,
}

/// Runs both designs, optimistic first, on Postgres when `args` names a
/// database and in memory otherwise, and reports each. With
/// `args.warm_up`, each design first runs the same workload once untimed,
/// on rows and streams of its own. Bad arguments are refused before
/// anything is connected.
///
/// ```
/// use clap::Parser;
/// use nexus_examples::bakeoff::{Args, run};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let args = Args::try_parse_from(["seat-bakeoff", "--buyers", "30", "--seats", "5", "--hot-seats", "2"]).unwrap();
/// let args = Args { database_url: None, warm_up: true, ..args };
/// let runs = run(&args).await.unwrap();
/// assert_eq!(runs.len(), 2);
/// assert!(runs.iter().all(|r| r.report.double_bookings == 0 && r.report.winners <= 5));
/// assert!(runs.iter().all(|r| r.latencies.len() == 30));
/// # });
/// ```
pub async fn run(args: &Args) -> Result<Vec<DesignRun>, BakeoffError> {
    let workload = args.workload();
    workload.validate()?;
    let choices = workload.choices();
    // Seat streams are named by run, so runs on one database never meet.
    let run = uuid::Uuid::new_v4().simple().to_string();
    // The second table is the warm-up round's, so that its bookings are
    // not counted.
    let (table, warm_table, store): (Arc<dyn SeatTable>, Arc<dyn SeatTable>, Arc<dyn EventStore>) =
        match &args.database_url {
            None => (
                MemorySeats::new(workload.seats),
                MemorySeats::new(workload.seats),
                Arc::new(InMemoryEventStore::new()),
            ),
            Some(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await?;
                let config = PgStoreConfig::new(pool.clone()).schema(EVENT_SCHEMA)?;
                config.migrate().await?;
                (
                    Arc::new(PgSeats::create(pool.clone(), workload.seats).await?),
                    Arc::new(PgSeats::create(pool, workload.seats).await?),
                    Arc::new(PgEventStore::new(&config)),
                )
            }
        };
    tracing::info!(
        %run,
        postgres = args.database_url.is_some(),
        buyers = workload.buyers,
        seats = workload.seats,
        "bake-off starting"
    );
    if args.warm_up {
        // An untimed round of each design on rows and streams of its own:
        // the first use of a design's statements on a pooled connection
        // (opening it, preparing them, the backend loading the tables'
        // catalog entries) otherwise lands in the timed burst. Entities of
        // the timed round are new all the same and recover from the store.
        optimistic(&workload, &choices, warm_table).await?;
        run_buyers(Arc::clone(&store), &format!("{run}-warm"), &choices).await?;
        tracing::info!("warm-up round of both designs done");
    }
    let optimistic = optimistic(&workload, &choices, table).await?;
    tracing::info!(
        wall_ms = optimistic.report.wall_ms,
        "optimistic design done"
    );
    let (fired, retries) = run_buyers(Arc::clone(&store), &run, &choices).await?;
    let (winners, double_bookings) = count_from_store(&*store, &run, workload.seats).await?;
    let actor = report(
        "actor",
        &workload,
        &fired,
        winners,
        double_bookings,
        retries,
    );
    tracing::info!(wall_ms = actor.report.wall_ms, "actor design done");
    Ok(vec![optimistic, actor])
}

/// Design A: every buyer reads, writes on its version and retries lost races.
async fn optimistic(
    workload: &Workload,
    choices: &[usize],
    table: Arc<dyn SeatTable>,
) -> Result<DesignRun, BakeoffError> {
    let fired = fire(choices, |buyer, seat| {
        let table = Arc::clone(&table);
        async move { buy(&*table, seat, &buyer_name(buyer)).await }
    })
    .await?;
    let (mut retries, mut gave_up) = (0, 0_u64);
    for answer in &fired.answers {
        let (attempt, lost_races) = answer.as_ref().map_err(|e| {
            BakeoffError::Reservation(format!("the optimistic design's database: {e}"))
        })?;
        retries += lost_races;
        gave_up += u64::from(*attempt == Attempt::GaveUp);
    }
    if gave_up > 0 {
        tracing::warn!(
            gave_up,
            "buyers of the optimistic design exhausted their retries"
        );
    }
    let winners = table.winners().await?;
    let double_bookings = table.double_bookings().await?;
    Ok(report(
        "optimistic",
        workload,
        &fired,
        winners,
        double_bookings,
        retries,
    ))
}

fn report<T>(
    design: &str,
    workload: &Workload,
    fired: &Fired<T>,
    winners: u64,
    double_bookings: u64,
    retries: u64,
) -> DesignRun {
    let report = DesignReport {
        design: design.to_owned(),
        buyers: workload.buyers,
        seats: workload.seats,
        winners,
        double_bookings,
        retries,
        p50_ms: quantile_ms(&fired.latencies, 0.5),
        p99_ms: quantile_ms(&fired.latencies, 0.99),
        wall_ms: fired.wall.as_secs_f64() * 1_000.0,
    };
    DesignRun {
        report,
        latencies: fired.latencies.clone(),
    }
}
