//! The seat-reservation bake-off; see `nexus_examples::bakeoff`.

fn main() -> std::process::ExitCode {
    nexus_examples::bakeoff::cli_main()
}
