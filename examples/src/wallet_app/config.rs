//! Command-line arguments of `wallet-app`.

use std::net::SocketAddr;

/// `wallet-app [--listen ADDR] [--database-url URL] [--schema NAME]`.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "wallet-app", about = "The Nexus wallet HTTP app")]
pub struct Config {
    /// Where to listen for HTTP.
    #[arg(long, default_value = "127.0.0.1:9080")]
    pub listen: SocketAddr,
    /// The Postgres database to keep the wallets in; without one, the in-memory stores
    /// are used and everything is lost on exit.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The Postgres schema of the app's tables.
    #[arg(long, env = "WALLET_SCHEMA", default_value = "wallet_app")]
    pub schema: String,
    /// How many Postgres connections the app may open.
    #[arg(long, default_value_t = 16)]
    pub pool_size: u32,
}
