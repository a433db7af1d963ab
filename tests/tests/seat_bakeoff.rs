//! The `seat-bakeoff` program run as a user runs it: arguments in, one JSON
//! line per design out, on the in-memory stores and on Postgres.

use std::collections::HashSet;
use std::process::{Command, Output};

use nexus_examples::bakeoff::{DesignReport, PgSeats, SeatTable, Workload};

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database on the test server that does not exist.
fn missing_database() -> String {
    let url = database_url();
    let server = url
        .rsplit_once('/')
        .map_or(url.as_str(), |(server, _)| server);
    format!("{server}/no_such_bakeoff_db")
}

/// Runs the program with `args`; `database` is passed as `--database-url`,
/// and without it the environment's `DATABASE_URL` is removed so the run
/// really is in memory.
fn bakeoff(args: &[&str], database: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_seat_bakeoff"));
    command.args(args).env_remove("DATABASE_URL");
    if let Some(url) = database {
        command.args(["--database-url", url]);
    }
    command.output().expect("the program starts")
}

/// The JSON lines of a successful run, by design.
fn reports(output: &Output) -> Vec<DesignReport> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the run failed ({}): {}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).expect("each `{` line is a design report"))
        .collect()
}

/// The workload's seats that some buyer chose: each must end with exactly
/// one holder.
fn chosen_seats(workload: &Workload) -> u64 {
    workload.choices().into_iter().collect::<HashSet<_>>().len() as u64
}

/// Runs `workload` and checks every report against what the workload
/// promises; returns the reports.
fn run_and_check(workload: &Workload, database: Option<&str>) -> Vec<DesignReport> {
    let (buyers, seats, hot_seats, hot_share, seed) = (
        workload.buyers.to_string(),
        workload.seats.to_string(),
        workload.hot_seats.to_string(),
        workload.hot_share.to_string(),
        workload.seed.to_string(),
    );
    let output = bakeoff(
        &[
            "--buyers",
            &buyers,
            "--seats",
            &seats,
            "--hot-seats",
            &hot_seats,
            "--hot-share",
            &hot_share,
            "--seed",
            &seed,
        ],
        database,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("design") && stdout.contains("double_bookings"),
        "the human table follows the JSON lines: {stdout}"
    );
    let reports = reports(&output);
    let designs: Vec<&str> = reports.iter().map(|r| r.design.as_str()).collect();
    assert_eq!(designs, ["optimistic", "actor"], "one line per design");
    let expected_winners = chosen_seats(workload);
    for report in &reports {
        let design = &report.design;
        assert_eq!(report.buyers, workload.buyers, "{design}: buyers echoed");
        assert_eq!(report.seats, workload.seats, "{design}: seats echoed");
        assert_eq!(report.double_bookings, 0, "{design}: no seat booked twice");
        assert_eq!(
            report.winners, expected_winners,
            "{design}: every chosen seat, and no other, ends with a holder ({workload:?})"
        );
        assert!(report.winners <= workload.seats as u64, "{design}");
        assert!(
            report.p50_ms <= report.p99_ms,
            "{design}: p50 {} above p99 {}",
            report.p50_ms,
            report.p99_ms
        );
        assert!(
            report.p99_ms <= report.wall_ms,
            "{design}: no buyer waited longer than the whole run"
        );
    }
    // One process owns every seat entity, so no append of the actor design
    // can lose a race: a conflict here would mean two writers per seat.
    assert_eq!(reports[1].retries, 0, "the actor design never conflicts");
    reports
}

fn seed_workload(seed: u64) -> Workload {
    Workload {
        buyers: 200,
        seats: 50,
        hot_seats: 10,
        hot_share: 0.8,
        seed,
    }
}

/// Two runs of one random seed: each checked, both with the same winners
/// though the buyers interleave differently. On one database the second run
/// also shows that runs never see each other's rows or streams (its counts
/// would include the first run's otherwise).
fn twice_with_one_seed(database: Option<&str>) {
    let workload = seed_workload(fastrand::u64(..));
    let first = run_and_check(&workload, database);
    let again = run_and_check(&workload, database);
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(
            a.winners, b.winners,
            "{}: same seed, same winners",
            a.design
        );
    }
}

#[test]
fn in_memory_both_designs_seat_every_chosen_seat_once() {
    twice_with_one_seed(None);
}

#[test]
fn in_memory_all_buyers_on_the_hot_seats() {
    // Everyone fights over 3 seats: the hardest contention the workload has.
    let workload = Workload {
        buyers: 150,
        seats: 20,
        hot_seats: 3,
        hot_share: 1.0,
        seed: 5,
    };
    let reports = run_and_check(&workload, None);
    assert!(reports.iter().all(|r| r.winners == 3));
}

#[test]
fn postgres_both_designs_seat_every_chosen_seat_once() {
    twice_with_one_seed(Some(&database_url()));
}

#[test]
fn the_database_url_is_read_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_seat_bakeoff"))
        .args(["--buyers", "20", "--seats", "5", "--hot-seats", "2"])
        // The server is there but the database is not: a run that reads the
        // variable fails at once, one that ignores it succeeds in memory.
        .env("DATABASE_URL", missing_database())
        .output()
        .expect("the program starts");
    assert_eq!(
        output.status.code(),
        Some(1),
        "the connection failure is reported"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains('{'),
        "no report without a database"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no_such_bakeoff_db"), "{stderr}");
}

#[test]
fn bad_arguments_exit_with_2_and_run_nothing() {
    let cases: [(&[&str], &str); 5] = [
        (&["--buyers", "many"], "many"),
        (&["--seats", "5", "--hot-seats", "6"], "hot seats (6)"),
        (&["--hot-share", "1.5"], "1.5"),
        (&["--hot-share=-0.1"], "-0.1"),
        (&["--buyers", "0"], "buyers (0)"),
    ];
    for (args, named) in cases {
        // The database does not exist: the arguments are refused before
        // anything connects, so nothing can have been written.
        let output = bakeoff(args, Some(&missing_database()));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{args:?}: the error names {named}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}: no report");
    }
}

#[tokio::test]
async fn the_postgres_table_counts_a_write_that_skipped_the_holder_check() {
    // The optimistic design's double-booking count is what the test runs
    // above rely on; here it must see a planted double booking.
    let pool = sqlx::PgPool::connect(&database_url())
        .await
        .expect("connect");
    let table = PgSeats::create(pool, 3).await.expect("tables");
    assert!(table.reserve_if_version(1, "ada", 0).await.unwrap());
    assert!(table.reserve_if_version(1, "bob", 1).await.unwrap());
    assert!(!table.reserve_if_version(1, "cyd", 1).await.unwrap());
    assert_eq!(table.winners().await.unwrap(), 1);
    assert_eq!(table.double_bookings().await.unwrap(), 1);
}

#[test]
fn plot_draws_both_designs_after_a_warm_up_round() {
    let dir = std::env::temp_dir().join(format!("bakeoff-plot-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cdf.svg");
    let path_arg = path.to_str().unwrap();
    let output = bakeoff(
        &[
            "--buyers",
            "60",
            "--seats",
            "10",
            "--hot-seats",
            "3",
            "--warm-up",
            "--plot",
            path_arg,
        ],
        None,
    );
    // After the untimed round, the timed one still seats every chosen
    // seat exactly once.
    let reports = reports(&output);
    let workload = Workload {
        buyers: 60,
        seats: 10,
        hot_seats: 3,
        hot_share: 0.8,
        seed: 42,
    };
    for report in &reports {
        assert_eq!(report.winners, chosen_seats(&workload), "{}", report.design);
        assert_eq!(report.double_bookings, 0, "{}", report.design);
    }
    let svg = std::fs::read_to_string(&path).expect("the plot was written");
    assert!(svg.contains("seat bake-off: 60 buyers, 10 seats, in memory"));
    for design in ["optimistic", "actor"] {
        assert!(
            svg.contains(&format!("{design}  (p50 ")),
            "{design} in the legend"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
