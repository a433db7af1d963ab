//! The `seat-bakeoff` program around [`run`]: arguments in, JSON lines and
//! a table out, an exit code that scripts can test.

use std::process::ExitCode;

use clap::Parser;

use super::args::Args;
use super::report::table;
use super::run::run;

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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    if let Err(error) = args.workload().validate() {
        eprintln!("error: {error}");
        return ExitCode::from(BAD_ARGUMENTS);
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
    let reports = match runtime.block_on(run(&args)) {
        Ok(reports) => reports,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
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
