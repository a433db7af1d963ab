//! The wallet HTTP app; see `nexus_examples::wallet_app`.

fn main() -> std::process::ExitCode {
    nexus_examples::wallet_app::cli_main()
}
