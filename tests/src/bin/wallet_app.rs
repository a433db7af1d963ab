//! The wallet app's own `main`, built into this crate so its tests can start
//! it as a process (cargo gives binary paths only to tests of the same crate).

fn main() -> std::process::ExitCode {
    nexus_examples::wallet_app::cli_main()
}
