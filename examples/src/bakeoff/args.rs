//! The program's arguments: the workload and where to run it.

use clap::Parser;

use super::workload::Workload;

/// `seat-bakeoff [--database-url URL] [--buyers 200] [--seats 50]
/// [--hot-seats 10] [--hot-share 0.8] [--seed N] [--warm-up] [--plot FILE.svg]`;
/// the defaults are the bake-off article's workload.
///
/// ```
/// use clap::Parser;
/// use nexus_examples::bakeoff::Args;
/// let args = Args::try_parse_from(["seat-bakeoff", "--buyers", "20", "--seed", "7"]).unwrap();
/// assert_eq!((args.buyers, args.seats, args.hot_seats), (20, 50, 10));
/// assert_eq!(args.workload().seed, 7);
/// assert!(!args.warm_up);
/// ```
#[derive(Clone, Debug, Parser)]
#[command(
    name = "seat-bakeoff",
    about = "Seat reservations under hot keys: a version column with retries against one actor per seat"
)]
pub struct Args {
    /// Postgres to run both designs on; both run in memory without one.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Buyers, one reservation each, all at once.
    #[arg(long, default_value_t = 200)]
    pub buyers: usize,
    /// Seats on sale.
    #[arg(long, default_value_t = 50)]
    pub seats: usize,
    /// Seats most buyers want.
    #[arg(long, default_value_t = 10)]
    pub hot_seats: usize,
    /// The share of buyers that target a hot seat, in [0, 1].
    #[arg(long, default_value_t = 0.8)]
    pub hot_share: f64,
    /// The seed of the buyers' choices: the same seed, the same choices.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First run each design once untimed, on rows and streams of its own,
    /// so that the timed burst finds the pool's connections open and
    /// having run the design's statements (its entities still start cold).
    #[arg(long)]
    pub warm_up: bool,
    /// Also draw both designs' latency CDFs into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<std::path::PathBuf>,
}

impl Args {
    /// The workload these arguments describe (not yet validated).
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
