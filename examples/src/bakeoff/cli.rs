//! The `seat-bakeoff` program around [`run`]: arguments in, JSON lines and
//! a table out, an exit code that scripts can test.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use super::args::Args;
use super::report::table;
use super::run::run;
use crate::plot::{LatencySeries, write_latency_cdfs};

/// Exit code of arguments that describe no workload (clap's usage errors
/// use it too).
const BAD_ARGUMENTS: u8 = 2;

/// The `seat-bakeoff` program: one JSON line per design on stdout, then a
/// blank line and a table; logs on stderr. Bad arguments exit with 2 before
/// anything is connected, a failed run with 1.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     nexus_examples::bakeoff::cli_main()
/// }
/// ```
pub fn cli_main() -> ExitCode {
    let args = Args::parse();
    // Before the logs, the runtime and any connection: a refused workload
    // touches nothing.
    if let Err(error) = args.workload().validate() {
        eprintln!("error: {error}");
        return ExitCode::from(BAD_ARGUMENTS);
    }
    init_logs();
    match bake(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so that stdout holds only the reports.
fn init_logs() {
    let filter = EnvFilter::try_from_default_env()
        // sqlx reports every `IF NOT EXISTS` that found the table at info.
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn bake(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let runs = tokio::runtime::Runtime::new()?.block_on(run(args))?;
    let reports: Vec<_> = runs.iter().map(|r| r.report.clone()).collect();
    for report in &reports {
        println!("{}", serde_json::to_string(report)?);
    }
    println!();
    print!("{}", table(&reports));
    if let Some(path) = &args.plot {
        let series: Vec<_> = runs
            .into_iter()
            .map(|r| LatencySeries::new(r.report.design, r.latencies))
            .collect();
        let store = if args.database_url.is_some() {
            "Postgres"
        } else {
            "in memory"
        };
        let title = format!(
            "seat bake-off: {} buyers, {} seats, {store}",
            args.buyers, args.seats
        );
        write_latency_cdfs(path, &title, &series)?;
    }
    Ok(())
}
