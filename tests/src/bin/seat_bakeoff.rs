//! The bake-off's own `main`, built into this crate so its tests can run it
//! as a process (cargo gives binary paths only to tests of the same crate).

fn main() -> std::process::ExitCode {
    nexus_examples::bakeoff::cli_main()
}
