//! The seat bake-off driven as a user scripts it: run the program, read its
//! JSON lines.

use std::collections::HashSet;
use std::process::Command;

use nexus_examples::bakeoff::{DesignReport, Workload};

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn bakeoff(args: &[&str], database_url: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_seat_bakeoff"));
    command.args(args).env_remove("DATABASE_URL");
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    command.output().expect("run seat_bakeoff")
}

fn reports(output: &std::process::Output) -> Vec<DesignReport> {
    assert!(
        output.status.success(),
        "seat_bakeoff failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).expect("a JSON report line"))
        .collect()
}

/// Both designs ran, echo the workload, never double-book, and every seat a
/// buyer chose ended with exactly one holder, counted from the store.
fn check(reports: &[DesignReport], workload: &Workload) {
    let designs: Vec<&str> = reports.iter().map(|r| r.design.as_str()).collect();
    assert_eq!(designs, ["optimistic", "actor"]);
    let chosen = workload.choices().into_iter().collect::<HashSet<_>>().len() as u64;
    for report in reports {
        assert_eq!(
            (report.buyers, report.seats),
            (workload.buyers, workload.seats)
        );
        assert_eq!(report.double_bookings, 0, "{report:?}");
        assert_eq!(
            report.winners, chosen,
            "every chosen seat has one holder: {report:?}"
        );
        assert!(
            report.p50_ms <= report.p99_ms && report.p99_ms <= report.wall_ms,
            "{report:?}"
        );
    }
}

const ARGS: [&str; 10] = [
    "--buyers",
    "200",
    "--seats",
    "50",
    "--hot-seats",
    "10",
    "--hot-share",
    "0.8",
    "--seed",
    "7",
];

fn workload() -> Workload {
    Workload {
        buyers: 200,
        seats: 50,
        hot_seats: 10,
        hot_share: 0.8,
        seed: 7,
    }
}

#[test]
fn both_designs_in_memory() {
    let output = bakeoff(&ARGS, None);
    check(&reports(&output), &workload());
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(
        table.contains("design") && table.contains("double_bookings"),
        "the human table follows"
    );
}

#[test]
fn both_designs_on_postgres_with_the_same_winners_for_the_same_seed() {
    let url = database_url();
    let first = reports(&bakeoff(&ARGS, Some(&url)));
    check(&first, &workload());
    let second = reports(&bakeoff(&ARGS, Some(&url)));
    let winners = |r: &[DesignReport]| r.iter().map(|d| d.winners).collect::<Vec<_>>();
    assert_eq!(winners(&first), winners(&second));
}

#[test]
fn bad_arguments_exit_2_with_a_message_and_run_nothing() {
    for args in [
        &["--hot-seats", "60", "--seats", "50"][..],
        &["--hot-share", "1.5"],
        &["--buyers", "0"],
        &["--buyers", "many"],
    ] {
        let output = bakeoff(args, None);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?} printed a report");
        assert!(!output.stderr.is_empty(), "{args:?} says why");
    }
}
